/**
 * FileStorage: the durable, embedded RaftStorage (docs/STORAGE.md). No server: a directory per node.
 *
 *   <dir>/LOCK                       pid and token of the opening that has the directory (storage/dir-lock.ts)
 *   <dir>/hard-state                 term and vote: one checksummed record, replaced atomically
 *                                    (write hard-state.tmp, fdatasync, rename, fsync the directory)
 *   <dir>/segment-0000000001.log     the log: append-only checksummed records (storage/record-log.ts),
 *   <dir>/segment-0000000002.log     appends and truncations, in segments of `segmentBytes`
 *   <dir>/snapshot.meta, log-start   the current snapshot and the purge point, replaced atomically
 *   <dir>/snapshot-<id>.snap         the current snapshot's bytes
 *
 * File names and recovery live in storage/file-layout.ts; this file is the actor that writes them.
 *
 * Group commit: writes that arrive while an fdatasync is under way wait for the next one, so one
 * fdatasync covers every write of a batch, however many entries (DESIGN.md section 4). Every answer
 * to a write means durable: the Raft actor relies on it for the persistence rules of seed 002.
 * Reads are served from an in-memory copy of the log, which also holds entries not yet on disk.
 *
 * Recovery reads every segment back and verifies every checksum. A torn tail of the last segment
 * (a write cut short by a crash) is cut off and logged; any other damage, a missing segment or a
 * missing hard-state file refuses to start with CorruptLogError naming the file and the offset.
 * A failed write or fdatasync stops the storage actor (and so the node) with StorageIoError: after
 * a failed fsync nothing tells which writes reached the disk, so the node must not go on.
 *
 * @example
 * const node = await RaftNode.start({ system, id: 1, network, stateMachine,
 *   storage: fileStorageSpec({ dir: '/var/lib/myapp/raft-1' }) });
 */
import { closeSync, fdatasync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync, writevSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import type { Actor, ActorContext, ActorSpec } from '../runtime/actor';
import { DeferredReply, replyError } from '../runtime/actor';
import { MalformedMessageError } from '../actors/raft/core/errors';
import { encodeEntries } from '../actors/raft/codec';
import type { HardState, LogIndex, NodeId, SnapshotMeta, Term } from '../actors/raft/core/types';
import { isRefusal, MemoryStore, validIndex } from './memory-storage';
import { planLogWrite } from './durable-store';
import { encodeRecord } from './record-log';
import { planSnapshotChunk, planSnapshotRead, readSnapshotId, sameMeta, type IncomingSnapshot } from './snapshot';
import { SnapshotGoneError, StorageContractError, type StorageMsg, type StoredState } from './storage';
import { acquireLock, releaseLock } from './dir-lock';
import {
  fsyncDirSync, HARD_STATE, HARD_STATE_TMP, LOG_START, recoverDir, segmentName,
  SNAPSHOT_META, snapName, snapTmpName, writeAtomicSync, type Segment,
} from './file-layout';

export { StorageLockedError } from './dir-lock';
export { recoverDir, readFileStorage, type RecoveredDir } from './file-layout';

const fdatasyncAsync = promisify(fdatasync);

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Most bytes one flush writes (unless a single write is bigger): see the append path. */
export const MAX_FLUSH_BYTES = 64 * 1024 * 1024;
export const MIN_SEGMENT_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024;

export interface FileStorageOptions {
  /** The node's data directory; created if missing. One node per directory. */
  readonly dir: string;
  /** Start a new segment once the current one holds this many bytes (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Counters to read from any thread: make them with `FileStorageStats.create()` and pass `.buffer`. */
  readonly stats?: SharedArrayBuffer;
}


/** A write, fdatasync or rename failed. The node stops: what reached the disk is unknown. */
export class StorageIoError extends Error {
  readonly code = 'StorageIo';
  constructor(readonly op: string, readonly file: string, readonly reason: string) {
    super(`storage ${op} of ${file} failed: ${reason}; the node stops, since which writes are durable is unknown`);
    this.name = 'StorageIoError';
  }
}

const STAT = { fsyncs: 0, batches: 1, records: 2, entries: 3, bytes: 4, segmentsCreated: 5, hardStateWrites: 6, snapshotsWritten: 7, purges: 8, segmentsDeleted: 9 } as const;
type StatName = keyof typeof STAT;

/**
 * FileStorage's counters in shared memory, readable from any thread while the node runs.
 * @example
 * const stats = FileStorageStats.create();
 * RaftNode.start({ ..., storage: fileStorageSpec({ dir, stats: stats.buffer }) });
 * console.log(stats.read().fsyncs);
 */
export class FileStorageStats {
  private readonly counters: Float64Array;
  private constructor(readonly buffer: SharedArrayBuffer) { this.counters = new Float64Array(buffer); }
  static create(): FileStorageStats { return new FileStorageStats(new SharedArrayBuffer(8 * Object.keys(STAT).length)); }
  static over(buffer: SharedArrayBuffer): FileStorageStats { return new FileStorageStats(buffer); }
  add(name: StatName, n = 1): void { this.counters[STAT[name]] += n; }
  /**
   * Since this actor started: fsyncs (fdatasync and fsync calls, every file and the directory),
   * batches (log flushes), records, entries and bytes written to the log, segments created, hard states written,
   * snapshots made current, purges recorded (log-start writes) and segments deleted by them.
   */
  read(): Record<StatName, number> {
    const out = {} as Record<StatName, number>;
    for (const k of Object.keys(STAT) as StatName[]) out[k] = this.counters[STAT[k]];
    return out;
  }
}

/** Checks the options at the boundary; throws TypeError or RangeError naming the field. */
export function validateFileStorageOptions(opts: FileStorageOptions): Required<Omit<FileStorageOptions, 'stats'>> & { stats?: SharedArrayBuffer } {
  if (opts === null || typeof opts !== 'object') throw new TypeError('FileStorage options must be an object with a dir');
  if (typeof opts.dir !== 'string' || opts.dir.length === 0) throw new TypeError(`FileStorage dir must be a non-empty path, got ${JSON.stringify(opts.dir)}`);
  const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES || segmentBytes > MAX_SEGMENT_BYTES) {
    throw new RangeError(`FileStorage segmentBytes must be an integer in ${MIN_SEGMENT_BYTES}..${MAX_SEGMENT_BYTES}, got ${String(opts.segmentBytes)}`);
  }
  if (opts.stats !== undefined && !(opts.stats instanceof SharedArrayBuffer)) throw new TypeError('FileStorage stats must be the buffer of FileStorageStats.create()');
  for (const k of Object.keys(opts)) {
    if (k !== 'dir' && k !== 'segmentBytes' && k !== 'stats') throw new TypeError(`unknown FileStorage option ${JSON.stringify(k)}`);
  }
  return { dir: resolve(opts.dir), segmentBytes, stats: opts.stats };
}

function validNodeId(v: unknown): NodeId {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new StorageContractError(`votedFor must be null or a node id >= 1, got ${String(v)}`);
  return v as NodeId;
}

/** Log writes (and purges) waiting for the next flush; `purge` is the highest purge point among them, `maxIndex` the highest entry index appended. */
interface Batch { buffers: Uint8Array[]; bytes: number; records: number; entries: number; maxIndex: number; purge: number | null; replies: DeferredReply<unknown>[]; values: unknown[] }
const emptyBatch = (): Batch => ({ buffers: [], bytes: 0, records: 0, entries: 0, maxIndex: 0, purge: null, replies: [], values: [] });

export class FileStorageActor implements Actor<StorageMsg> {
  private readonly opts: ReturnType<typeof validateFileStorageOptions>;
  private readonly stats: FileStorageStats;
  private store!: MemoryStore;
  private ctx!: ActorContext;
  private segment!: Segment;
  /** The live segments, oldest first; the last is `segment`. */
  private segments: Segment[] = [];
  private fh!: FileHandle;
  /** The durable current snapshot, and a descriptor of its file for reads. (`store.snapshot` is the latest accepted, maybe still being made durable.) */
  private snap: { meta: SnapshotMeta; fd: number } | null = null;
  /** The snapshot being received into its .tmp file. */
  private incoming: { state: IncomingSnapshot; fd: number; path: string } | null = null;
  /** Finished snapshots being made durable, one after the other; never rejects. */
  private snapChain: Promise<void> = Promise.resolve();
  private dirFh!: FileHandle;
  /** Log writes waiting for the next flush. */
  private batch = emptyBatch();
  /** Batches that reached MAX_FLUSH_BYTES while a flush ran, oldest first; flushed before `batch`. */
  private fullBatches: Batch[] = [];
  private flushing: Promise<void> | null = null;
  /** The hard state to write next, and who waits for it. */
  private hsNext: { bytes: Uint8Array; replies: DeferredReply<unknown>[] } | null = null;
  private hsWriting: Promise<void> | null = null;
  private failure: StorageIoError | null = null;
  private closed = false;
  /** What this opening wrote to LOCK (pid and token). */
  private lock = '';

  constructor(opts: FileStorageOptions) {
    this.opts = validateFileStorageOptions(opts);
    this.stats = this.opts.stats ? FileStorageStats.over(this.opts.stats) : FileStorageStats.create();
  }

  async started(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    const { dir } = this.opts;
    const created = mkdirSync(dir, { recursive: true });
    // New directories are entries of their parents: make those durable too, or a power loss could
    // bring the node back without its directory, as a wiped (pristine) node.
    if (created !== undefined) for (let d = dir; ; d = dirname(d)) { fsyncDirSync(dirname(d)); if (d === created) break; }
    this.lock = acquireLock(dir);
    try {
      rmSync(join(dir, HARD_STATE_TMP), { force: true }); // an unacknowledged hard state: never used
      const rec = recoverDir(dir, {
        repair: true,
        onTornTail: (file, tornBytes) => ctx.logger.warn({ file, tornBytes }, 'recovery cut a torn tail (a write the crash cut short; it was never acknowledged)'),
      });
      this.store = rec.store;
      if (rec.removed.length > 0) ctx.logger.info({ files: rec.removed }, 'recovery deleted files a crash left unfinished (never acknowledged, or already replaced)');
      this.segments = rec.segments;
      let seg = rec.segments[rec.segments.length - 1];
      if (seg === undefined) {
        seg = { seq: 1, path: join(dir, segmentName(1)), size: 0, maxIndex: 0 };
        this.segments = [seg];
        closeSync(openSync(seg.path, 'wx'));
        fsyncDirSync(dir);
        this.stats.add('fsyncs');
      }
      if (rec.fresh) {
        writeAtomicSync(dir, HARD_STATE, encodeRecord({ type: 'hardState', hardState: rec.hardState }));
        this.stats.add('fsyncs', 2);
      }
      this.segment = seg;
      this.fh = await open(seg.path, 'a');
      this.dirFh = await open(dir, 'r');
      if (rec.snapshot !== null) this.snap = { meta: rec.snapshot, fd: openSync(join(dir, snapName(rec.snapshot.id)), 'r') };
      ctx.logger.info({
        dir, segments: this.segments.length, firstSegment: this.segments[0].seq, firstIndex: this.store.firstIndex, lastIndex: this.store.lastIndex(),
        snapshot: rec.snapshot?.id ?? null, term: this.store.hardState.currentTerm, tornBytes: rec.tornBytes,
      }, 'file storage recovered');
    } catch (err) {
      releaseLock(dir, this.lock);
      throw err;
    }
  }

  /**
   * A write the contract forbids is refused (StorageContractError, MalformedMessageError) and
   * changes nothing; so are a purged read, a gone snapshot and a snapshot whose bytes do not match
   * its meta. The actor goes on. A failed write or read stops it (StorageIoError).
   */
  receive(msg: StorageMsg): unknown {
    if (this.failure) return replyError(this.failure);
    try {
      return this.handle(msg);
    } catch (err) {
      if (isRefusal(err) || err instanceof MalformedMessageError) return replyError(err);
      if (err instanceof StorageIoError) {
        this.fail(err, []);
        return replyError(err);
      }
      throw err;
    }
  }

  private handle(msg: StorageMsg): unknown {
    if (msg === null || typeof msg !== 'object') throw new StorageContractError(`expected a storage message object, got ${String(msg)}`);
    switch (msg.type) {
      case 'getInitialState':
        return { hardState: this.store.hardState, snapshot: this.snap?.meta ?? null, firstIndex: this.store.firstIndex, entries: encodeEntries(this.store.log) } satisfies StoredState;
      case 'getEntries':
        return encodeEntries(this.store.slice(validIndex(msg.from, 'from'), validIndex(msg.toExclusive, 'toExclusive')));
      case 'getSnapshot':
        return this.snap?.meta ?? null;
      case 'readSnapshot':
        return this.readSnapshot(msg);
      case 'writeSnapshot':
        return this.writeSnapshot(msg);
      case 'purgeLog': {
        const through = validIndex(msg.throughIndex, 'throughIndex');
        // Checked against the latest accepted snapshot; the purge is written only once that one is durable.
        if (this.store.purge(through)) this.batch.purge = Math.max(this.batch.purge ?? 0, through);
        return this.enqueue(undefined);
      }
      case 'saveHardState': return this.saveHardState(msg.hardState);
      case 'appendEntries': case 'replicateEntries': case 'truncate': {
        const w = planLogWrite(this.store, msg);
        const reply = new DeferredReply<unknown>();
        const encoded = w.records.map((r) => encodeRecord(r.rec));
        // A batch stays below MAX_FLUSH_BYTES (one write may go over it alone): a segment then never
        // grows past segmentBytes + one batch, and recovery can read it whole.
        const size = encoded.reduce((n, b) => n + b.byteLength, 0);
        if (this.batch.bytes > 0 && this.batch.bytes + size > MAX_FLUSH_BYTES) {
          this.fullBatches.push(this.batch);
          this.batch = emptyBatch();
        }
        for (const bytes of encoded) {
          this.batch.buffers.push(bytes);
          this.batch.bytes += bytes.byteLength;
          this.batch.records++;
        }
        this.batch.entries += w.entries.length;
        if (w.entries.length > 0) this.batch.maxIndex = Math.max(this.batch.maxIndex, w.entries[w.entries.length - 1].index);
        this.batch.replies.push(reply);
        this.batch.values.push(w.value);
        if (this.flushing === null) this.flushing = Promise.resolve().then(() => this.flushLoop());
        return reply;
      }
      default: {
        const never: never = msg;
        throw new StorageContractError(`unknown storage message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }

  /** A reply that joins the current log batch: answered after its flush, in order with the log writes. */
  private enqueue(value: unknown): DeferredReply<unknown> {
    const reply = new DeferredReply<unknown>();
    this.batch.replies.push(reply);
    this.batch.values.push(value);
    if (this.flushing === null) this.flushing = Promise.resolve().then(() => this.flushLoop());
    return reply;
  }

  /** Up to maxBytes of the durable current snapshot, read from its file (pread). */
  private readSnapshot(msg: Extract<StorageMsg, { type: 'readSnapshot' }>): Uint8Array {
    const id = readSnapshotId(msg);
    const snap = this.snap;
    if (snap === null || snap.meta.id !== id) throw new SnapshotGoneError(id);
    const { offset, length } = planSnapshotRead(msg, snap.meta.byteLength);
    const out = new Uint8Array(length);
    const path = join(this.opts.dir, snapName(id));
    for (let got = 0; got < length;) {
      const n = this.ioSync('read', path, () => readSync(snap.fd, out, got, length - got, offset + got));
      if (n <= 0) throw new StorageIoError('read', path, `the file ended at ${offset + got} bytes, snapshot.meta says ${snap.meta.byteLength}`);
      got += n;
    }
    return out;
  }

  /**
   * One chunk into snapshot-<id>.tmp (written to the page cache at once). On `done`, with length and
   * crc32 checked: renamed to snapshot-<id>.snap, then made durable and current on the snapshot chain.
   */
  private writeSnapshot(msg: Extract<StorageMsg, { type: 'writeSnapshot' }>): unknown {
    const p = planSnapshotChunk(this.incoming?.state ?? null, msg);
    this.store.checkCovers(p.meta);
    const latest = this.store.snapshot;
    if (latest !== null && latest.id === p.meta.id && !sameMeta(latest, p.meta)) {
      throw new StorageContractError(`snapshot ${p.meta.id} is already the current snapshot, with a different meta`);
    }
    if (p.restart || p.failure) this.dropIncoming();
    if (p.failure) throw p.failure;
    const { dir } = this.opts;
    if (p.restart) {
      const path = join(dir, snapTmpName(p.meta.id));
      this.incoming = { state: p.next, fd: this.ioSync('create', path, () => openSync(path, 'w')), path };
    }
    const inc = this.incoming!;
    for (let put = 0; put < p.data.byteLength;) {
      put += this.ioSync('write', inc.path, () => writeSync(inc.fd, p.data, put, p.data.byteLength - put, msg.offset + put));
    }
    inc.state = p.next;
    if (!p.complete) return undefined;
    this.incoming = null;
    const reply = new DeferredReply<unknown>();
    if (latest !== null && latest.id === p.meta.id) {
      // The same snapshot again (a retried transfer): the one accepted already is (or is becoming) durable.
      closeSync(inc.fd);
      rmSync(inc.path, { force: true });
      this.snapChain = this.snapChain.then(() => { if (this.failure) reply.reject(this.failure); else reply.resolve(undefined); });
      return reply;
    }
    const snapPath = join(dir, snapName(p.meta.id));
    this.ioSync('rename', inc.path, () => renameSync(inc.path, snapPath));
    this.store.snapshot = p.meta;
    this.snapChain = this.snapChain.then(() => this.finishSnapshot(p.meta, inc.fd, snapPath, reply));
    return reply;
  }

  /** Makes a finished snapshot durable and current: fdatasync its file, fsync the directory, replace snapshot.meta, delete the previous file. */
  private async finishSnapshot(meta: SnapshotMeta, fd: number, snapPath: string, reply: DeferredReply<unknown>): Promise<void> {
    try {
      if (this.failure) throw this.failure;
      try {
        await this.io('fdatasync', snapPath, () => fdatasyncAsync(fd));
      } finally {
        closeSync(fd);
      }
      await this.io('fsync', this.opts.dir, () => this.dirFh.sync());
      await this.writeAtomic(SNAPSHOT_META, encodeRecord({ type: 'snapshotMeta', meta }));
      const old = this.snap;
      this.snap = { meta, fd: this.ioSync('open', snapPath, () => openSync(snapPath, 'r')) };
      if (old !== null) {
        closeSync(old.fd);
        const oldPath = join(this.opts.dir, snapName(old.meta.id));
        await this.io('unlink', oldPath, () => unlink(oldPath)); // an orphan left by a crash here is deleted at start
      }
      this.stats.add('fsyncs', 2);
      this.stats.add('snapshotsWritten');
      reply.resolve(undefined);
    } catch (err) {
      this.fail(err as Error, [reply]);
    }
  }

  /** Closes and deletes the unfinished snapshot's .tmp file, if any. */
  private dropIncoming(): void {
    const inc = this.incoming;
    if (inc === null) return;
    this.incoming = null;
    closeSync(inc.fd);
    rmSync(inc.path, { force: true });
  }

  /**
   * Records a purge through `through` (after every snapshot accepted so far is durable): replaces
   * log-start, then deletes the segments all of whose entries it covers (never the current one).
   */
  private async persistPurge(through: number): Promise<void> {
    await this.snapChain;
    if (this.failure) throw this.failure;
    let k = 0;
    while (k < this.segments.length - 1 && this.segments[k].maxIndex <= through) k++;
    const first = this.segments[k].seq;
    await this.writeAtomic(LOG_START, encodeRecord({ type: 'logStart', purgedThrough: through as LogIndex, firstSegment: first }));
    this.stats.add('fsyncs', 2);
    this.stats.add('purges');
    if (k === 0) return;
    const gone = this.segments.slice(0, k);
    this.segments = this.segments.slice(k);
    for (const sg of gone) await this.io('unlink', sg.path, () => unlink(sg.path));
    await this.io('fsync', this.opts.dir, () => this.dirFh.sync());
    this.stats.add('fsyncs');
    this.stats.add('segmentsDeleted', k);
  }

  /** Replaces `dir/name` atomically: write name.tmp, fdatasync, rename, fsync the directory. */
  private async writeAtomic(name: string, bytes: Uint8Array): Promise<void> {
    const { dir } = this.opts;
    const tmp = join(dir, `${name}.tmp`);
    const fh = await this.io('create', tmp, () => open(tmp, 'w'));
    try {
      this.ioSync('write', tmp, () => writeAll(fh.fd, [bytes], bytes.byteLength));
      await this.io('fdatasync', tmp, () => fh.datasync());
    } finally {
      await fh.close();
    }
    await this.io('rename', tmp, () => rename(tmp, join(dir, name)));
    await this.io('fsync', dir, () => this.dirFh.sync());
  }

  async stopped(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let writes already handed to the disk finish; their askers are gone, but the bytes are ours.
    await Promise.allSettled([this.flushing, this.hsWriting, this.snapChain]);
    await Promise.allSettled([this.fh?.close(), this.dirFh?.close()]);
    for (const fd of [this.incoming?.fd, this.snap?.fd]) if (fd !== undefined) try { closeSync(fd); } catch { /* already closed */ }
    this.incoming = null;
    this.snap = null;
    releaseLock(this.opts.dir, this.lock);
  }

  /** Writes batches until none is waiting: each batch is one writev and one fdatasync. */
  private async flushLoop(): Promise<void> {
    let b = emptyBatch();
    try {
      while ((this.fullBatches.length > 0 || this.batch.replies.length > 0) && this.failure === null) {
        if (this.fullBatches.length > 0) {
          b = this.fullBatches.shift()!;
        } else {
          b = this.batch;
          this.batch = emptyBatch();
        }
        if (b.bytes > 0) {
          this.ioSync('write', this.segment.path, () => writeAll(this.fh.fd, b.buffers, b.bytes));
          await this.io('fdatasync', this.segment.path, () => this.fh.datasync());
          this.segment.size += b.bytes;
          this.segment.maxIndex = Math.max(this.segment.maxIndex, b.maxIndex);
          this.stats.add('fsyncs');
          this.stats.add('batches');
          this.stats.add('records', b.records);
          this.stats.add('entries', b.entries);
          this.stats.add('bytes', b.bytes);
        }
        if (b.purge !== null) await this.persistPurge(b.purge);
        for (let i = 0; i < b.replies.length; i++) b.replies[i].resolve(b.values[i]);
        b = emptyBatch();
        if (this.segment.size >= this.opts.segmentBytes) await this.roll();
      }
    } catch (err) {
      this.fail(err as Error, b.replies);
    } finally {
      this.flushing = null;
    }
  }

  /** Starts the next segment: make it durable first, then seal the full one (recovery relies on the order). */
  private async roll(): Promise<void> {
    const next: Segment = { seq: this.segment.seq + 1, path: join(this.opts.dir, segmentName(this.segment.seq + 1)), size: 0, maxIndex: 0 };
    const fh = await this.io('create', next.path, () => open(next.path, 'wx'));
    await this.io('fsync', this.opts.dir, () => this.dirFh.sync());
    const seal = encodeRecord({ type: 'seal', next: next.seq });
    this.ioSync('write', this.segment.path, () => writeAll(this.fh.fd, [seal], seal.byteLength));
    await this.io('fdatasync', this.segment.path, () => this.fh.datasync());
    await this.fh.close();
    this.stats.add('fsyncs', 2);
    this.stats.add('segmentsCreated');
    this.fh = fh;
    this.segment = next;
    this.segments.push(next);
    this.ctx.logger.debug({ segment: next.path }, 'started a new log segment');
  }

  /** Hard state: the latest wins; everyone who asked while a write was under way shares the next one. */
  private saveHardState(hs: HardState): DeferredReply<unknown> {
    if (hs === null || typeof hs !== 'object') throw new StorageContractError('saveHardState needs a hardState object');
    const hardState: HardState = { currentTerm: validIndex(hs.currentTerm, 'currentTerm') as number as Term, votedFor: hs.votedFor === null ? null : validNodeId(hs.votedFor) };
    const bytes = encodeRecord({ type: 'hardState', hardState });
    this.store.hardState = hardState;
    const reply = new DeferredReply<unknown>();
    if (this.hsNext === null) this.hsNext = { bytes, replies: [reply] };
    else { this.hsNext.bytes = bytes; this.hsNext.replies.push(reply); }
    if (this.hsWriting === null) this.hsWriting = Promise.resolve().then(() => this.hardStateLoop());
    return reply;
  }

  private async hardStateLoop(): Promise<void> {
    const { dir } = this.opts;
    let job: { bytes: Uint8Array; replies: DeferredReply<unknown>[] } | null = null;
    try {
      while (this.hsNext !== null && this.failure === null) {
        const next = this.hsNext;
        job = next;
        this.hsNext = null;
        const tmp = join(dir, HARD_STATE_TMP);
        const fh = await this.io('create', tmp, () => open(tmp, 'w'));
        try {
          this.ioSync('write', tmp, () => writeAll(fh.fd, [next.bytes], next.bytes.byteLength));
          await this.io('fdatasync', tmp, () => fh.datasync());
        } finally {
          await fh.close();
        }
        await this.io('rename', tmp, () => rename(tmp, join(dir, HARD_STATE)));
        await this.io('fsync', dir, () => this.dirFh.sync());
        this.stats.add('fsyncs', 2);
        this.stats.add('hardStateWrites');
        for (const r of next.replies) r.resolve(undefined);
        job = null;
      }
    } catch (err) {
      // The failed write's own askers hear the cause too (with the ones waiting behind it).
      this.fail(err as Error, job?.replies ?? []);
    } finally {
      this.hsWriting = null;
    }
  }

  private ioSync<T>(op: string, file: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new StorageIoError(op, file, (err as Error).message);
    }
  }

  private async io<T>(op: string, file: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StorageIoError) throw err;
      throw new StorageIoError(op, file, (err as Error).message);
    }
  }

  /** A write failed: refuse everything from now on, and crash (the node fails; see the class comment). */
  private fail(err: Error, waiting: readonly DeferredReply<unknown>[]): void {
    const failure = err instanceof StorageIoError ? err : new StorageIoError('write', this.opts.dir, err.message);
    // The askers hear the cause first; crashing would answer them with ActorGoneError instead.
    for (const r of [...waiting, ...this.fullBatches.flatMap((fb) => fb.replies), ...this.batch.replies, ...(this.hsNext?.replies ?? [])]) r.reject(failure);
    this.fullBatches = [];
    this.batch = emptyBatch();
    this.hsNext = null;
    if (this.failure === null) {
      this.failure = failure;
      this.ctx.logger.error({ err: failure.message }, 'storage failed');
      this.ctx.crash(failure);
    }
  }
}

/**
 * Writes every byte of `buffers` at the end of the file (a short write is continued, not lost).
 * Synchronous: it copies into the page cache, which takes microseconds, and saves the thread-pool
 * round trip an async write costs per batch; the fdatasync, which waits for the disk, stays async.
 */
function writeAll(fd: number, buffers: Uint8Array[], total: number): void {
  let written = 0;
  let bufs = buffers;
  while (written < total) {
    const n = writevSync(fd, bufs);
    if (n <= 0) throw new Error(`wrote ${n} bytes`);
    written += n;
    if (written < total) bufs = remainder(bufs, n);
  }
}

function remainder(buffers: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of buffers) {
    if (skip >= b.byteLength) { skip -= b.byteLength; continue; }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** Module entry for any placement (see fileStorageSpec). */
export function createFileStorage(opts: FileStorageOptions): FileStorageActor {
  return new FileStorageActor(opts);
}
export const FILE_STORAGE_MODULE = __filename;

/**
 * The storage spec of a node that keeps its state in `opts.dir`. Options are checked here, before
 * any thread starts.
 * @example RaftNode.start({ ..., storage: fileStorageSpec({ dir: './data/1' }) })
 */
export function fileStorageSpec(opts: FileStorageOptions): ActorSpec<FileStorageOptions> {
  const o = validateFileStorageOptions(opts);
  return { module: FILE_STORAGE_MODULE, export: 'createFileStorage', args: o.stats ? { dir: o.dir, segmentBytes: o.segmentBytes, stats: o.stats } : { dir: o.dir, segmentBytes: o.segmentBytes } };
}
