/**
 * SimStorage: the RaftStorage contract over a SimDisk, the storage every simulated node uses unless
 * the user plugs in their own. Each change is one checksummed record (storage/record-log.ts)
 * written to the disk's page cache; answers wait for a sync, so "answered" means "durable", and
 * every request that arrives before the sync completes shares it (group commit, DESIGN.md 4).
 *
 * A restarted node recovers by replaying the file: a torn tail is cut off, damage in the middle
 * refuses to start (CorruptLogError). A storage actor whose node crashed writes nothing more: the
 * disk's generation moved on.
 */
import type { Actor, ActorContext } from '../runtime/actor';
import { DeferredReply } from '../runtime/actor';
import { decodeEntries, encodeEntries } from '../actors/raft/codec';
import type { Entry, HardState, LogIndex, SnapshotMeta, Term } from '../actors/raft/core/types';
import { answeringRefusals, MemoryStore, validIndex } from '../storage/memory-storage';
import { planLogWrite, replayRecord, type PlannedRecord } from '../storage/durable-store';
import { CorruptLogError, encodeRecord, type LogRecord, replayRecords } from '../storage/record-log';
import type { IncomingSnapshot } from '../storage/snapshot';
import { StorageContractError, type StorageMsg } from '../storage/storage';
import type { SimDisk } from './disk';

/** Called by a SimStorage as its log changes (page cache order), for the log-matching check. */
export interface LogWriteListener {
  (truncateFrom: LogIndex | null, entries: readonly Entry[]): void;
}

/**
 * What is durable on one node's disk, record by record: the simulator's view for the
 * "committed means durable on a quorum" invariant. Rebuilt from the file after a crash.
 */
export class DurableView {
  hardState: HardState = { currentTerm: 0 as Term, votedFor: null };
  /** The durable current snapshot's meta. */
  snapshot: SnapshotMeta | null = null;
  /**
   * Terms by index from 1. A purge keeps the terms it knew (those entries are durable in the
   * snapshot); indexes a snapshot covers that this disk never held are holes (termAt null), except
   * lastIncludedIndex, whose term the snapshot names.
   */
  private terms: Term[] = [];

  get lastIndex(): number { return this.terms.length; }
  termAt(index: number): Term | null { return index >= 1 && index <= this.terms.length ? (this.terms[index - 1] ?? null) : null; }

  apply(rec: LogRecord, entries?: readonly Entry[]): void {
    switch (rec.type) {
      case 'hardState': this.hardState = rec.hardState; return;
      case 'truncate': if (rec.from - 1 < this.terms.length) this.terms.length = Math.max(0, rec.from - 1); return;
      case 'append': for (const e of entries ?? decodeEntries(rec.entries)) this.terms[e.index - 1] = e.term; return;
      case 'purge':
        if (rec.throughIndex > this.terms.length) this.terms.length = rec.throughIndex;
        if (this.snapshot !== null && this.snapshot.lastIncludedIndex <= this.terms.length && this.terms[this.snapshot.lastIncludedIndex - 1] === undefined) {
          this.terms[this.snapshot.lastIncludedIndex - 1] = this.snapshot.lastIncludedTerm;
        }
        return;
      case 'snapshotMeta': this.snapshot = rec.meta; return;
      case 'seal': case 'logStart': return;
    }
  }

  rebuild(records: readonly LogRecord[]): void {
    this.hardState = { currentTerm: 0 as Term, votedFor: null };
    this.snapshot = null;
    this.terms = [];
    for (const r of records) this.apply(r);
  }
}

/** One node's disk and the simulator's view of what on it is durable. Outlives the node's actors. */
export class NodeDisk {
  readonly view = new DurableView();
  /** Records written but not yet synced, in order, with their decoded entries. */
  unsynced: PlannedRecord[] = [];
  /** Bytes a recovery cut off as a torn tail, over the disk's life. */
  tornBytesRecovered = 0;
  /**
   * Finished snapshots' bytes by id. One becomes durable and current when the `snapshotMeta` record
   * naming it is synced (the file is the pointer); a recovery drops every id the file does not name.
   */
  readonly snapshots = new Map<string, Uint8Array>();
  /**
   * The snapshot being received, like unsynced bytes in the page cache: a restart of the node's
   * process finds it, a power loss (afterCrash) drops it.
   */
  incoming: { readonly state: IncomingSnapshot; readonly chunks: Uint8Array[] } | null = null;
  constructor(readonly disk: SimDisk) {}

  /** After a crash: what survived is what the file now holds (torn records included if whole). */
  afterCrash(): void {
    this.unsynced = [];
    this.incoming = null;
    this.view.rebuild(replayRecords(this.disk.durableBytes(), this.disk.file).records);
  }
}

export interface SimStorageArgs {
  readonly nodeDisk: NodeDisk;
  readonly onLogWrite?: LogWriteListener;
  /** Called when the log is purged through `throughIndex` (written to the page cache; only purges that change it). */
  readonly onLogPurge?: (throughIndex: LogIndex) => void;
  /** Called for every snapshot chunk storage accepted (`done`: the last, the snapshot is complete). */
  readonly onSnapshotChunk?: (meta: SnapshotMeta, offset: number, bytes: number, done: boolean) => void;
}

export class SimStorageActor implements Actor<StorageMsg> {
  private readonly store = new MemoryStore();
  private readonly generation: number;
  private waiting: DeferredReply<unknown>[] = [];
  private waitingValues: unknown[] = [];
  private syncTimer = false;
  private ctx!: ActorContext;

  constructor(private readonly args: SimStorageArgs) {
    this.generation = args.nodeDisk.disk.generation;
  }

  /** Recovery: replay the file; cut a torn tail; refuse (throw) on damage before the tail. */
  started(ctx: ActorContext): void {
    this.ctx = ctx;
    const { disk } = this.args.nodeDisk;
    // After a power loss nothing is pending; after a process restart the page cache still holds
    // the previous process's unsynced writes, and they are part of the file.
    const bytes = disk.readAll();
    const replay = replayRecords(bytes, disk.file);
    if (replay.tornBytes > 0) {
      // A torn tail only follows a power loss, which leaves nothing pending: the cut is on durable bytes.
      disk.rewrite(bytes.slice(0, replay.validBytes));
      this.args.nodeDisk.tornBytesRecovered += replay.tornBytes;
      ctx.logger.warn({ file: disk.file, tornBytes: replay.tornBytes }, 'recovery cut a torn tail');
    }
    replay.records.forEach((rec, i) => {
      const { hardState } = replayRecord(this.store, rec, disk.file, replay.offsets[i]);
      if (hardState !== null) this.store.hardState = hardState;
    });
    const snaps = this.args.nodeDisk.snapshots;
    if (this.store.snapshot !== null) {
      const data = snaps.get(this.store.snapshot.id);
      if (data === undefined) throw new CorruptLogError(disk.file, 0, `the log names snapshot ${this.store.snapshot.id}, whose bytes are gone`);
      this.store.snapshotData = data;
    }
    for (const id of [...snaps.keys()]) if (id !== this.store.snapshot?.id) snaps.delete(id); // unfinished or replaced: never current
    const inc = this.args.nodeDisk.incoming;
    if (inc !== null) { this.store.incoming = inc.state; this.store.incomingChunks = inc.chunks; }
    this.args.nodeDisk.view.rebuild(disk.hasUnsynced() ? replayRecords(disk.durableBytes(), disk.file).records : replay.records);
    this.args.onLogWrite?.(this.store.firstIndex, this.store.log);
  }

  /** Refusals (a contract violation, a purged read, a gone or mismatched snapshot) answer the asker; the actor goes on. */
  receive(msg: StorageMsg): unknown {
    return answeringRefusals(() => this.handle(msg));
  }

  private handle(msg: StorageMsg): unknown {
    // Our process is dead once the disk's generation moved on: nothing reaches the disk or the
    // checker, and nobody hears back.
    const read = msg.type === 'getInitialState' || msg.type === 'getEntries' || msg.type === 'getSnapshot' || msg.type === 'readSnapshot';
    if (!read && this.args.nodeDisk.disk.generation !== this.generation) return new DeferredReply();
    switch (msg.type) {
      case 'getInitialState':
        return this.store.storedState();
      case 'getSnapshot':
        return this.store.snapshot;
      case 'readSnapshot':
        return this.store.readSnapshot(msg);
      case 'purgeLog': {
        const through = validIndex(msg.throughIndex, 'throughIndex');
        const changed = this.store.purge(through);
        if (changed) this.args.onLogPurge?.(through);
        return this.write(changed ? [{ rec: { type: 'purge', throughIndex: through } }] : [], undefined);
      }
      case 'writeSnapshot': {
        try {
          this.store.writeSnapshot(msg); // a refusal throws; a refused done drops the unfinished snapshot
        } finally {
          this.args.nodeDisk.incoming = this.store.incoming === null ? null : { state: this.store.incoming, chunks: this.store.incomingChunks };
        }
        this.args.onSnapshotChunk?.(msg.meta, msg.offset, msg.data.byteLength, msg.done === true);
        if (msg.done !== true) return undefined;
        // Complete: the bytes sit on the disk object; the record naming them is the durable pointer.
        this.args.nodeDisk.snapshots.set(this.store.snapshot!.id, this.store.snapshotData!);
        return this.write([{ rec: { type: 'snapshotMeta', meta: this.store.snapshot! } }], undefined);
      }
      case 'getEntries':
        return encodeEntries(this.store.slice(validIndex(msg.from, 'from'), validIndex(msg.toExclusive, 'toExclusive')));
      case 'saveHardState': {
        const hs: HardState = { currentTerm: msg.hardState.currentTerm, votedFor: msg.hardState.votedFor };
        this.store.hardState = hs;
        return this.write([{ rec: { type: 'hardState', hardState: hs } }], undefined);
      }
      case 'appendEntries': case 'replicateEntries': case 'truncate': {
        const w = planLogWrite(this.store, msg);
        if (w.records.length > 0) this.args.onLogWrite?.(w.truncateFrom, w.entries);
        return this.write(w.records, w.value);
      }
      default: {
        const never: never = msg;
        throw new StorageContractError(`unknown storage message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }

  /** Writes the records to the page cache and answers `value` once a sync covers them. */
  private write(recs: readonly PlannedRecord[], value: unknown): DeferredReply<unknown> {
    const reply = new DeferredReply<unknown>();
    const nd = this.args.nodeDisk;
    if (nd.disk.generation !== this.generation) return reply; // our process is dead: nothing reaches the disk, nobody hears back
    for (const r of recs) {
      nd.disk.write(encodeRecord(r.rec));
      nd.unsynced.push(r);
    }
    this.waiting.push(reply);
    this.waitingValues.push(value);
    if (!this.syncTimer) {
      this.syncTimer = true;
      this.ctx.clock.setTimeout(() => this.sync(), nd.disk.syncLatencyMs());
    }
    return reply;
  }

  private sync(): void {
    this.syncTimer = false;
    const nd = this.args.nodeDisk;
    if (nd.disk.generation !== this.generation) return;
    nd.disk.sync();
    for (const u of nd.unsynced) nd.view.apply(u.rec, u.entries);
    nd.unsynced = [];
    const [replies, values] = [this.waiting, this.waitingValues];
    this.waiting = [];
    this.waitingValues = [];
    for (let i = 0; i < replies.length; i++) replies[i].resolve(values[i]);
  }
}
