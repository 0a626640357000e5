/**
 * The record format of an append-only storage log: every change to a node's durable state (hard
 * state, appended entries, a truncation) is one checksummed record. The simulator's disk writes it
 * today; a file-backed storage writes the same bytes to a file.
 *
 * Record: `u32 bodyLength | u32 checksum | body`, body = `u8 type | fields`; the checksum is crc32 of
 * the length field and the body, so a damaged length is caught too. Integers are u53 as two
 * big-endian u32 halves, as in the wire codec.
 *
 * Recovery (`replayRecords`) follows DESIGN.md section 4. At the first record that does not check
 * out (cut short, an impossible length, a checksum mismatch) it looks for any whole, valid record
 * further on. If there is none, the bad bytes are a torn write (a crash cut the last, unsynced write
 * short, or left zeros or garbage after it) and are reported as a torn tail for the caller to cut.
 * If a valid record follows, the damage is in the middle of the log: recovery refuses with
 * CorruptLogError naming the file and the offset, since dropping the rest could lose acknowledged
 * data. This also catches a damaged length field that points past the end of the file.
 */
import { crc32 } from 'node:zlib';
import type { HardState, LogIndex, NodeId, SnapshotMeta, Term } from '../actors/raft/core/types';
import { validateSnapshotMeta } from './snapshot';

export type LogRecord =
  | { readonly type: 'hardState'; readonly hardState: HardState }
  /** Encoded entries (actors/raft/codec.ts `encodeEntries`), kept as bytes: the store decodes them. */
  | { readonly type: 'append'; readonly entries: Uint8Array }
  | { readonly type: 'truncate'; readonly from: LogIndex }
  /**
   * The last record of a full log segment: the segment is closed and segment `next` exists and is
   * durable (it is written only after the next segment file is), so a missing segment is detected.
   */
  | { readonly type: 'seal'; readonly next: number }
  /** Every entry at index <= throughIndex was purged behind a snapshot (the simulator's log). */
  | { readonly type: 'purge'; readonly throughIndex: LogIndex }
  /**
   * Where FileStorage's log starts (its `log-start` file): entries <= purgedThrough are purged, and
   * segments below firstSegment are deleted.
   */
  | { readonly type: 'logStart'; readonly purgedThrough: LogIndex; readonly firstSegment: number }
  /** The current snapshot's meta (FileStorage's `snapshot.meta` file, and the simulator's log), as JSON. */
  | { readonly type: 'snapshotMeta'; readonly meta: SnapshotMeta };

const TYPE = { hardState: 1, append: 2, truncate: 3, seal: 4, purge: 5, logStart: 6, snapshotMeta: 7 } as const;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const HEADER_BYTES = 8;
/** Upper bound on one record's body: a corrupt length must not allocate gigabytes. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

/** The log has damage that is not a torn tail: starting from it could lose acknowledged data. */
export class CorruptLogError extends Error {
  readonly code = 'CorruptLog';
  constructor(readonly file: string, readonly offset: number, readonly reason: string) {
    super(`${file}: corrupt record at byte offset ${offset}: ${reason}; refusing to start (restore the file or remove the node's data and rejoin it)`);
    this.name = 'CorruptLogError';
  }
}

/** crc32 over a record's length field and body (the checksum field itself is skipped). */
export function checksum(bytes: Uint8Array, start: number, end: number): number {
  return crc32(bytes.subarray(start + 8, end), crc32(bytes.subarray(start, start + 4)));
}

function putU53(view: DataView, at: number, v: number): void {
  view.setUint32(at, Math.floor(v / 2 ** 32));
  view.setUint32(at + 4, v >>> 0);
}

function getU53(view: DataView, at: number): number {
  return view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
}

/**
 * One record, framed and checksummed.
 * @example disk.write(encodeRecord({ type: 'truncate', from: 5 as LogIndex }));
 */
export function encodeRecord(rec: LogRecord): Uint8Array {
  let bodyLength: number;
  const json = rec.type === 'snapshotMeta' ? utf8.encode(JSON.stringify(rec.meta)) : null;
  switch (rec.type) {
    case 'hardState': case 'logStart': bodyLength = 1 + 8 + 8; break;
    case 'append': bodyLength = 1 + rec.entries.byteLength; break;
    case 'truncate': case 'seal': case 'purge': bodyLength = 1 + 8; break;
    case 'snapshotMeta': bodyLength = 1 + json!.byteLength; break;
  }
  if (bodyLength > MAX_RECORD_BYTES) throw new RangeError(`record of ${bodyLength} bytes exceeds ${MAX_RECORD_BYTES}`);
  const out = new Uint8Array(HEADER_BYTES + bodyLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, bodyLength);
  out[HEADER_BYTES] = TYPE[rec.type];
  switch (rec.type) {
    case 'hardState':
      putU53(view, HEADER_BYTES + 1, rec.hardState.currentTerm);
      putU53(view, HEADER_BYTES + 9, rec.hardState.votedFor ?? 0);
      break;
    case 'append':
      out.set(rec.entries, HEADER_BYTES + 1);
      break;
    case 'truncate':
      putU53(view, HEADER_BYTES + 1, rec.from);
      break;
    case 'seal':
      putU53(view, HEADER_BYTES + 1, rec.next);
      break;
    case 'purge':
      putU53(view, HEADER_BYTES + 1, rec.throughIndex);
      break;
    case 'logStart':
      putU53(view, HEADER_BYTES + 1, rec.purgedThrough);
      putU53(view, HEADER_BYTES + 9, rec.firstSegment);
      break;
    case 'snapshotMeta':
      out.set(json!, HEADER_BYTES + 1);
      break;
  }
  view.setUint32(4, checksum(out, 0, HEADER_BYTES + bodyLength));
  return out;
}

export interface ReplayResult {
  readonly records: LogRecord[];
  /** The byte offset of each record in `records`. */
  readonly offsets: number[];
  /** Bytes of whole, valid records; a torn tail starts here. */
  readonly validBytes: number;
  /** Bytes after `validBytes` that were dropped as a torn write (0 when the file ended cleanly). */
  readonly tornBytes: number;
}

/**
 * Why the record at `at` does not check out, or null when it is whole and its checksum matches.
 * Only the framing is checked here; the body is decoded by the caller.
 */
function frameProblem(bytes: Uint8Array, view: DataView, at: number): string | null {
  if (bytes.byteLength - at < HEADER_BYTES) return `${bytes.byteLength - at} bytes, less than a record header`;
  const bodyLength = view.getUint32(at);
  if (bodyLength === 0 || bodyLength > MAX_RECORD_BYTES) return `impossible record length ${bodyLength}`;
  const end = at + HEADER_BYTES + bodyLength;
  if (end > bytes.byteLength) return `record length ${bodyLength} runs past the end of the file`;
  if (checksum(bytes, at, end) !== view.getUint32(at + 4)) return 'checksum mismatch';
  return null;
}

/** Could a writer have put a record starting at `at`? A cheap test of the type and length before a checksum. */
function plausibleStart(bytes: Uint8Array, view: DataView, at: number): boolean {
  if (bytes.byteLength - at < HEADER_BYTES + 1) return false;
  const bodyLength = view.getUint32(at);
  if (bodyLength === 0 || at + HEADER_BYTES + bodyLength > bytes.byteLength) return false;
  switch (bytes[at + HEADER_BYTES]) {
    case TYPE.hardState: case TYPE.logStart: return bodyLength === 17;
    case TYPE.truncate: case TYPE.seal: case TYPE.purge: return bodyLength === 9;
    case TYPE.append: return bodyLength >= 5;
    case TYPE.snapshotMeta: return bodyLength >= 3;
    default: return false;
  }
}

/** The offset of the first whole, checksummed record after `from`, or -1. */
function nextValidRecord(bytes: Uint8Array, view: DataView, from: number): number {
  for (let at = from + 1; at + HEADER_BYTES < bytes.byteLength; at++) {
    if (plausibleStart(bytes, view, at) && frameProblem(bytes, view, at) === null) return at;
  }
  return -1;
}

/**
 * Reads every record of a log file's bytes. Throws CorruptLogError for damage before the tail.
 * @example const { records, tornBytes } = replayRecords(bytes, 'n1/raft.log');
 */
export function replayRecords(bytes: Uint8Array, file: string): ReplayResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: LogRecord[] = [];
  const offsets: number[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const problem = frameProblem(bytes, view, at);
    if (problem !== null) {
      const next = nextValidRecord(bytes, view, at);
      if (next >= 0) throw new CorruptLogError(file, at, `${problem}, with a valid record after it at offset ${next}`);
      return { records, offsets, validBytes: at, tornBytes: bytes.byteLength - at };
    }
    const end = at + HEADER_BYTES + view.getUint32(at);
    records.push(decodeBody(bytes.subarray(at + HEADER_BYTES, end), view, at + HEADER_BYTES, file, at));
    offsets.push(at);
    at = end;
  }
  return { records, offsets, validBytes: at, tornBytes: 0 };
}

function decodeBody(body: Uint8Array, view: DataView, at: number, file: string, offset: number): LogRecord {
  const need = (n: number) => {
    if (body.byteLength !== n) throw new CorruptLogError(file, offset, `record type ${body[0]} has ${body.byteLength} bytes, expected ${n}`);
  };
  switch (body[0]) {
    case TYPE.hardState: {
      need(17);
      const vote = getU53(view, at + 9);
      return { type: 'hardState', hardState: { currentTerm: getU53(view, at + 1) as Term, votedFor: vote === 0 ? null : (vote as NodeId) } };
    }
    case TYPE.append:
      return { type: 'append', entries: new Uint8Array(body.subarray(1)) }; // a copy, even of a Buffer (whose slice shares memory)
    case TYPE.truncate:
      need(9);
      return { type: 'truncate', from: getU53(view, at + 1) as LogIndex };
    case TYPE.seal:
      need(9);
      return { type: 'seal', next: getU53(view, at + 1) };
    case TYPE.purge:
      need(9);
      return { type: 'purge', throughIndex: getU53(view, at + 1) as LogIndex };
    case TYPE.logStart:
      need(17);
      return { type: 'logStart', purgedThrough: getU53(view, at + 1) as LogIndex, firstSegment: getU53(view, at + 9) };
    case TYPE.snapshotMeta:
      try {
        return { type: 'snapshotMeta', meta: validateSnapshotMeta(JSON.parse(utf8Decoder.decode(body.subarray(1)))) };
      } catch (err) {
        throw new CorruptLogError(file, offset, `a snapshotMeta record that does not hold a valid snapshot meta (${(err as Error).message})`);
      }
    default:
      throw new CorruptLogError(file, offset, `unknown record type ${body[0]}`);
  }
}
