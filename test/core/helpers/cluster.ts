/**
 * N cores wired together in-process: the smallest runtime that executes every command. Storage acks
 * at once, messages travel through one FIFO queue, replication streams are stop-and-wait with a
 * heartbeat, and time moves only when the test says so. One leader per term is checked after every
 * step; the test checks what was applied.
 */
import { RaftCore } from '../../../actors/raft/core/core';
import type { Command, Input } from '../../../actors/raft/core/io';
import type { TransferOutcome } from '../../../actors/raft/core/io';
import type {
  AppendEntriesResponse, Entry, HardState, LogIndex, NodeId, RaftRole, Term, TimeoutNowResponse, VoteResponse,
} from '../../../actors/raft/core/types';
import type { RaftConfig } from '../../../actors/raft/core/config';
import { i, n, t, TEST_CONFIG } from './fixtures';
import { SeededRandom } from './random';

/** Most entries one AppendEntries carries here. */
const MAX_BATCH_ENTRIES = 16;
/** Advance the clock in steps of this many ms. */
const TICK_STEP_MS = 5;
/** A delivery loop longer than this is a livelock, not a test. */
const MAX_DELIVERIES = 1_000_000;

interface PeerStream {
  nextIndex: number;
  inflight: boolean;
  sentCommit: number;
}

interface Streams {
  readonly term: Term;
  readonly peers: Map<NodeId, PeerStream>;
  commitIndex: number;
  lastHeartbeatMs: number;
  /** The heartbeat round every request is tagged with (read-index confirmation). */
  round: number;
}

export interface ClusterNode {
  readonly id: NodeId;
  core: RaftCore;
  /** What the state machine was handed, in order. */
  readonly applied: Entry[];
  /** What storage holds durably (survives restart). */
  readonly storage: { hardState: HardState; log: Entry[] };
  streams: Streams | null;
  /** Reads answered by the core, in order: ready at an index, or failed. */
  readonly reads: ({ id: number; readIndex: number } | { id: number; error: Error })[];
  /** Leader transfers settled by the core. */
  readonly transfers: { id: number; outcome: TransferOutcome }[];
}

type Envelope =
  | { readonly kind: 'request'; readonly from: NodeId; readonly to: NodeId; readonly input: Extract<Input, { type: 'vote' | 'appendEntries' | 'timeoutNow' }> }
  | { readonly kind: 'response'; readonly from: NodeId; readonly to: NodeId; readonly reqId: number; readonly resp: AppendEntriesResponse | VoteResponse | TimeoutNowResponse };

interface Outstanding {
  readonly from: NodeId;
  readonly to: NodeId;
  /** For AppendEntries: the term of the stream that sent it (a stale stream's answers are dropped). */
  readonly streamTerm: Term | null;
  /** For AppendEntries: the heartbeat round it carried and when it left (the leader's clock). */
  readonly round?: number;
  readonly sentAtMs?: number;
  /** For votes: the term of the request (so a late pre-vote answer is told from a current one). */
  readonly requestTerm?: Term;
}

export class Cluster {
  readonly nodes = new Map<NodeId, ClusterNode>();
  nowMs = 0;
  /** Every (term -> leader) ever observed: Election Safety, checked after every step. */
  readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly queue: Envelope[] = [];
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly isolated = new Set<NodeId>();
  /** Links cut in both directions (cutLink), as "a-b" with a < b. */
  private readonly cutLinks = new Set<string>();
  private nextReqId = 1;
  private readonly seed: number;

  constructor(ids: readonly number[], seed = 1, readonly config: RaftConfig = TEST_CONFIG) {
    this.seed = seed;
    for (const id of ids) {
      const storage = { hardState: { currentTerm: t(0), votedFor: null }, log: [] as Entry[] };
      const node: ClusterNode = { id: n(id), core: this.newCore(n(id), storage, i(0)), applied: [], storage, streams: null, reads: [], transfers: [] };
      this.nodes.set(n(id), node);
    }
  }

  node(id: number): ClusterNode {
    const node = this.nodes.get(n(id));
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /**
   * Runs an operation on a node's core (e.g. initWithConfig, propose), then executes what it emitted.
   * With `deliver` false the messages stay queued, so several nodes can act "at the same time".
   */
  act<R>(id: number, op: (core: RaftCore) => R, deliver = true): R {
    const node = this.node(id);
    const result = op(node.core);
    this.process(node);
    if (deliver) this.deliverAll();
    return result;
  }

  /** Advances the clock by `ms`, ticking every core and sending heartbeats, delivering as it goes. */
  advance(ms: number): void {
    const end = this.nowMs + ms;
    while (this.nowMs < end) {
      this.nowMs = Math.min(end, this.nowMs + TICK_STEP_MS);
      for (const node of this.nodes.values()) {
        node.core.step({ type: 'tick', nowMs: this.nowMs });
        this.process(node);
        this.heartbeat(node);
      }
      this.deliverAll();
    }
  }

  /** Advances time until `pred` holds; fails after `maxMs`. */
  runUntil(pred: () => boolean, maxMs = 10_000): void {
    const end = this.nowMs + maxMs;
    while (!pred()) {
      if (this.nowMs >= end) throw new Error(`condition not met within ${maxMs}ms`);
      this.advance(TICK_STEP_MS);
    }
  }

  /** Nodes currently in a role (isolated ones included: they may still think they lead). */
  withRole(role: RaftRole): ClusterNode[] {
    return [...this.nodes.values()].filter((x) => x.core.status().role === role);
  }

  isolate(id: number): void {
    this.isolated.add(n(id));
  }

  /** Heals every isolation and every cut link. */
  heal(): void {
    this.isolated.clear();
    this.cutLinks.clear();
  }

  /** Drops every message between `a` and `b`, both ways; each still talks to everyone else (partial connectivity). */
  cutLink(a: number, b: number): void {
    this.cutLinks.add(linkKey(n(a), n(b)));
  }

  healLink(a: number, b: number): void {
    this.cutLinks.delete(linkKey(n(a), n(b)));
  }

  /** Crash and restart from what storage holds: the core is rebuilt from durable state only. */
  restart(id: number): void {
    const node = this.node(id);
    node.streams = null;
    const lastApplied = node.applied.length === 0 ? i(0) : node.applied[node.applied.length - 1]!.index;
    node.core = this.newCore(node.id, node.storage, lastApplied);
  }

  // ---- executing commands ----

  private newCore(id: NodeId, storage: ClusterNode['storage'], lastApplied: LogIndex): RaftCore {
    return new RaftCore({
      id, config: this.config, random: new SeededRandom(this.seed * 1000 + id), nowMs: this.nowMs,
      initial: { hardState: storage.hardState, entries: [...storage.log], lastApplied },
    });
  }

  private process(node: ClusterNode): void {
    for (let cmds = node.core.takeCommands(); cmds.length > 0; cmds = node.core.takeCommands()) {
      for (const cmd of cmds) this.execute(node, cmd);
      this.checkElectionSafety(node);
    }
  }

  private execute(node: ClusterNode, cmd: Command): void {
    const core = node.core;
    switch (cmd.type) {
      case 'saveHardState':
        node.storage.hardState = cmd.hardState;
        core.step({ type: 'hardStatePersisted', seq: cmd.seq });
        break;
      case 'appendLog': {
        if (cmd.truncateFrom !== null) node.storage.log.length = cmd.truncateFrom - 1;
        for (const e of cmd.entries) {
          if (e.index !== node.storage.log.length + 1) throw new Error(`node ${node.id}: storage gap at ${e.index}`);
          node.storage.log.push(e);
        }
        core.step({ type: 'logPersisted', index: cmd.entries[cmd.entries.length - 1]!.index });
        break;
      }
      case 'sendVote':
        this.send({ kind: 'request', from: node.id, to: cmd.to, input: { type: 'vote', reqId: this.track(node.id, cmd.to, null, { requestTerm: cmd.req.term }), req: cmd.req } });
        break;
      case 'sendTimeoutNow':
        this.send({ kind: 'request', from: node.id, to: cmd.to, input: { type: 'timeoutNow', reqId: this.track(node.id, cmd.to, null), req: cmd.req } });
        break;
      case 'heartbeatRound':
        if (node.streams !== null) {
          node.streams.round = cmd.round;
          this.pumpAll(node, true);
        }
        break;
      case 'readsReady':
        for (const id of cmd.ids) node.reads.push({ id, readIndex: cmd.readIndex });
        break;
      case 'readsFailed':
        for (const id of cmd.ids) node.reads.push({ id, error: cmd.error });
        break;
      case 'transferSettled':
        node.transfers.push({ id: cmd.id, outcome: cmd.outcome });
        break;
      case 'reply': {
        const o = this.outstanding.get(cmd.reqId);
        if (o === undefined) throw new Error(`node ${node.id} replied to unknown request ${cmd.reqId}`);
        if (cmd.resp.type === 'installSnapshotResponse') throw new Error('this in-process cluster does not take snapshots');
        this.send({ kind: 'response', from: o.to, to: o.from, reqId: cmd.reqId, resp: cmd.resp });
        break;
      }
      case 'startReplication': {
        const peers = new Map<NodeId, PeerStream>();
        for (const p of cmd.targets) peers.set(p, { nextIndex: cmd.nextIndex, inflight: false, sentCommit: -1 });
        node.streams = { term: cmd.term, peers, commitIndex: cmd.commitIndex, lastHeartbeatMs: this.nowMs, round: cmd.round };
        this.pumpAll(node, true);
        break;
      }
      case 'replicationTargets': {
        const s = node.streams!;
        for (const p of [...s.peers.keys()]) if (!cmd.targets.includes(p)) s.peers.delete(p);
        for (const p of cmd.targets) if (!s.peers.has(p)) s.peers.set(p, { nextIndex: core.status().lastLogIndex + 1, inflight: false, sentCommit: -1 });
        break;
      }
      case 'replicate':
        this.pumpAll(node, false);
        break;
      case 'commit':
        if (node.streams !== null) {
          node.streams.commitIndex = cmd.commitIndex;
          this.pumpAll(node, false);
        }
        break;
      case 'stopReplication':
        node.streams = null;
        break;
      case 'apply':
        node.applied.push(...cmd.entries);
        core.step({ type: 'applied', index: cmd.entries[cmd.entries.length - 1]!.index });
        break;
    }
  }

  private track(from: NodeId, to: NodeId, streamTerm: Term | null, extra: Partial<Outstanding> = {}): number {
    const reqId = this.nextReqId++;
    this.outstanding.set(reqId, { from, to, streamTerm, ...extra });
    return reqId;
  }

  // ---- replication streams (what actors/replication does in production, reduced to stop-and-wait) ----

  private heartbeat(node: ClusterNode): void {
    const s = node.streams;
    if (s === null || this.nowMs - s.lastHeartbeatMs < this.config.heartbeatIntervalMs) return;
    s.lastHeartbeatMs = this.nowMs;
    this.pumpAll(node, true);
  }

  private pumpAll(node: ClusterNode, force: boolean): void {
    for (const peer of node.streams?.peers.keys() ?? []) this.pump(node, peer, force);
  }

  /** Sends the next AppendEntries to `peer` if it is idle and behind (or `force`: a heartbeat, which also retries a lost request). */
  private pump(node: ClusterNode, peer: NodeId, force: boolean): void {
    const s = node.streams!;
    const p = s.peers.get(peer)!;
    const last = node.core.status().lastLogIndex;
    if (!force && (p.inflight || (p.nextIndex > last && p.sentCommit >= s.commitIndex))) return;
    const to = Math.min(last + 1, p.nextIndex + MAX_BATCH_ENTRIES);
    const entries = node.core.entries(i(p.nextIndex), i(to)) ?? node.storage.log.slice(p.nextIndex - 1, to - 1);
    const prevLogIndex = i(p.nextIndex - 1);
    const req = {
      type: 'appendEntries' as const, term: s.term, leaderId: node.id, prevLogIndex, prevLogTerm: node.core.termAt(prevLogIndex)!,
      entries, leaderCommit: i(s.commitIndex),
    };
    p.inflight = true;
    p.sentCommit = s.commitIndex;
    this.send({ kind: 'request', from: node.id, to: peer, input: { type: 'appendEntries', reqId: this.track(node.id, peer, s.term, { round: s.round, sentAtMs: this.nowMs }), req } });
  }

  private onAppendResponse(node: ClusterNode, peer: NodeId, o: Outstanding, resp: AppendEntriesResponse): void {
    const s = node.streams;
    if (s === null || s.term !== o.streamTerm) return;
    const p = s.peers.get(peer);
    if (p === undefined) return;
    p.inflight = false;
    const ack = { round: o.round!, sentAtMs: o.sentAtMs! };
    if (resp.term > s.term) {
      node.core.step({ type: 'higherTerm', term: resp.term });
    } else if (resp.success) {
      p.nextIndex = Math.max(p.nextIndex, resp.matchIndex + 1);
      node.core.step({ type: 'replicated', peer, leaderTerm: s.term, matchIndex: resp.matchIndex, ...ack });
    } else {
      // A refusal in our term still acknowledges our leadership.
      if (resp.term === s.term) node.core.step({ type: 'replicated', peer, leaderTerm: s.term, matchIndex: i(0), ...ack });
      if (resp.conflict !== null) p.nextIndex = Math.max(1, Math.min(p.nextIndex - 1, resp.conflict.index));
    }
    this.process(node);
    if (node.streams === s && s.peers.has(peer)) this.pump(node, peer, false); // the answer may have removed the peer (it committed its own removal)
  }

  // ---- the network ----

  private send(env: Envelope): void {
    if (this.blocked(env)) return;
    this.queue.push(env);
  }

  private blocked(env: Envelope): boolean {
    return this.isolated.has(env.from) || this.isolated.has(env.to) || this.cutLinks.has(linkKey(env.from, env.to));
  }

  deliverAll(): void {
    for (let count = 0; this.queue.length > 0; count++) {
      if (count > MAX_DELIVERIES) throw new Error('message livelock');
      const env = this.queue.shift()!;
      if (this.blocked(env)) continue;
      const target = this.node(env.to);
      if (env.kind === 'request') {
        target.core.step(env.input);
        this.process(target);
        continue;
      }
      const o = this.outstanding.get(env.reqId)!;
      this.outstanding.delete(env.reqId);
      if (env.resp.type === 'voteResponse') {
        target.core.step({ type: 'voteResponse', from: env.from, resp: env.resp, requestTerm: o.requestTerm });
        this.process(target);
      } else if (env.resp.type === 'timeoutNowResponse') {
        if (env.resp.term > target.core.status().currentTerm) {
          target.core.step({ type: 'higherTerm', term: env.resp.term });
          this.process(target);
        }
      } else {
        this.onAppendResponse(target, env.from, o, env.resp);
      }
    }
  }

  private checkElectionSafety(node: ClusterNode): void {
    const st = node.core.status();
    if (st.role !== 'Leader') return;
    const seen = this.leaderOfTerm.get(st.currentTerm);
    if (seen !== undefined && seen !== node.id) throw new Error(`two leaders in term ${st.currentTerm}: ${seen} and ${node.id}`);
    this.leaderOfTerm.set(st.currentTerm, node.id);
  }
}

function linkKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}
