/**
 * FileStorage's data directory on disk (docs/STORAGE.md, "On disk" and "Recovery"): the file
 * names, the atomic replacement of a small file, and recovery, which reads everything back,
 * verifies it, and cuts a torn tail or refuses damage with CorruptLogError. The actor that writes
 * the directory is storage/file-storage.ts.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { TERM_ZERO } from '../actors/raft/core/types';
import type { Entry, HardState, LogIndex, SnapshotMeta } from '../actors/raft/core/types';
import { MemoryStore } from './memory-storage';
import { replayRecord } from './durable-store';
import { CorruptLogError, encodeRecord, replayRecords, type LogRecord } from './record-log';

/** The size of a seal record (header and body): a torn seal is at most this many bytes. */
export const SEAL_RECORD_BYTES = 17;

export const SEGMENT_RE = /^segment-(\d{10})\.log$/;
export const segmentName = (seq: number): string => `segment-${String(seq).padStart(10, '0')}.log`;
export const HARD_STATE = 'hard-state';
export const HARD_STATE_TMP = 'hard-state.tmp';
export const SNAPSHOT_META = 'snapshot.meta';
export const LOG_START = 'log-start';
export const SNAP_FILE_RE = /^snapshot-[A-Za-z0-9_-]{1,128}\.(tmp|snap)$/;
export const snapName = (id: string): string => `snapshot-${id}.snap`;
export const snapTmpName = (id: string): string => `snapshot-${id}.tmp`;

/** A log segment: `maxIndex` is the highest entry index any append record in it carried (a purge through it may delete it). */
export interface Segment { readonly seq: number; readonly path: string; size: number; maxIndex: number }

/** What recovery found in a data directory. */
export interface RecoveredDir {
  readonly hardState: HardState;
  readonly store: MemoryStore;
  readonly segments: Segment[];
  /** Bytes of a torn tail at the end of the last segment (cut off when recovering with `repair`). */
  readonly tornBytes: number;
  /** Set when the last closed segment's seal was never written (a crash while starting a new segment). */
  readonly unsealed: Segment | null;
  /** True when the directory holds no hard-state file yet (never opened, or a crash while first opening it). */
  readonly fresh: boolean;
  /** The current snapshot (snapshot.meta), its file verified; null when none. */
  readonly snapshot: SnapshotMeta | null;
  /** From log-start: entries through this index were purged (0: none), and the log starts at segment `firstSegment`. */
  readonly purgedThrough: LogIndex;
  readonly firstSegment: number;
  /** Files a crash left unfinished that recovery deletes (with `repair`) or would delete. */
  readonly removed: string[];
}

/** Reads a file that must hold exactly one whole record of `type`; anything else is CorruptLogError naming it. */
export function readSingleRecord<T extends LogRecord['type']>(path: string, type: T, what: string): Extract<LogRecord, { type: T }> {
  const bytes = readFileSync(path);
  const replay = replayRecords(bytes, path);
  const rec = replay.records[0];
  if (replay.records.length !== 1 || replay.tornBytes > 0 || rec.type !== type) {
    throw new CorruptLogError(path, replay.validBytes === bytes.byteLength ? 0 : replay.validBytes, `the ${what} file must hold exactly one whole ${type} record (found ${replay.records.length} records, ${replay.tornBytes} bytes of damage)`);
  }
  return rec as Extract<LogRecord, { type: T }>;
}

/** crc32 of a file, read in 1 MiB pieces. */
export function fileCrc32(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let crc = 0;
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.byteLength, pos);
      if (n <= 0) return crc >>> 0;
      crc = crc32(buf.subarray(0, n), crc);
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a data directory back and verifies it (the recovery of FileStorage). With `repair`, cuts a
 * torn tail, finishes an interrupted segment change, and deletes what a crash left unfinished
 * (segments below the log start, unfinished or replaced snapshot files, temp files); without,
 * changes nothing (for inspection). Throws CorruptLogError for anything that is not a torn tail.
 */
export function recoverDir(dir: string, opts: { repair: boolean; onTornTail?: (file: string, tornBytes: number) => void }): RecoveredDir {
  const store = new MemoryStore();
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const hsPath = join(dir, HARD_STATE);
  const fresh = !names.includes(HARD_STATE);
  let hardState: HardState = { currentTerm: TERM_ZERO, votedFor: null };
  if (!fresh) hardState = readSingleRecord(hsPath, 'hardState', 'hard-state').hardState;

  // The snapshot: snapshot.meta names it, and its .snap must be whole (size and crc32 checked).
  let snapshot: SnapshotMeta | null = null;
  if (names.includes(SNAPSHOT_META)) {
    snapshot = readSingleRecord(join(dir, SNAPSHOT_META), 'snapshotMeta', 'snapshot.meta').meta;
    const snapPath = join(dir, snapName(snapshot.id));
    if (!names.includes(snapName(snapshot.id))) throw new CorruptLogError(snapPath, 0, `snapshot.meta names snapshot ${snapshot.id}, but its file is missing (it is made durable before snapshot.meta names it)`);
    const size = statSync(snapPath).size;
    if (size !== snapshot.byteLength) throw new CorruptLogError(snapPath, Math.min(size, snapshot.byteLength), `the snapshot file holds ${size} bytes, snapshot.meta says ${snapshot.byteLength}`);
    const crc = fileCrc32(snapPath);
    if (crc !== snapshot.checksum) throw new CorruptLogError(snapPath, 0, `crc32 of the snapshot file is ${crc}, snapshot.meta says ${snapshot.checksum}`);
  }
  const leftovers = names.filter((n) => (SNAP_FILE_RE.test(n) && (snapshot === null || n !== snapName(snapshot.id))) || n === `${SNAPSHOT_META}.tmp` || n === `${LOG_START}.tmp`);

  // Where the log starts: entries through purgedThrough were purged, segments below firstSegment deleted.
  let purgedThrough = 0;
  let firstSegment = 1;
  const lsPath = join(dir, LOG_START);
  if (names.includes(LOG_START)) {
    const ls = readSingleRecord(lsPath, 'logStart', 'log-start');
    purgedThrough = ls.purgedThrough;
    firstSegment = ls.firstSegment;
    if (firstSegment < 1) throw new CorruptLogError(lsPath, 0, `log-start names segment ${firstSegment} as the first`);
    if (purgedThrough > 0 && (snapshot === null || purgedThrough > snapshot.lastIncludedIndex)) {
      throw new CorruptLogError(lsPath, 0, `entries through ${purgedThrough} were purged, but ${snapshot === null ? 'there is no snapshot' : `the snapshot covers only through ${snapshot.lastIncludedIndex}`} (a purge is written only after the snapshot covering it is durable)`);
    }
  }

  const allSegments: Segment[] = names.map((n) => SEGMENT_RE.exec(n)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ seq: Number(m[1]), path: join(dir, m[0]), size: 0, maxIndex: 0 }))
    .sort((a, b) => a.seq - b.seq);
  // Segments below the log start: a crash after log-start was replaced but before they were deleted.
  const stale = allSegments.filter((sg) => sg.seq < firstSegment);
  const segments = allSegments.filter((sg) => sg.seq >= firstSegment);
  // A first opening creates segment 1, then the hard-state file: an empty segment 1 alone is a
  // crash during that; any other log without a hard state has lost its term and vote, and a hard
  // state without segment 1 has lost its log.
  const onlyEmptySegment1 = allSegments.length === 1 && allSegments[0].seq === 1 && statSync(allSegments[0].path).size === 0;
  if (fresh && ((allSegments.length > 0 && !onlyEmptySegment1) || names.includes(LOG_START) || snapshot !== null)) {
    throw new CorruptLogError(hsPath, 0, 'the hard-state file is missing but the log exists: the term and vote are lost, and starting could vote twice in a term');
  }
  if (!fresh && segments.length === 0) {
    throw new CorruptLogError(join(dir, segmentName(firstSegment)), 0, firstSegment === 1
      ? 'segment 1 is missing: the hard-state file exists, which is written only once segment 1 is on disk'
      : `segment ${firstSegment} is missing: log-start names it as the first segment`);
  }
  for (let i = 0; i < segments.length; i++) {
    const expected = i === 0 ? firstSegment : segments[i - 1].seq + 1;
    if (segments[i].seq !== expected) throw new CorruptLogError(join(dir, segmentName(expected)), 0, `segment ${expected} is missing (found ${segments.map((sg) => sg.seq).join(', ')}${firstSegment > 1 ? `; the log starts at segment ${firstSegment}` : ''})`);
  }
  store.firstIndex = (purgedThrough + 1) as LogIndex;
  store.snapshot = snapshot;
  let tornBytes = 0;
  let unsealed: Segment | null = null;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const isLast = i === segments.length - 1;
    const bytes = readFileSync(seg.path);
    const replay = replayRecords(bytes, seg.path);
    seg.size = replay.validBytes;
    let sealed = false;
    replay.records.forEach((rec, k) => {
      const at = replay.offsets[k];
      if (sealed) throw new CorruptLogError(seg.path, at, 'a record after the segment\'s seal');
      if (rec.type === 'seal') {
        if (rec.next !== seg.seq + 1) throw new CorruptLogError(seg.path, at, `seal names segment ${rec.next}, expected ${seg.seq + 1}`);
        sealed = true;
        return;
      }
      if (rec.type !== 'append' && rec.type !== 'truncate') throw new CorruptLogError(seg.path, at, `a ${rec.type} record in a log segment`);
      seg.maxIndex = Math.max(seg.maxIndex, replayRecord(store, rec, seg.path, at).lastEntry);
    });
    if (!isLast) {
      const next = segments[i + 1];
      // Segment k+1 is made durable before k's seal is written: a crash between the two leaves an
      // empty k+1 and an unsealed k, possibly with part of the seal (a torn write of at most one
      // seal record). Nothing was ever written to k+1, and nothing but the seal after k's records.
      if (!sealed && i === segments.length - 2 && statSync(next.path).size === 0 && replay.tornBytes <= SEAL_RECORD_BYTES) {
        unsealed = seg;
        continue;
      }
      if (replay.tornBytes > 0) throw new CorruptLogError(seg.path, replay.validBytes, `${replay.tornBytes} damaged bytes at the end of a closed segment (only the last segment can have a torn tail)`);
      if (!sealed) throw new CorruptLogError(seg.path, replay.validBytes, `segment ${seg.seq} was never closed, but segment ${next.seq} after it holds records`);
      continue;
    }
    if (sealed) throw new CorruptLogError(join(dir, segmentName(seg.seq + 1)), 0, `segment ${seg.seq + 1} is missing: segment ${seg.seq} was closed, which happens only once ${seg.seq + 1} is on disk`);
    if (replay.tornBytes > 0) {
      tornBytes = replay.tornBytes;
      opts.onTornTail?.(seg.path, replay.tornBytes);
      if (opts.repair) {
        const fd = openSync(seg.path, 'r+');
        try { ftruncateSync(fd, replay.validBytes); fsyncSync(fd); } finally { closeSync(fd); }
      }
    }
  }
  if (unsealed !== null && opts.repair) {
    // Cut a torn seal (if any), then write the whole one.
    const u = unsealed as Segment;
    const fd = openSync(u.path, 'r+');
    try {
      ftruncateSync(fd, u.size);
      writeSync(fd, encodeRecord({ type: 'seal', next: u.seq + 1 }), 0, undefined, u.size);
      fsyncSync(fd);
    } finally { closeSync(fd); }
  }
  if (opts.repair && stale.length + leftovers.length > 0) {
    for (const sg of stale) unlinkSync(sg.path);
    for (const n of leftovers) unlinkSync(join(dir, n));
    fsyncDirSync(dir);
  }
  store.hardState = hardState;
  return { hardState, store, segments, tornBytes, unsealed, fresh, snapshot, purgedThrough: purgedThrough as LogIndex, firstSegment, removed: [...stale.map((sg) => sg.path), ...leftovers.map((n) => join(dir, n))] };
}

/**
 * Reads a node's data directory without changing it: for tools and tests, while the node is stopped.
 * `entries` starts at `firstIndex` (entries below it were purged behind `snapshot`).
 * @example const { hardState, entries } = await readFileStorage('./data/1');
 */
export async function readFileStorage(dir: string): Promise<{ hardState: HardState; snapshot: SnapshotMeta | null; firstIndex: LogIndex; entries: Entry[]; tornBytes: number }> {
  const r = recoverDir(resolve(dir), { repair: false });
  return { hardState: r.hardState, snapshot: r.snapshot, firstIndex: r.store.firstIndex, entries: r.store.log.slice(), tornBytes: r.tornBytes };
}

export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

/** Writes `bytes` to `dir/name` so that a crash leaves either the old or the new file, never a mix. */
export function writeAtomicSync(dir: string, name: string, bytes: Uint8Array): void {
  const tmp = join(dir, `${name}.tmp`);
  const fd = openSync(tmp, 'w');
  try { writeSync(fd, bytes); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, join(dir, name));
  fsyncDirSync(dir);
}
