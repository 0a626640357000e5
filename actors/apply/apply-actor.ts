/**
 * The Apply actor: applies committed entries to the application's state machine strictly in index
 * order, in batches, off the Raft actor's path, so a slow state machine never delays heartbeats
 * (async-raft #76). It refuses a batch that does not follow the last applied index: applying out of
 * order or twice would silently fork the replicas, so it crashes the node instead.
 *
 * It also moves the state machine to and from snapshots (seed 002): `createSnapshot` takes the
 * state as of the last applied index and writes it to storage (durable when answered);
 * `restore` reads the current snapshot back from storage, checks its crc32, and hands it to the
 * state machine. Both run between apply batches, so neither overlaps an apply.
 */
import { crc32 } from 'node:zlib';
import type { Actor, ActorContext, ActorRef } from '../../runtime/actor';
import { replyError } from '../../runtime/actor';
import { decodeEntries } from '../raft/codec';
import { InvariantViolation, NotAllowedError } from '../raft/core/errors';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from '../raft/core/types';
import type { StorageMsg } from '../../storage/storage';
import type { StateMachine, StateMachineSpec } from './state-machine';
import { packSnapshot, unpackSnapshot } from '../../runtime/cpu-pool';
import { withSessions } from './sessions';

/** Where a snapshot of the state at `index` sits in the log, as the Raft core knows it. */
export interface SnapshotPoint {
  readonly index: LogIndex;
  readonly term: Term;
  readonly membership: Membership;
  readonly membershipIndex: LogIndex;
}

export type ApplyMsg =
  /** Committed entries, encoded, the next after the last applied. */
  | { readonly type: 'apply'; readonly entries: Uint8Array }
  /** Answer: the state machine's last applied index. */
  | { readonly type: 'lastApplied' }
  /** Answer: the state machine's answer to a local read (see StateMachine.query). */
  | { readonly type: 'query'; readonly query: unknown }
  /** Answer: true when the state machine can take and restore snapshots. */
  | { readonly type: 'canSnapshot' }
  /**
   * Take a snapshot of the state as of the last applied index and write it to storage in chunks
   * of `maxChunkBytes`. `point` is where the Raft core knew the state to be; the snapshot may be
   * later (entries applied since), and then this actor's own record of those entries says where.
   * Answer: the SnapshotMeta, once storage holds it durably.
   */
  | { readonly type: 'createSnapshot'; readonly point: SnapshotPoint; readonly maxChunkBytes: number; readonly compressionLevel?: number }
  /** Replace the state with storage's current snapshot, which must be `meta`. Answer: undefined. */
  | { readonly type: 'restore'; readonly meta: SnapshotMeta; readonly maxChunkBytes: number };

/** What the Apply actor tells the Raft actor after each batch. */
export interface AppliedMsg {
  readonly type: 'applied';
  readonly index: LogIndex;
  /** Per applied entry, from `firstIndex` on: the state machine's result. */
  readonly firstIndex: LogIndex;
  readonly results: readonly unknown[];
}

export interface ApplyArgs {
  readonly raftActorId: string;
  readonly stateMachine: StateMachineSpec;
  /** The node's storage actor, which holds snapshots. */
  readonly storageActorId?: string;
  /** Wrap the state machine in the client-session layer (exactly-once writes; see sessions.ts). */
  readonly sessions?: boolean;
}

/** Largest chunk read back from storage when none is given. */
const DEFAULT_CHUNK_BYTES = 3 * 1024 * 1024;

export class ApplyActor implements Actor<ApplyMsg> {
  private lastApplied: LogIndex | null = null;
  private raft!: ActorRef<AppliedMsg>;
  private storage: ActorRef<StorageMsg> | null = null;
  private ctx!: ActorContext;
  /** What this actor saw of the log since it started or restored: the term at lastApplied, and the latest config entry applied. */
  private seen: { index: LogIndex; term: Term; config: { membership: Membership; index: LogIndex } | null } | null = null;

  constructor(private readonly sm: StateMachine, private readonly raftActorId: string, private readonly storageActorId?: string) {}

  async started(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    this.raft = ctx.ref<AppliedMsg>(this.raftActorId);
    if (this.storageActorId !== undefined) this.storage = ctx.ref<StorageMsg>(this.storageActorId);
    this.lastApplied = await this.sm.lastApplied();
  }

  /**
   * Not `async`: a message whose answer is ready (a synchronous query, a synchronous apply) is
   * answered in the same turn, so the mailbox moves on at once. An async receive kept the mailbox
   * busy until a microtask after the dispatcher's drain: one query per event-loop turn, which under
   * local placement serialized linearizable reads behind it and defeated their batching (found by
   * the reads benchmark: 1.0 read per quorum round at 256 clients).
   */
  receive(msg: ApplyMsg): unknown {
    switch (msg.type) {
      case 'lastApplied':
        return this.lastApplied;
      case 'query':
        if (!this.sm.query) return replyError(new TypeError('this state machine does not answer queries'));
        return this.sm.query(msg.query);
      case 'canSnapshot':
        return typeof this.sm.snapshot === 'function' && typeof this.sm.restore === 'function' && this.storage !== null;
      case 'apply': return this.applyBatch(msg.entries);
      case 'createSnapshot': return this.createSnapshot(msg.point, msg.maxChunkBytes, msg.compressionLevel ?? 0);
      case 'restore': return this.restore(msg.meta, msg.maxChunkBytes);
      default: {
        const never: never = msg;
        throw new TypeError(`unknown apply message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }

  /** Applies one batch; synchronously when the state machine's apply is, else once its promise settles. */
  private applyBatch(bytes: Uint8Array): unknown {
    const entries = decodeEntries(bytes);
    if (entries.length === 0) return undefined;
    const first = entries[0].index;
    if (first !== (this.lastApplied ?? 0) + 1) {
      throw new InvariantViolation(`apply batch starts at ${first}, but last applied is ${this.lastApplied}`);
    }
    const results = this.sm.apply(entries);
    if (results !== null && typeof (results as Promise<unknown>).then === 'function') {
      return (results as Promise<readonly unknown[]>).then((r) => this.applied(entries, r));
    }
    return this.applied(entries, results as readonly unknown[]);
  }

  private applied(entries: readonly Entry[], results: readonly unknown[]): undefined {
    if (!Array.isArray(results) || results.length !== entries.length) {
      throw new InvariantViolation(`state machine returned ${Array.isArray(results) ? results.length : typeof results} results for ${entries.length} entries`);
    }
    const first = entries[0].index;
    const last = entries[entries.length - 1];
    let config = this.seen?.config ?? null;
    for (const e of entries) if (e.kind === 'config') config = { membership: e.membership, index: e.index };
    this.seen = { index: last.index, term: last.term, config };
    this.lastApplied = last.index;
    this.raft.tell({ type: 'applied', index: last.index, firstIndex: first, results });
    return undefined;
  }

  /** Where the state is now: from what this actor applied since `point`, else `point` itself. */
  private currentPoint(point: SnapshotPoint): SnapshotPoint {
    const at = this.lastApplied ?? 0;
    const seen = this.seen;
    if (seen !== null && seen.index === at && at > point.index) {
      // Configs applied after the point are ours; if none was, the point's config is still in force.
      const config = seen.config !== null && seen.config.index > point.membershipIndex ? seen.config : { membership: point.membership, index: point.membershipIndex };
      return { index: at as LogIndex, term: seen.term, membership: config.membership, membershipIndex: config.index };
    }
    if (at !== point.index) throw new InvariantViolation(`snapshot point ${point.index} is not the state machine's last applied index ${at}`);
    return point;
  }

  private async createSnapshot(point: SnapshotPoint, maxChunkBytes: number, compressionLevel: number): Promise<unknown> {
    if (typeof this.sm.snapshot !== 'function' || this.storage === null) return replyError(new NotAllowedError('this state machine does not take snapshots'));
    const at = this.currentPoint(point);
    if (at.index < 1) return replyError(new NotAllowedError('nothing is applied yet: there is nothing to snapshot'));
    const started = Date.now();
    const raw = await collect(this.sm.snapshot());
    const rawBytes = raw.reduce((n, c) => n + c.byteLength, 0);
    // The envelope (format byte, gzip) and its crc32: on the process's piscina pool when large.
    const packed = await packSnapshot(this.ctx, raw, compressionLevel);
    const byteLength = packed.bytes.byteLength;
    const checksum = packed.checksum;
    const meta: SnapshotMeta = {
      // Deterministic (the simulator replays it byte for byte) and unique per content: the same id
      // again is the same snapshot, which storage accepts as a no-op.
      id: `${at.term}-${at.index}-${this.raftActorId.replace(/[^A-Za-z0-9_-]/g, '_')}-${checksum.toString(16)}-${byteLength}`,
      lastIncludedIndex: at.index, lastIncludedTerm: at.term, membership: at.membership, membershipIndex: at.membershipIndex,
      byteLength, checksum,
    };
    const parts = rechunk([packed.bytes], maxChunkBytes);
    let offset = 0;
    for (let k = 0; k < parts.length; k++) {
      await this.storage.ask({ type: 'writeSnapshot', meta, offset, data: parts[k], done: k === parts.length - 1 }, Infinity);
      offset += parts[k].byteLength;
    }
    this.ctx.logger.info({ index: meta.lastIncludedIndex, term: meta.lastIncludedTerm, bytes: byteLength, stateBytes: rawBytes, ms: Date.now() - started }, 'snapshot created');
    return meta;
  }

  private async restore(meta: SnapshotMeta, maxChunkBytes: number): Promise<unknown> {
    if (typeof this.sm.restore !== 'function' || this.storage === null) {
      throw new InvariantViolation(`asked to restore snapshot ${meta.id}, but this state machine cannot restore snapshots`);
    }
    const started = Date.now();
    const chunks: Uint8Array[] = [];
    let checksum = 0;
    let byteLength = 0;
    for (;;) {
      let data: Uint8Array;
      try {
        data = await this.storage.ask<Uint8Array>({ type: 'readSnapshot', id: meta.id, offset: byteLength, maxBytes: maxChunkBytes || DEFAULT_CHUNK_BYTES }, Infinity);
      } catch (err) {
        // Replaced by a newer snapshot before we read it (the Raft actor decides whether that is
        // expected): nothing was handed to the state machine, which stays as it was.
        if ((err as { code?: unknown } | null)?.code === 'SnapshotGone') return replyError(err as Error);
        throw err;
      }
      if (data.byteLength === 0) break;
      chunks.push(data);
      checksum = crc32(data, checksum);
      byteLength += data.byteLength;
    }
    if (byteLength !== meta.byteLength || checksum !== meta.checksum) {
      // Storage checked it when it was written: a mismatch now is damage, and the state machine must not take it.
      throw new InvariantViolation(`snapshot ${meta.id} reads back as ${byteLength} bytes, crc32 ${checksum}; its meta says ${meta.byteLength} bytes, crc32 ${meta.checksum}`);
    }
    const { data } = await unpackSnapshot(this.ctx, chunks);
    await this.sm.restore(meta, iterate([data]));
    const now = await this.sm.lastApplied();
    if (now !== meta.lastIncludedIndex) throw new InvariantViolation(`after restoring snapshot ${meta.id} the state machine says lastApplied ${now}, not ${meta.lastIncludedIndex}`);
    this.lastApplied = meta.lastIncludedIndex;
    this.seen = { index: meta.lastIncludedIndex, term: meta.lastIncludedTerm, config: { membership: meta.membership, index: meta.membershipIndex } };
    this.ctx.logger.info({ index: meta.lastIncludedIndex, bytes: byteLength, ms: Date.now() - started }, 'state machine restored from a snapshot');
    return undefined;
  }
}

async function collect(src: Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const v = await src;
  if (v instanceof Uint8Array) return [v];
  const out: Uint8Array[] = [];
  for await (const c of v) {
    if (!(c instanceof Uint8Array)) throw new TypeError('a snapshot stream must yield Uint8Arrays');
    out.push(c);
  }
  return out;
}

/**
 * The same bytes in pieces of at most `max` (at least one piece, empty for an empty snapshot). Each
 * piece is a copy with a buffer of its own: a view into the whole snapshot, sent to storage on
 * another thread, would carry the whole buffer with it, every time (100 MB in 34 pieces copied
 * 3.4 GB: build time grew with the square of the size under worker placement).
 */
function rechunk(chunks: readonly Uint8Array[], max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) {
    for (let at = 0; at < c.byteLength; at += max) {
      const end = Math.min(c.byteLength, at + max);
      out.push(at === 0 && end === c.byteLength && c.byteOffset === 0 && c.buffer.byteLength === c.byteLength ? c : c.slice(at, end));
    }
  }
  return out.length === 0 ? [new Uint8Array(0)] : out;
}

async function* iterate(chunks: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const c of chunks) yield c;
}

/** Module entry for any placement. The state machine is built on the Apply actor's own thread. */
export function createApplyActor(args: ApplyArgs): ApplyActor {
  const spec = args.stateMachine;
  const sm: StateMachine = 'factory' in spec
    ? spec.factory()
    : (require(spec.module) as Record<string, (a: unknown) => StateMachine>)[spec.export](spec.args);
  return new ApplyActor(args.sessions === true ? withSessions(sm) : sm, args.raftActorId, args.storageActorId);
}
export const APPLY_ACTOR_MODULE = __filename;
