/**
 * A ReplicationStream on a real ActorSystem, in virtual time: a real MemoryStorage actor (the
 * leader's storage), a scripted network actor standing in for the follower, and a recording Raft
 * actor. Nothing runs unless the harness steps it (ManualDispatcher + VirtualClock), so every run
 * is the same and waiting costs no wall time.
 */
import { crc32 } from 'node:zlib';
import { type Actor, type ActorContext, type ActorRef, DeferredReply, replyError } from '../../runtime/actor';
import { VirtualClock } from '../../runtime/clock';
import { ManualDispatcher } from '../../runtime/dispatcher';
import { createLogger } from '../../runtime/logging';
import { ActorSystem } from '../../runtime/system';
import { decodeRequest, encodeEntries, encodeResponse } from '../../actors/raft/codec';
import { buildConfig, type RaftConfig } from '../../actors/raft/core/config';
import type {
  Entry, InstallSnapshotRequest, LogIndex, Membership, NodeId, RaftRequest, RaftResponse, SnapshotMeta, Term,
} from '../../actors/raft/core/types';
import { ReplicationStream, type StreamMsg, type StreamReport } from '../../actors/replication/replication-stream';
import { UnreachableError, type NetworkMsg } from '../../network/network';
import { MemoryStorageActor } from '../../storage/memory-storage';
import type { StorageMsg } from '../../storage/storage';

export const LEADER = 1;
export const FOLLOWER = 2;
export const MEMBERSHIP: Membership = { members: [1, 2, 3] as NodeId[], nonVoters: [], membersAfterConsensus: null };

/** The leader's log in these tests: indexes 1-10 in term 1, 11-40 in term 2, 41 on in term 3. */
export function termOf(index: number): Term {
  return (index === 0 ? 0 : index <= 10 ? 1 : index <= 40 ? 2 : 3) as Term;
}

export function entries(from: number, toInclusive: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= toInclusive; i++) {
    out.push(termOf(i) === 3
      ? { kind: 'blank', index: i as LogIndex, term: termOf(i) }
      : { kind: 'normal', index: i as LogIndex, term: termOf(i), payload: new TextEncoder().encode(`cmd-${i}`) });
  }
  return out;
}

/** Deterministic snapshot bytes. */
export function snapshotBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface Snapshot { readonly meta: SnapshotMeta; readonly data: Uint8Array }

export function makeSnapshot(id: string, lastIncludedIndex: number, byteLength: number, seed: number): Snapshot {
  const data = snapshotBytes(byteLength, seed);
  return {
    data,
    meta: {
      id, lastIncludedIndex: lastIncludedIndex as LogIndex, lastIncludedTerm: termOf(lastIncludedIndex),
      membership: MEMBERSHIP, membershipIndex: 0 as LogIndex, byteLength, checksum: crc32(data) >>> 0,
    },
  };
}

/** What a scripted follower does with one request. */
export type Action =
  /** Answer as a follower whose log matches the leader's would. */
  | { readonly kind: 'reply' }
  /** Answer in a higher term. */
  | { readonly kind: 'higherTerm'; readonly term: number }
  /** The RPC fails (UnreachableError). */
  | { readonly kind: 'error' }
  /** No answer ever (the stream's ask times out). */
  | { readonly kind: 'silence' }
  /** Bytes no codec accepts. */
  | { readonly kind: 'malformed' }
  /** Handle the request now, send its answer `ms` later. */
  | { readonly kind: 'delay'; readonly ms: number };

/** One request the follower got: `seq` is its position among all requests (virtual time often stands still). */
export interface Recorded { readonly seq: number; readonly atMs: number; readonly req: RaftRequest; readonly action: Action['kind'] }

/** The script: an action per request (may be async, e.g. to change storage first). Default: reply. */
export type Script = (req: RaftRequest, harness: StreamHarness) => Action | Promise<Action>;

/**
 * The network actor, standing in for the follower: decodes each request, records it, and answers
 * per the script. Its "follower" holds a log through `last` (matching the leader's) and reassembles
 * snapshot chunks.
 */
export class ScriptedFollower implements Actor<NetworkMsg> {
  readonly sent: Recorded[] = [];
  /** Snapshots the follower received whole, in order. */
  readonly installed: Snapshot[] = [];
  /** Things a correct leader never sends (wrong prevLogTerm, a chunk out of order...). */
  readonly violations: string[] = [];
  private receiving: { id: string; parts: Uint8Array[]; received: number } | null = null;

  constructor(private readonly harness: StreamHarness, public last: number, public script: Script = () => ({ kind: 'reply' })) {}

  async receive(msg: NetworkMsg, ctx: ActorContext): Promise<unknown> {
    const req = decodeRequest(msg.rpc);
    const action = await this.script(req, this.harness);
    this.sent.push({ seq: this.sent.length, atMs: ctx.clock.now(), req, action: action.kind });
    switch (action.kind) {
      case 'reply': return encodeResponse(this.handle(req));
      case 'higherTerm': return encodeResponse(req.type === 'installSnapshot'
        ? { type: 'installSnapshotResponse', term: action.term as Term }
        : { type: 'appendEntriesResponse', term: action.term as Term, success: false, matchIndex: 0 as LogIndex, conflict: null });
      case 'error': return replyError(new UnreachableError(FOLLOWER, 'scripted failure'));
      case 'silence': return new DeferredReply<Uint8Array>();
      case 'malformed': return new Uint8Array([0xee, 1, 2]);
      case 'delay': {
        const reply = new DeferredReply<Uint8Array>();
        const bytes = encodeResponse(this.handle(req));
        ctx.clock.setTimeout(() => reply.resolve(bytes), action.ms);
        return reply;
      }
    }
  }

  private handle(req: RaftRequest): RaftResponse {
    switch (req.type) {
      case 'appendEntries': {
        if (req.prevLogIndex > this.last) {
          return { type: 'appendEntriesResponse', term: req.term, success: false, matchIndex: 0 as LogIndex, conflict: { index: (this.last + 1) as LogIndex, term: 0 as Term } };
        }
        if (req.prevLogTerm !== termOf(req.prevLogIndex)) this.violations.push(`append at ${req.prevLogIndex} with prevLogTerm ${req.prevLogTerm}, the log has ${termOf(req.prevLogIndex)}`);
        for (const e of req.entries) if (e.term !== termOf(e.index)) this.violations.push(`entry ${e.index} of term ${e.term}, the log has ${termOf(e.index)}`);
        const match = req.prevLogIndex + req.entries.length;
        if (req.entries.length > 0) this.last = match;
        return { type: 'appendEntriesResponse', term: req.term, success: true, matchIndex: match as LogIndex, conflict: null };
      }
      case 'installSnapshot': {
        if (req.offset === 0) this.receiving = { id: req.snapshotId, parts: [], received: 0 };
        const r = this.receiving;
        if (r === null || r.id !== req.snapshotId || r.received !== req.offset) {
          this.violations.push(`chunk of ${req.snapshotId} at ${req.offset}, expected ${r ? `${r.id} at ${r.received}` : 'offset 0'}`);
        } else {
          r.parts.push(new Uint8Array(req.data));
          r.received += req.data.byteLength;
          if (req.done) {
            const data = Buffer.concat(r.parts);
            this.installed.push({ meta: snapshotMeta(req), data: new Uint8Array(data) });
            this.last = req.lastIncludedIndex;
            this.receiving = null;
          }
        }
        return { type: 'installSnapshotResponse', term: req.term };
      }
      case 'vote': throw new Error('a replication stream sent a vote request');
      case 'timeoutNow': throw new Error('a replication stream sent TimeoutNow');
    }
  }

  chunks(): (Recorded & { readonly req: InstallSnapshotRequest })[] {
    return this.sent.filter((r): r is Recorded & { req: InstallSnapshotRequest } => r.req.type === 'installSnapshot');
  }
}

function snapshotMeta(req: InstallSnapshotRequest): SnapshotMeta {
  return {
    id: req.snapshotId, lastIncludedIndex: req.lastIncludedIndex, lastIncludedTerm: req.lastIncludedTerm,
    membership: req.membership, membershipIndex: req.membershipIndex, byteLength: req.byteLength, checksum: req.checksum,
  };
}

/**
 * The Raft actor's side: answers streamStart with null (the test sends `lead`), records reports.
 * `reports` holds higherTerm and the `replicated` reports that move the match; `acks` holds every
 * `replicated` report, including those that only acknowledge (a round, a fresh send time).
 */
export class RecordingRaft implements Actor<StreamReport> {
  readonly reports: (StreamReport & { readonly atMs: number })[] = [];
  readonly acks: (Extract<StreamReport, { type: 'replicated' }> & { readonly atMs: number })[] = [];
  private readonly matchByTerm = new Map<number, number>();
  constructor(private readonly clock: VirtualClock) {}
  receive(msg: StreamReport): unknown {
    if (msg.type === 'streamStart') return null;
    const atMs = this.clock.now();
    if (msg.type === 'replicated') {
      this.acks.push({ ...msg, atMs });
      if (msg.matchIndex <= (this.matchByTerm.get(msg.leaderTerm) ?? 0)) return undefined;
      this.matchByTerm.set(msg.leaderTerm, msg.matchIndex);
    }
    this.reports.push({ ...msg, atMs });
    return undefined;
  }
  replicated(): number[] { return this.reports.flatMap((r) => (r.type === 'replicated' ? [r.matchIndex] : [])); }
}

const hop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface HarnessOptions {
  readonly config?: Partial<RaftConfig>;
  /** The follower's last index (its log matches the leader's through it). */
  readonly followerLast: number;
  readonly script?: Script;
}

export class StreamHarness {
  readonly clock = new VirtualClock();
  readonly dispatcher = new ManualDispatcher();
  readonly system = ActorSystem.create({ clock: this.clock, dispatcher: this.dispatcher, seed: 7, logger: createLogger({ level: process.env.RAFT_LOG_LEVEL ? undefined : 'silent' }) });
  readonly config: RaftConfig;
  readonly raft = new RecordingRaft(this.clock);
  readonly follower: ScriptedFollower;
  readonly storageActor = new MemoryStorageActor();
  storage!: ActorRef<StorageMsg>;
  stream!: ActorRef<StreamMsg>;
  private steps = 0;

  constructor(opts: HarnessOptions) {
    this.config = buildConfig({
      heartbeatIntervalMs: 50, electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300,
      maxPayloadEntries: 4, maxInflightAppends: 2, snapshotMaxChunkBytes: 1000, ...opts.config,
    });
    this.follower = new ScriptedFollower(this, opts.followerLast, opts.script);
  }

  async start(): Promise<void> {
    this.storage = await this.settle(this.system.spawn<StorageMsg>('n1/storage', { factory: () => this.storageActor }));
    await this.settle(this.system.spawn('n1/raft', { factory: () => this.raft }));
    await this.settle(this.system.spawn('n1/network', { factory: () => this.follower }));
    this.stream = await this.settle(this.system.spawn<StreamMsg>('n1/stream/2', {
      factory: () => new ReplicationStream({
        self: LEADER, target: FOLLOWER, config: this.config,
        raftActorId: 'n1/raft', networkActorId: 'n1/network', storageActorId: 'n1/storage',
      }),
    }));
  }

  // ---- the leader's storage, through its messages ----

  async append(from: number, toInclusive: number): Promise<void> {
    await this.settle(this.storage.ask({ type: 'appendEntries', entries: encodeEntries(entries(from, toInclusive)) }));
  }

  /** Writes a snapshot as the Raft actor would, in chunks of `chunk` bytes. */
  async writeSnapshot(s: Snapshot, chunk = 1024): Promise<void> {
    await this.settle(this.writeSnapshotNow(s, chunk));
  }

  /** The same, for use inside an actor (a script), where the harness is already stepping. */
  async writeSnapshotNow(s: Snapshot, chunk = 1024): Promise<void> {
    let offset = 0;
    do {
      const data = s.data.subarray(offset, Math.min(s.data.byteLength, offset + chunk));
      const done = offset + data.byteLength === s.data.byteLength;
      await this.storage.ask({ type: 'writeSnapshot', meta: s.meta, offset, data, done });
      offset += data.byteLength;
    } while (offset < s.data.byteLength);
  }

  async purge(throughIndex: number): Promise<void> {
    await this.settle(this.storage.ask({ type: 'purgeLog', throughIndex: throughIndex as LogIndex }));
  }

  // ---- stepping (virtual time) ----

  /** One actor message, or the clock jumping to the next timer (not past `until`). False when idle until then. */
  async step(until: number): Promise<boolean> {
    if (!this.dispatcher.runOne()) {
      const next = this.clock.nextTimerAt();
      if (next === undefined || next > until) return false;
      this.clock.advanceTo(next);
    }
    if (++this.steps > 1_000_000) throw new Error('more than 1,000,000 steps: livelock?');
    await hop();
    return true;
  }

  /** Runs until `pred()` holds; throws after `timeoutMs` of virtual time. */
  async runUntil(pred: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const until = this.clock.now() + timeoutMs;
    while (!pred()) {
      if (!(await this.step(until))) {
        if (pred()) return;
        throw new Error(`${what} not reached within ${timeoutMs} virtual ms (now ${this.clock.now()})`);
      }
    }
  }

  /** Runs `ms` of virtual time. */
  async runFor(ms: number): Promise<void> {
    const until = this.clock.now() + ms;
    while (await this.step(until)) { /* step */ }
    if (this.clock.now() < until) this.clock.advanceTo(until);
  }

  async settle<T>(p: Promise<T>, timeoutMs = 60_000): Promise<T> {
    let done = false;
    p.then(() => { done = true; }, () => { done = true; });
    await hop();
    await this.runUntil(() => done, timeoutMs, 'operation');
    return p;
  }

  async shutdown(): Promise<void> {
    const p = this.system.shutdown();
    // Stopping actors goes through their mailboxes: keep stepping until it is done.
    let done = false;
    p.then(() => { done = true; }, () => { done = true; });
    for (let i = 0; i < 100_000 && !done; i++) {
      if (!this.dispatcher.runOne()) await hop();
    }
    await p;
  }
}

/**
 * The usual start: the leader's log 1..40 in storage, snapshot `snap` written, the log purged
 * through `purgeThrough`; the stream leads in term 3 and gets the new leader's blank entry 41.
 */
export async function leaderWithPurgedLog(h: StreamHarness, snap: Snapshot, purgeThrough: number): Promise<void> {
  await h.start();
  await h.append(1, 40);
  await h.writeSnapshot(snap);
  await h.purge(purgeThrough);
  h.stream.tell({ type: 'lead', params: { term: 3 as Term, nextIndex: 41 as LogIndex, commitIndex: 40 as LogIndex, lastLogIndex: 40 as LogIndex } });
  await h.append(41, 41);
  h.stream.tell({ type: 'entries', entries: entries(41, 41) });
}
