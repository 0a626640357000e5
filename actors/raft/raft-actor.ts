/**
 * The Raft actor: wraps the pure core (./core) and executes its commands against storage, network,
 * replication streams, the Apply actor and Metrics. All protocol decisions are the core's; this file
 * is plumbing, and keeps the write path pipelined (DESIGN.md section 3): a batch of client writes
 * is handed to storage and to every stream in the same turn, and the actor takes the next batch
 * at once; commit, apply and the client's answer happen off that path.
 */
import { deserialize, serialize } from 'node:v8';
import type { Logger } from 'pino';
import type { Actor, ActorContext, ActorRef, TimerId } from '../../runtime/actor';
import { DeferredReply, replyError } from '../../runtime/actor';
import {
  decodeClientRequest, decodeEntries, decodeRequest, decodeResponse, encodeClientResponse,
  encodeEntries, encodeRequest, encodeResponse, isClientRequest, MAX_PAYLOAD_BYTES, type ClientRequest, type ClientResponse,
} from './codec';
import { RaftCore } from './core/core';
import type { RaftConfig } from './core/config';
import {
  ForwardToLeaderError, LeaderTransferInProgressError, MalformedMessageError, NodeRemovedError, NodeStoppedError, NotAllowedError,
  ProposalDroppedError, ProposalOutcomeUnknownError,
} from './core/errors';
import '../errors-registry';
import type { Command, CoreStatus } from './core/io';
import { stampLogTime } from '../apply/sessions';
import { clientError, Forwarder } from './forwarder';
import { validateConfigChangeRequest, type ConfigChangeRequest } from './core/config-change';
import { snapshotMetaOf, type InstallSnapshotRequest, type LogIndex, type Membership, type NodeId, type SnapshotMeta, type Term } from './core/types';
import type { AppliedMsg, ApplyMsg } from '../apply/apply-actor';
import { isSignificantChange, type MetricsMsg, type RaftMetrics } from '../metrics/metrics';
import type { LeadParams, StreamMsg, StreamReport } from '../replication/replication-stream';
import type { InboundRpc, NetworkMsg } from '../../network/network';
import type { StorageMsg, StoredState } from '../../storage/storage';

export type ResponseMode = 'committed' | 'applied';

/** What a client write resolves to. */
export interface ClientWriteResponse {
  /** The log index the write was committed at. */
  readonly index: LogIndex;
  readonly term: Term;
  /** The state machine's result (responseMode 'applied' only). */
  readonly result?: unknown;
}

/** What a config change resolves to: the index and content of the final, committed config. */
export interface ConfigChangeResult {
  readonly index: LogIndex;
  readonly membership: Membership;
}

/**
 * How a read is made linearizable: 'index' (read-index: a quorum round, no log write), 'lease' (the
 * leader's lease when valid, else as 'index'; clock-dependent), 'log' (a blank entry through the
 * log, then the read: slowest, always correct).
 */
export type ReadConsistency = 'index' | 'lease' | 'log';

/** What a confirmed read resolves to: the state machine here has applied through `readIndex`. */
export interface ReadIndexResponse {
  readonly readIndex: LogIndex;
  /** The term of the leader that confirmed it. */
  readonly term: Term;
}

/** A leader transfer that worked: `leader` now leads. */
export interface TransferResult { readonly leader: NodeId }

export type RaftMsg =
  | InboundRpc
  /** `timeoutMs`: how long the client waits; a forwarded write waits for a leader at most that long. */
  | { readonly type: 'clientWrite'; readonly payload: Uint8Array; readonly responseMode: ResponseMode; readonly timeoutMs?: number }
  /** Answer: ReadIndexResponse once this node's state machine has applied through the read index. */
  | { readonly type: 'clientRead'; readonly consistency: ReadConsistency; readonly timeoutMs?: number }
  /** Answer: TransferResult, or LeaderTransferError / NodeNotLeaderError. */
  | { readonly type: 'transferLeadership'; readonly to: number; readonly timeoutMs: number }
  /** Answer: undefined once the election (or pre-vote round) started. */
  | { readonly type: 'electNow' }
  /** Answer: the term, once a quorum answered a heartbeat sent now. */
  | { readonly type: 'heartbeatNow' }
  | { readonly type: 'initWithConfig'; readonly members: readonly number[] }
  /** Answer: ConfigChangeResult once the final config commits, or a typed error (see RaftNode.proposeConfigChange). */
  | { readonly type: 'proposeConfigChange'; readonly change: ConfigChangeRequest }
  | { readonly type: 'getMetrics' }
  | { readonly type: 'tick' }
  | { readonly type: 'flushWrites' }
  | { readonly type: 'publishMetrics' }
  | { readonly type: 'logPersisted'; readonly index: LogIndex }
  | { readonly type: 'hardStatePersisted'; readonly seq: number }
  | { readonly type: 'voteResponse'; readonly from: NodeId; readonly bytes: Uint8Array; readonly requestTerm?: Term }
  /** Take a snapshot now (RaftNode.snapshotNow). Answer: its SnapshotMeta, once durable. */
  | { readonly type: 'snapshotNow' }
  /** Internal: storage holds an InstallSnapshot chunk, or refused it. */
  | { readonly type: 'snapshotChunkStored'; readonly reqId: number; readonly req: InstallSnapshotRequest }
  | { readonly type: 'snapshotChunkRefused'; readonly reqId: number; readonly error: Error }
  /** Internal: our snapshot is durable (meta), or its creation failed (error). */
  | { readonly type: 'snapshotDone'; readonly meta: SnapshotMeta | null; readonly error: Error | null }
  /** Internal: the leader answered a client request we forwarded (bytes), or could not be asked (error). */
  | { readonly type: 'forwarded'; readonly id: number; readonly bytes: Uint8Array | null; readonly error: Error | null }
  /** Internal: forwarded requests still waiting for a leader may have passed their client's deadline. */
  | { readonly type: 'forwardDeadline' }
  | StreamReport
  | AppliedMsg;

/** Messages the Raft actor sends to its node's controller (which owns the supervisor). */
export type ControllerMsg = { readonly type: 'ensureStreams'; readonly targets: readonly number[] };

export interface RaftActorIds {
  readonly storage: string;
  readonly network: string;
  readonly apply: string;
  readonly metrics: string;
  readonly controller: string;
  /** The id of the stream to `target`. */
  readonly streamPrefix: string;
}

export interface RaftActorArgs {
  readonly id: number;
  readonly config: RaftConfig;
  readonly ids: RaftActorIds;
  /**
   * Forward client writes and reads that reach a non-leader to the leader through the network
   * actor (RaftNodeOptions.forwardToLeader) instead of answering ForwardToLeaderError.
   */
  readonly forwardToLeader?: boolean;
  /** Payloads are session envelopes (RaftNodeOptions.sessions): the leader stamps its clock into each before proposing. */
  readonly sessions?: boolean;
}

/** What a pending write answers: a client here, or a node that forwarded the write (bytes of a ClientResponse). */
type WriteReply = Pick<DeferredReply<ClientWriteResponse>, 'resolve' | 'reject'>;

/** A client write waiting for the flush that proposes its batch. */
interface QueuedWrite {
  readonly payload: Uint8Array;
  readonly mode: ResponseMode;
  readonly reply: WriteReply;
  /**
   * Where it came from: a client of this node (which may forward it to the leader until
   * `deadlineMs`), or another node that forwarded it here (never forwarded again: a node that is
   * not the leader answers with the leader it knows).
   */
  readonly from: { readonly kind: 'client'; readonly deadlineMs: number } | { readonly kind: 'forwarded' };
}

interface PendingWrite {
  readonly index: LogIndex;
  readonly term: Term;
  readonly mode: ResponseMode;
  readonly reply: WriteReply;
}

/** What `RaftActor.inspect` shows: the core's status and the term of any index in its log. */
export interface RaftInspection {
  readonly status: CoreStatus;
  termAt(index: LogIndex): Term | null;
}

export class RaftActor implements Actor<RaftMsg> {
  private core!: RaftCore;
  private ctx!: ActorContext;
  private storage!: ActorRef<StorageMsg>;
  private network!: ActorRef<NetworkMsg>;
  private apply!: ActorRef<ApplyMsg>;
  private metricsRef!: ActorRef<MetricsMsg>;
  private controller!: ActorRef<ControllerMsg>;
  private readonly streams = new Map<number, ActorRef<StreamMsg>>();
  /** Streams that have announced themselves (asked streamStart) and so can be told things. */
  private readonly readyStreams = new Set<number>();
  /** The peers the core wants replicated to (while leading). */
  private targets = new Set<number>();
  private leadParams: LeadParams | null = null;
  private readonly pendingRpcs = new Map<number, DeferredReply<Uint8Array>>();
  /** Config changes in progress, by the core's change id. */
  private readonly pendingChanges = new Map<number, DeferredReply<ConfigChangeResult>>();
  private nextReqId = 1;
  /** Client writes waiting for their batch to be proposed. */
  private queuedWrites: QueuedWrite[] = [];
  /** Reads (and heartbeatNow) by the core's read id, answered with the read index once confirmed and applied here. */
  private readonly pendingReads = new Map<number, (ready: { readIndex: LogIndex; error: Error | null }) => void>();
  private nextReadId = 1;
  /** Confirmed reads (forwarded, or through the log) waiting for our state machine to reach their index. */
  private awaitingApply: { index: LogIndex; resolve: () => void }[] = [];
  private readonly pendingTransfers = new Map<number, DeferredReply<TransferResult>>();
  private nextTransferId = 1;
  /** Client requests forwarded to the leader (forwardToLeader). */
  private forwarder!: Forwarder;
  /** Reads through the log waiting for the flush that appends their shared blank entry. */
  private queuedLogReads: DeferredReply<ReadIndexResponse>[] = [];
  private flushScheduled = false;
  /** Proposed writes awaiting commit or apply, in index order. */
  private pending: PendingWrite[] = [];
  private tickTimer: TimerId | null = null;
  private tickAtMs: number | null = null;
  private metricsTimer: TimerId | null = null;
  private lastMetrics: RaftMetrics | null = null;
  /** Carries node id and current term on every line; rebuilt when the term changes. */
  private log!: Logger;
  /** Whether the state machine can take snapshots (asked once at start). */
  private canSnapshot = false;
  /** A snapshot of ours being made, and who waits for it (snapshotNow). */
  private snapshotting: { waiters: DeferredReply<SnapshotMeta>[] } | null = null;
  /** When the last InstallSnapshot chunk arrived, and how many are being stored: our own snapshots wait while a transfer runs. */
  private installingAtMs: number | null = null;
  private chunkStores = 0;
  /** After a failed snapshot, the applied index at which the policy tries again. */
  private snapshotRetryAt = 0;

  constructor(private readonly args: RaftActorArgs) {}

  async started(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    const { ids } = this.args;
    this.storage = ctx.ref(ids.storage);
    this.network = ctx.ref(ids.network);
    this.apply = ctx.ref(ids.apply);
    this.metricsRef = ctx.ref(ids.metrics);
    this.controller = ctx.ref(ids.controller);
    const self = ctx.self as ActorRef<RaftMsg>;
    this.forwarder = new Forwarder({
      self: this.args.id as NodeId,
      clock: ctx.clock,
      status: () => { const s = this.core.status(); return { ...s, outOfCluster: this.outOfCluster(s) }; },
      send: (to, rpc, timeoutMs) => this.network.ask<Uint8Array>({ type: 'send', target: to, rpc, timeoutMs }, timeoutMs + 100),
      handleAsLeader: (req, settle) => this.handleClientRequest(req, settle),
      answered: (id, bytes, error) => self.tell({ type: 'forwarded', id, bytes, error }),
      deadlineDue: () => self.tell({ type: 'forwardDeadline' }),
    });
    const [stored, lastApplied, canSnapshot] = await Promise.all([
      this.storage.ask<StoredState>({ type: 'getInitialState' }),
      this.apply.ask<LogIndex | null>({ type: 'lastApplied' }),
      this.apply.ask<boolean>({ type: 'canSnapshot' }),
    ]);
    this.canSnapshot = canSnapshot === true;
    this.core = new RaftCore({
      id: this.args.id as NodeId,
      config: this.args.config,
      random: ctx.random,
      initial: {
        hardState: stored.hardState, entries: decodeEntries(stored.entries), lastApplied: (lastApplied ?? 0) as LogIndex,
        snapshot: stored.snapshot ?? null, firstIndex: stored.firstIndex,
      },
      nowMs: ctx.clock.now(),
    });
    const s = this.core.status();
    this.log = ctx.logger.child({ node: this.args.id, term: s.currentTerm });
    this.log.info({ role: s.role, lastLogIndex: s.lastLogIndex, lastApplied: s.lastApplied }, 'raft node started');
    this.afterStep();
    const publish = () => { this.metricsTimer = ctx.clock.setTimeout(publish, this.args.config.metricsIntervalMs); (ctx.self as ActorRef<RaftMsg>).tell({ type: 'publishMetrics' }); };
    this.metricsTimer = ctx.clock.setTimeout(publish, this.args.config.metricsIntervalMs);
  }

  /**
   * A synchronous look at the protocol state, for a simulator on the same thread (see
   * ActorSystem.localActor). Null until `started` has loaded the node's state. Read-only.
   */
  inspect(): RaftInspection | null {
    if (this.core === undefined) return null;
    const core = this.core;
    return { status: core.status(), termAt: (index: LogIndex) => core.termAt(index) };
  }

  stopped(): void {
    if (this.tickTimer !== null) this.ctx.clock.clearTimeout(this.tickTimer);
    if (this.metricsTimer !== null) this.ctx.clock.clearTimeout(this.metricsTimer);
    const gone = new NodeStoppedError(this.args.id);
    for (const p of this.pending) p.reply.reject(gone);
    for (const w of this.queuedWrites) w.reply.reject(gone);
    for (const r of this.queuedLogReads) r.reject(gone);
    this.queuedLogReads = [];
    for (const r of this.pendingRpcs.values()) r.reject(gone);
    for (const r of this.pendingChanges.values()) r.reject(gone);
    for (const r of this.snapshotting?.waiters ?? []) r.reject(gone);
    for (const r of this.pendingReads.values()) r({ readIndex: 0 as LogIndex, error: gone });
    for (const r of this.pendingTransfers.values()) r.reject(gone);
    this.forwarder?.rejectAll(gone);
    this.pendingReads.clear();
    this.pendingTransfers.clear();
    this.awaitingApply = [];
    this.snapshotting = null;
    this.pending = [];
    this.queuedWrites = [];
    this.pendingRpcs.clear();
    this.pendingChanges.clear();
  }

  receive(msg: RaftMsg): unknown {
    if (msg === null || typeof msg !== 'object') return replyError(new MalformedMessageError(`expected a message object, got ${String(msg)}`));
    if (msg.type === 'getMetrics') return this.metricsNow();
    // A write only joins the queue; the flushWrites message behind it steps the core once for the
    // whole batch, so there is no per-write tick or command drain on the hot path.
    if (msg.type === 'clientWrite') return this.onClientWrite(msg.payload, msg.responseMode, msg.timeoutMs);
    // The core learns the time only from ticks: bring it up to date before every input, or a
    // deadline it sets now (a vote granted, a heartbeat heard) would count from a stale clock.
    if (msg.type === 'tick') { this.tickTimer = null; this.tickAtMs = null; }
    this.core.step({ type: 'tick', nowMs: this.ctx.clock.now() });
    const answer = this.handle(msg);
    // Every path may have stepped the core (the tick above can start an election): run its commands now.
    this.afterStep();
    return answer;
  }

  private handle(msg: RaftMsg): unknown {
    switch (msg.type) {
      case 'rpc': return this.onRpc(msg.bytes);
      case 'clientWrite': case 'getMetrics': case 'tick': return undefined; // handled in receive
      case 'flushWrites': return this.flushWrites();
      case 'initWithConfig': return this.onInit(msg.members);
      case 'proposeConfigChange': return this.onProposeConfigChange(msg.change);
      case 'publishMetrics': return this.publishMetrics(true);
      case 'logPersisted': return this.core.step({ type: 'logPersisted', index: msg.index });
      case 'hardStatePersisted': return this.core.step({ type: 'hardStatePersisted', seq: msg.seq });
      case 'voteResponse': return this.onVoteResponse(msg.from, msg.bytes, msg.requestTerm);
      case 'replicated': return this.core.step({ type: 'replicated', peer: msg.peer, leaderTerm: msg.leaderTerm, matchIndex: msg.matchIndex, round: msg.round, sentAtMs: msg.sentAtMs });
      case 'higherTerm': return this.core.step({ type: 'higherTerm', term: msg.term });
      case 'streamStart':
        // A stream of a peer that is no longer a target stays idle until the controller stops it.
        if (this.leadParams === null || !this.targets.has(msg.peer)) return null;
        this.readyStreams.add(msg.peer);
        // A stream that starts late missed earlier pushes: it learns the last index and reads the gap from storage.
        return { ...this.leadParams, lastLogIndex: this.core.status().lastLogIndex, commitIndex: this.core.status().commitIndex };
      case 'applied':
        this.core.step({ type: 'applied', index: msg.index });
        this.settleApplied(msg);
        this.settleAwaitingApply();
        return this.maybeSnapshot();
      case 'snapshotNow': return this.onSnapshotNow();
      case 'snapshotChunkStored':
        if (msg.req.done) this.installingAtMs = null;
        return this.core.step({ type: 'snapshotChunkStored', reqId: msg.reqId, req: msg.req });
      case 'snapshotChunkRefused': {
        this.installingAtMs = null;
        const r = this.pendingRpcs.get(msg.reqId);
        if (r) { this.pendingRpcs.delete(msg.reqId); r.reject(msg.error); }
        return undefined;
      }
      case 'snapshotDone': return this.onSnapshotDone(msg.meta, msg.error);
      case 'clientRead': return this.onClientRead(msg.consistency, msg.timeoutMs);
      case 'forwardDeadline': return this.forwarder.expire();
      case 'transferLeadership': return this.onTransferLeadership(msg.to, msg.timeoutMs);
      case 'electNow':
        try { this.core.electNow(); } catch (err) { return replyError(err as Error); }
        return undefined;
      case 'heartbeatNow': return this.onHeartbeatNow();
      case 'forwarded': return this.forwarder.onAnswer(msg.id, msg.bytes, msg.error);
      default: {
        const never: never = msg;
        return replyError(new MalformedMessageError(`unknown message type ${JSON.stringify((never as { type?: unknown }).type)}`));
      }
    }
  }

  /** A vote answer that does not decode is dropped like a lost one: bad bytes must not take the node down. */
  private onVoteResponse(from: NodeId, bytes: Uint8Array, requestTerm: Term | undefined): void {
    let resp;
    try {
      resp = decodeResponse(bytes);
      if (resp.type !== 'voteResponse') throw new MalformedMessageError(`expected a vote response, got ${resp.type}`);
    } catch (err) {
      this.log.warn({ from, err: (err as Error).message }, 'dropped a malformed vote response');
      return;
    }
    this.core.step({ type: 'voteResponse', from, resp, requestTerm });
  }

  // ---- inputs ----

  private onRpc(bytes: Uint8Array): unknown {
    if (isClientRequest(bytes)) return this.onForwardedRequest(bytes);
    let req;
    try { req = decodeRequest(bytes); } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'refused a malformed RPC');
      return replyError(err as Error);
    }
    const reqId = this.nextReqId++;
    const reply = new DeferredReply<Uint8Array>();
    this.pendingRpcs.set(reqId, reply);
    if (req.type === 'appendEntries') this.core.step({ type: 'appendEntries', reqId, req });
    else if (req.type === 'installSnapshot') this.core.step({ type: 'installSnapshot', reqId, req });
    else if (req.type === 'timeoutNow') this.core.step({ type: 'timeoutNow', reqId, req });
    else this.core.step({ type: 'vote', reqId, req });
    return reply;
  }

  private onClientWrite(payload: Uint8Array, mode: ResponseMode, timeoutMs?: number): unknown {
    if (!(payload instanceof Uint8Array)) return replyError(new MalformedMessageError('clientWrite payload must be a Uint8Array'));
    // Refused here, not by a storage or follower decoder later (which would stop the node, or every node in turn).
    if (payload.byteLength > MAX_PAYLOAD_BYTES) return replyError(new MalformedMessageError(`clientWrite payload of ${payload.byteLength} bytes exceeds ${MAX_PAYLOAD_BYTES}`));
    if (mode !== 'committed' && mode !== 'applied') return replyError(new MalformedMessageError(`responseMode must be 'committed' or 'applied', got ${String(mode)}`));
    const reply = new DeferredReply<ClientWriteResponse>();
    this.queuedWrites.push({ payload, mode, reply, from: { kind: 'client', deadlineMs: this.forwarder.deadline(timeoutMs) } });
    this.scheduleFlush();
    return reply;
  }

  /**
   * Writes (and reads through the log) that arrive together, one cross-thread batch, are proposed
   * together by the flushWrites message behind them: one append, one push per stream.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    (this.ctx.self as ActorRef<RaftMsg>).tell({ type: 'flushWrites' });
  }

  private flushWrites(): void {
    this.flushScheduled = false;
    this.flushLogReads();
    const batch = this.queuedWrites;
    this.queuedWrites = [];
    if (batch.length === 0) return;
    let res;
    try {
      if (this.args.sessions === true && this.core.status().role === 'Leader') {
        // Log time for session expiry (sessions.ts): the leader's clock, written into the entry.
        const now = Math.floor(this.ctx.clock.now());
        for (const w of batch) stampLogTime(w.payload, now);
      }
      res = this.core.propose(batch.map((w) => w.payload));
    } catch (err) {
      if (err instanceof ForwardToLeaderError && this.args.forwardToLeader === true) {
        for (const w of batch) {
          if (w.from.kind === 'client') this.forwardWrite(w.payload, w.mode, w.reply, w.from.deadlineMs);
          else w.reply.reject(err);
        }
        return;
      }
      if (!(err instanceof ForwardToLeaderError) && !(err instanceof LeaderTransferInProgressError)) throw err;
      for (const w of batch) w.reply.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      this.insertPending({ index: (res.firstIndex + i) as LogIndex, term: res.term, mode: batch[i].mode, reply: batch[i].reply });
    }
  }

  /**
   * Keeps `pending` ordered by index. A re-elected leader may reuse the index of an earlier proposal
   * of its own whose entry was cut from its log; both wait side by side. The earlier one is not
   * failed here: its entry may still live on another node that wins a later election and commits
   * it. Only a commit at that index decides (settleCommitted), so ProposalDroppedError is final.
   */
  private insertPending(p: PendingWrite): void {
    const last = this.pending[this.pending.length - 1];
    if (!last || last.index <= p.index) { this.pending.push(p); return; }
    let at = this.pending.length;
    while (at > 0 && this.pending[at - 1].index > p.index) at--;
    this.pending.splice(at, 0, p);
  }

  private onInit(members: readonly number[]): unknown {
    if (!Array.isArray(members)) return replyError(new MalformedMessageError('members must be an array of node ids'));
    for (const m of members) if (!Number.isSafeInteger(m) || m < 1) return replyError(new MalformedMessageError(`bad node id ${String(m)}`));
    try {
      this.core.initWithConfig(members as NodeId[]);
    } catch (err) {
      return replyError(err as Error);
    }
    return undefined;
  }

  private onProposeConfigChange(change: unknown): unknown {
    let id: number;
    try {
      id = this.core.proposeConfigChange(validateConfigChangeRequest(change));
    } catch (err) {
      return replyError(err as Error);
    }
    this.log.info({ change, id }, 'config change proposed');
    const reply = new DeferredReply<ConfigChangeResult>();
    this.pendingChanges.set(id, reply);
    return reply;
  }

  // ---- commands ----

  private afterStep(): void {
    for (const cmd of this.core.takeCommands()) this.execute(cmd);
    if (this.forwarder.hasWaiting) this.forwarder.dispatch();
    this.scheduleTick();
    this.publishMetrics(false);
  }

  private execute(cmd: Command): void {
    const self = this.ctx.self as ActorRef<RaftMsg>;
    const crash = (err: Error) => this.ctx.crash(err);
    switch (cmd.type) {
      case 'saveHardState':
        // No ask timeout on storage writes: a slow disk is not a failed one (a failure comes back as an error).
        this.storage.ask({ type: 'saveHardState', hardState: cmd.hardState }, Infinity)
          .then(() => self.tell({ type: 'hardStatePersisted', seq: cmd.seq }), crash);
        return;
      case 'appendLog': {
        const bytes = encodeEntries(cmd.entries);
        const last = (cmd.entries.length > 0 ? cmd.entries[cmd.entries.length - 1].index : (cmd.truncateFrom ?? 1) - 1) as LogIndex;
        // A truncation does not fail our pending writes: see insertPending.
        const msg: StorageMsg = this.core.status().role === 'Leader' && cmd.truncateFrom === null
          ? { type: 'appendEntries', entries: bytes }
          : { type: 'replicateEntries', truncateFrom: cmd.truncateFrom, entries: bytes };
        this.storage.ask(msg, Infinity).then(() => self.tell({ type: 'logPersisted', index: last }), crash);
        return;
      }
      case 'sendVote': {
        const timeoutMs = this.args.config.electionTimeoutMinMs;
        this.network.ask<Uint8Array>({ type: 'send', target: cmd.to, rpc: encodeRequest(cmd.req), timeoutMs }, timeoutMs + 50).then(
          (bytes) => self.tell({ type: 'voteResponse', from: cmd.to, bytes, requestTerm: cmd.req.term }),
          (err: Error) => this.log.debug({ to: cmd.to, err: err.message }, 'vote request not answered'),
        );
        return;
      }
      case 'reply': {
        const r = this.pendingRpcs.get(cmd.reqId);
        if (r) { this.pendingRpcs.delete(cmd.reqId); r.resolve(encodeResponse(cmd.resp)); }
        return;
      }
      case 'startReplication':
        this.leadParams = { term: cmd.term, nextIndex: cmd.nextIndex, commitIndex: cmd.commitIndex, lastLogIndex: (cmd.nextIndex - 1) as LogIndex, round: cmd.round };
        this.setTargets(cmd.targets);
        for (const t of this.readyStreams) this.streamRef(t).tell({ type: 'lead', params: this.leadParams });
        return;
      case 'replicationTargets':
        this.setTargets(cmd.targets);
        return;
      case 'replicate':
        for (const t of this.readyStreams) this.streamRef(t).tell({ type: 'entries', entries: cmd.entries });
        return;
      case 'commit':
        for (const t of this.readyStreams) this.streamRef(t).tell({ type: 'commit', commitIndex: cmd.commitIndex });
        this.settleCommitted(cmd.commitIndex);
        return;
      case 'stopReplication':
        this.leadParams = null;
        for (const t of this.readyStreams) this.streamRef(t).tell({ type: 'idle' });
        return;
      case 'apply':
        this.apply.tell({ type: 'apply', entries: encodeEntries(cmd.entries) });
        return;
      case 'leftCluster': {
        // Writes above the commit index we know will never be settled here: their outcome is unknown.
        // Committed ones (waiting to be applied, responseMode 'applied') still settle through apply.
        const commitIndex = this.core.status().commitIndex;
        const unknown = this.pending.filter((p) => p.index > commitIndex);
        if (unknown.length === 0) return;
        this.log.info({ pending: unknown.length, commitIndex }, 'left the cluster; writes above the commit index answered NodeRemovedError (outcome unknown)');
        const removed = new NodeRemovedError(this.args.id);
        for (const p of unknown) p.reply.reject(removed);
        this.pending = this.pending.filter((p) => p.index <= commitIndex);
        return;
      }
      case 'storeSnapshotChunk': {
        const { reqId, req } = cmd;
        if (this.snapshotting !== null) {
          // Storage holds one unfinished snapshot at a time, and ours is being written (the term
          // rules already ran in the core: a deposed leader learned our term). The leader retries.
          const r = this.pendingRpcs.get(reqId);
          if (r) { this.pendingRpcs.delete(reqId); r.reject(new NotAllowedError('a snapshot of this node is being written; retry the transfer shortly')); }
          return;
        }
        this.installingAtMs = this.ctx.clock.now();
        this.chunkStores++;
        this.storage.ask({ type: 'writeSnapshot', meta: snapshotMetaOf(req), offset: req.offset, data: req.data, done: req.done }, Infinity).then(
          () => { this.chunkStores--; self.tell({ type: 'snapshotChunkStored', reqId, req }); },
          (error: Error) => {
            this.chunkStores--;
            this.log.warn({ snapshot: req.snapshotId, offset: req.offset, err: error.message }, 'refused an InstallSnapshot chunk');
            self.tell({ type: 'snapshotChunkRefused', reqId, error });
          },
        );
        return;
      }
      case 'purgeLog':
        this.storage.ask({ type: 'purgeLog', throughIndex: cmd.throughIndex }, Infinity).then(
          () => this.log.debug({ throughIndex: cmd.throughIndex }, 'log purged behind the snapshot'), crash);
        return;
      case 'resetLog': {
        const s = cmd.snapshotIndex;
        this.log.info({ snapshotIndex: s }, 'the log contradicts the snapshot: dropping it');
        // Both asked now, back to back: storage answers in the order asked, so the ack of this
        // reset reaches the core before the ack of any append issued after it (LogDurability needs that).
        this.storage.ask({ type: 'truncate', from: (s + 1) as LogIndex }, Infinity).catch(crash);
        this.storage.ask({ type: 'purgeLog', throughIndex: s }, Infinity).then(() => self.tell({ type: 'logPersisted', index: s }), crash);
        return;
      }
      case 'restoreSnapshot':
        this.log.info({ index: cmd.meta.lastIncludedIndex, snapshot: cmd.meta.id }, 'restoring the state machine from a snapshot');
        this.apply.ask({ type: 'restore', meta: cmd.meta, maxChunkBytes: this.args.config.snapshotMaxChunkBytes }, Infinity)
          .catch((err: unknown) => this.onRestoreFailed(cmd.meta, err).catch(crash));
        return;
      case 'heartbeatRound':
        if (this.leadParams !== null) this.leadParams = { ...this.leadParams, round: cmd.round };
        for (const t of this.readyStreams) this.streamRef(t).tell({ type: 'heartbeatNow', round: cmd.round });
        return;
      case 'sendTimeoutNow': {
        const timeoutMs = this.args.config.electionTimeoutMinMs;
        this.log.info({ to: cmd.to }, 'leader transfer: target caught up, sending TimeoutNow');
        this.network.ask<Uint8Array>({ type: 'send', target: cmd.to, rpc: encodeRequest(cmd.req), timeoutMs }, timeoutMs + 50).then(
          (bytes) => {
            try {
              const resp = decodeResponse(bytes);
              if (resp.term > cmd.req.term) self.tell({ type: 'higherTerm', term: resp.term });
            } catch (err) {
              this.log.warn({ to: cmd.to, err: (err as Error).message }, 'dropped a malformed TimeoutNow response');
            }
          },
          (err: Error) => this.log.info({ to: cmd.to, err: err.message }, 'TimeoutNow not answered; the transfer may time out'),
        );
        return;
      }
      case 'readsReady':
        for (const id of cmd.ids) {
          const r = this.pendingReads.get(id);
          this.pendingReads.delete(id);
          r?.({ readIndex: cmd.readIndex, error: null });
        }
        return;
      case 'readsFailed':
        for (const id of cmd.ids) {
          const r = this.pendingReads.get(id);
          this.pendingReads.delete(id);
          r?.({ readIndex: 0 as LogIndex, error: cmd.error });
        }
        return;
      case 'transferSettled': {
        const r = this.pendingTransfers.get(cmd.id);
        this.pendingTransfers.delete(cmd.id);
        if (cmd.outcome.ok) {
          this.log.info({ id: cmd.id, leader: cmd.outcome.leader }, 'leader transfer done');
          r?.resolve({ leader: cmd.outcome.leader });
        } else {
          this.log.warn({ id: cmd.id, err: cmd.outcome.error.message }, 'leader transfer failed');
          r?.reject(cmd.outcome.error);
        }
        return;
      }
      case 'configChangeSettled': {
        const r = this.pendingChanges.get(cmd.id);
        this.pendingChanges.delete(cmd.id);
        if (cmd.outcome.ok) {
          this.log.info({ id: cmd.id, index: cmd.outcome.index, membership: cmd.outcome.membership }, 'config change committed');
          r?.resolve({ index: cmd.outcome.index, membership: cmd.outcome.membership });
        } else {
          this.log.warn({ id: cmd.id, err: cmd.outcome.error.message }, 'config change aborted');
          r?.reject(cmd.outcome.error);
        }
        return;
      }
      default: {
        const never: never = cmd;
        throw new TypeError(`unknown core command ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }

  private streamRef(target: number): ActorRef<StreamMsg> {
    let ref = this.streams.get(target);
    if (!ref) { ref = this.ctx.ref<StreamMsg>(`${this.args.ids.streamPrefix}${target}`); this.streams.set(target, ref); }
    return ref;
  }

  /** Asks the controller to run exactly these streams; streams for removed targets stop at once. */
  private setTargets(targets: readonly number[]): void {
    this.targets = new Set(targets);
    for (const t of [...this.readyStreams]) if (!this.targets.has(t)) { this.readyStreams.delete(t); this.streams.delete(t); }
    this.controller.tell({ type: 'ensureStreams', targets });
  }

  /**
   * Whether the write `p` is in the committed log: its index holds its term. A snapshot may have
   * covered the index before we learned (the term there is gone): then nobody here can say.
   */
  private verdict(p: PendingWrite): 'ours' | 'dropped' | 'unknown' {
    const t = this.core.termAt(p.index);
    if (t === p.term) return 'ours';
    return t === null && p.index <= this.core.status().snapshotIndex ? 'unknown' : 'dropped';
  }

  private settleCommitted(commitIndex: LogIndex): void {
    let i = 0;
    const keep: PendingWrite[] = [];
    for (; i < this.pending.length && this.pending[i].index <= commitIndex; i++) {
      const p = this.pending[i];
      const v = this.verdict(p);
      if (p.mode === 'applied' && v === 'ours') { keep.push(p); continue; }
      if (v === 'ours') p.reply.resolve({ index: p.index, term: p.term });
      else if (v === 'unknown') p.reply.reject(new ProposalOutcomeUnknownError(p.index));
      else p.reply.reject(new ProposalDroppedError(p.index));
    }
    if (i > 0) this.pending = keep.concat(this.pending.slice(i));
  }

  private settleApplied(msg: AppliedMsg): void {
    let i = 0;
    for (; i < this.pending.length && this.pending[i].index <= msg.index; i++) {
      const p = this.pending[i];
      const v = this.verdict(p);
      if (v === 'unknown') { p.reply.reject(new ProposalOutcomeUnknownError(p.index)); continue; }
      if (v === 'dropped') { p.reply.reject(new ProposalDroppedError(p.index)); continue; }
      if (p.index < msg.firstIndex) {
        // Applied in a batch whose report never arrived (e.g. a result that could not cross the thread).
        this.log.warn({ index: p.index }, 'apply result lost; answering without it');
        p.reply.resolve({ index: p.index, term: p.term });
        continue;
      }
      p.reply.resolve({ index: p.index, term: p.term, result: msg.results[p.index - msg.firstIndex] });
    }
    if (i > 0) this.pending = this.pending.slice(i);
  }

  // ---- reads, leader transfer, forwarding (thesis 6.4, 3.10) ----

  /**
   * A linearizable read: answered with the read index once this node's state machine has applied
   * through it (the caller then queries the state machine). On the leader by read-index, lease or
   * the log; elsewhere forwarded to the leader (forwardToLeader), or ForwardToLeaderError.
   */
  private onClientRead(consistency: ReadConsistency, timeoutMs?: number): unknown {
    if (consistency !== 'index' && consistency !== 'lease' && consistency !== 'log') {
      return replyError(new MalformedMessageError(`read consistency must be 'index', 'lease' or 'log', got ${String(consistency)}`));
    }
    const reply = new DeferredReply<ReadIndexResponse>();
    const s = this.core.status();
    if (s.role !== 'Leader') {
      if (this.args.forwardToLeader !== true) return replyError(new ForwardToLeaderError(s.currentLeader));
      this.forwarder.forward({ type: 'forwardRead', from: this.args.id as NodeId }, (resp) => {
        if (resp.type === 'clientError') { reply.reject(clientError(resp)); return; }
        this.whenApplied(resp.index, () => reply.resolve({ readIndex: resp.index, term: resp.term }));
      }, (err) => reply.reject(err), this.forwarder.deadline(timeoutMs));
      return reply;
    }
    if (consistency === 'log') return this.readThroughLog(reply);
    try {
      this.startRead(consistency, (r) => (r.error !== null ? reply.reject(r.error) : reply.resolve({ readIndex: r.readIndex, term: s.currentTerm })));
    } catch (err) {
      return replyError(err as Error);
    }
    return reply;
  }

  /** Starts a core read; `done` gets the read index once confirmed and applied here, or the error. */
  private startRead(mode: 'index' | 'lease', done: (r: { readIndex: LogIndex; error: Error | null }) => void): void {
    const id = this.nextReadId++;
    this.core.read(id, mode); // throws ForwardToLeaderError / NotAllowedError before anything is registered
    this.pendingReads.set(id, done);
  }

  /** The always-correct mode: a blank entry goes through the log; once it is applied here, the read is served. */
  private readThroughLog(reply: DeferredReply<ReadIndexResponse>): unknown {
    // Reads that arrive together share one blank entry, appended after all of them arrived (the
    // flushWrites message behind them), as writes share one append.
    this.queuedLogReads.push(reply);
    this.scheduleFlush();
    return reply;
  }

  private flushLogReads(): void {
    const readers = this.queuedLogReads;
    this.queuedLogReads = [];
    if (readers.length === 0) return;
    let res: { lastIndex: LogIndex; term: Term };
    try { res = this.core.proposeBlank(); } catch (err) {
      for (const r of readers) r.reject(err as Error);
      return;
    }
    this.insertPending({
      index: res.lastIndex, term: res.term, mode: 'applied',
      reply: {
        resolve: () => { for (const r of readers) r.resolve({ readIndex: res.lastIndex, term: res.term }); },
        reject: (err) => { for (const r of readers) r.reject(err); },
      },
    });
  }

  private onHeartbeatNow(): unknown {
    const reply = new DeferredReply<Term>();
    const term = this.core.status().currentTerm;
    try {
      this.startRead('index', (r) => (r.error !== null ? reply.reject(r.error) : reply.resolve(term)));
    } catch (err) {
      return replyError(err as Error);
    }
    return reply;
  }

  private onTransferLeadership(to: unknown, timeoutMs: unknown): unknown {
    if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1) return replyError(new MalformedMessageError(`transfer target must be a node id, got ${String(to)}`));
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) return replyError(new MalformedMessageError(`transfer timeoutMs must be a positive number, got ${String(timeoutMs)}`));
    const id = this.nextTransferId++;
    const reply = new DeferredReply<TransferResult>();
    this.pendingTransfers.set(id, reply);
    try {
      this.core.transferLeadership(id, to as NodeId, timeoutMs);
    } catch (err) {
      this.pendingTransfers.delete(id);
      return replyError(err as Error);
    }
    this.log.info({ to, timeoutMs }, 'leader transfer started');
    return reply;
  }

  /** Runs `fn` once our state machine has applied through `index` (at once if it has). */
  private whenApplied(index: LogIndex, fn: () => void): void {
    if (this.core.status().lastApplied >= index) { fn(); return; }
    this.awaitingApply.push({ index, resolve: fn });
  }

  private settleAwaitingApply(): void {
    if (this.awaitingApply.length === 0) return;
    const applied = this.core.status().lastApplied;
    const ready = this.awaitingApply.filter((w) => w.index <= applied);
    if (ready.length === 0) return;
    this.awaitingApply = this.awaitingApply.filter((w) => w.index > applied);
    for (const w of ready) w.resolve();
  }

  // Forwarding: the follower's side.

  /**
   * Out of the cluster, as the core's leftCluster means it: a NonVoter with a log (not a pristine
   * node waiting to be formed or added) that is not a learner its config keeps, and that knows no
   * leader. It was removed: its config says so, or (a voter that never received the final config)
   * its peers answered its campaign "unknown". No leader will replicate to it again, so requests
   * that wait on it for a leader would wait until their deadline for nothing. A node being added
   * hears from the leader while it catches up, so it forwards as usual; so does a node added back.
   */
  private outOfCluster(s: CoreStatus): boolean {
    return s.role === 'NonVoter' && s.lastLogIndex > 0 && s.currentLeader === null && !s.membership.nonVoters.includes(this.args.id as NodeId);
  }

  private forwardWrite(payload: Uint8Array, mode: ResponseMode, reply: WriteReply, deadlineMs: number): void {
    this.forwarder.forward({ type: 'forwardWrite', from: this.args.id as NodeId, payload, responseMode: mode }, (resp) => {
      if (resp.type === 'clientError') { reply.reject(clientError(resp)); return; }
      let result: unknown;
      try { result = resp.result !== undefined ? deserialize(resp.result) : undefined; } catch {
        reply.reject(new MalformedMessageError('the leader answered a forwarded write with a result that does not deserialize'));
        return;
      }
      reply.resolve({ index: resp.index, term: resp.term, ...(resp.result !== undefined ? { result } : {}) });
    }, (err) => reply.reject(err), deadlineMs);
  }

  // Forwarding: the leader's side.

  private onForwardedRequest(bytes: Uint8Array): unknown {
    let req: ClientRequest;
    try { req = decodeClientRequest(bytes); } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'refused a malformed forwarded client request');
      return replyError(err as Error);
    }
    const reply = new DeferredReply<Uint8Array>();
    this.handleClientRequest(req, (resp) => reply.resolve(encodeClientResponse(resp)));
    return reply;
  }

  private handleClientRequest(req: ClientRequest, settle: (resp: ClientResponse) => void): void {
    const fail = (err: Error) => settle({
      type: 'clientError', code: (err as { code?: string }).code ?? err.name, message: err.message,
      leaderId: (err as { leaderId?: NodeId | null }).leaderId ?? this.core.status().currentLeader,
      props: { ...err },
    });
    if (req.type === 'forwardRead') {
      const term = this.core.status().currentTerm;
      try {
        this.startRead('index', (r) => (r.error !== null ? fail(r.error) : settle({ type: 'clientOk', index: r.readIndex, term })));
      } catch (err) { fail(err as Error); }
      return;
    }
    if (req.payload.byteLength > MAX_PAYLOAD_BYTES) { fail(new MalformedMessageError(`payload of ${req.payload.byteLength} bytes exceeds ${MAX_PAYLOAD_BYTES}`)); return; }
    const reply: WriteReply = {
      resolve: (r: ClientWriteResponse) => settle({ type: 'clientOk', index: r.index, term: r.term, ...(req.responseMode === 'applied' ? { result: serializeResult(r.result) } : {}) }),
      reject: (err: Error) => fail(err),
    };
    this.queuedWrites.push({ payload: req.payload, mode: req.responseMode, reply, from: { kind: 'forwarded' } });
    this.scheduleFlush();
  }

  /**
   * A restore failed. One case is expected: a leader's newer snapshot finished arriving while the
   * last chunk of this one was still being synced (a slow disk), so storage replaced it before the
   * core installed it, and the newer one's install and restore follow (simulator seed 152). Any
   * other failure, or a snapshot gone with nothing newer in its place, fails the node.
   */
  private async onRestoreFailed(meta: SnapshotMeta, err: unknown): Promise<void> {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== 'SnapshotGone') throw err;
    const current = await this.storage.ask<SnapshotMeta | null>({ type: 'getSnapshot' });
    if (current === null || current.lastIncludedIndex <= meta.lastIncludedIndex) throw err;
    this.log.warn({ snapshot: meta.id, index: meta.lastIncludedIndex, newer: current.id, newerIndex: current.lastIncludedIndex },
      'snapshot was replaced by a newer one before it was restored; the newer one is restored next');
  }

  // ---- snapshots of our own state machine ----

  /** The policy (seed 000: by distance from the last snapshot): snapshot once enough entries were applied since the last one. */
  private maybeSnapshot(): void {
    const every = this.args.config.snapshotLogsSinceLast;
    if (every === 0 || !this.canSnapshot || this.snapshotting !== null || this.installing()) return;
    const s = this.core.status();
    // After a failure, wait for another `every` entries rather than retrying on every batch.
    if (s.lastApplied < this.snapshotRetryAt) return;
    if (s.lastApplied - s.snapshotIndex >= every) this.startSnapshot();
  }

  /**
   * True while a leader's snapshot is being received: a chunk is being stored, or the last one
   * arrived within two election timeouts (the leader sends the next as soon as one is answered).
   */
  private installing(): boolean {
    if (this.chunkStores > 0) return true;
    return this.installingAtMs !== null && this.ctx.clock.now() - this.installingAtMs < 2 * this.args.config.electionTimeoutMaxMs;
  }

  private onSnapshotNow(): unknown {
    if (!this.canSnapshot) return replyError(new NotAllowedError('this state machine does not take snapshots (it has no snapshot() and restore())'));
    if (this.installing()) return replyError(new NotAllowedError('a snapshot from the leader is being installed'));
    if (this.snapshotting === null && !this.startSnapshot()) {
      // Nothing applied since the latest snapshot: that one is the answer (or there is none yet).
      const s = this.core.status();
      if (s.snapshotIndex === 0) return replyError(new NotAllowedError('nothing is applied yet: there is nothing to snapshot'));
      const current = new DeferredReply<SnapshotMeta>();
      this.storage.ask<SnapshotMeta | null>({ type: 'getSnapshot' }).then(
        (meta) => (meta !== null ? current.resolve(meta) : current.reject(new NotAllowedError('no snapshot is stored'))),
        (err: Error) => current.reject(err),
      );
      return current;
    }
    const reply = new DeferredReply<SnapshotMeta>();
    this.snapshotting!.waiters.push(reply);
    return reply;
  }

  /** Starts making a snapshot through the last applied index; false when there is nothing new to cover. */
  private startSnapshot(): boolean {
    const s = this.core.status();
    if (s.lastApplied <= s.snapshotIndex) return false;
    const point = this.core.snapshotPoint(s.lastApplied);
    if (point === null) return false;
    this.snapshotting = { waiters: [] };
    const self = this.ctx.self as ActorRef<RaftMsg>;
    const { snapshotMaxChunkBytes: maxChunkBytes, snapshotCompressionLevel: compressionLevel } = this.args.config;
    this.apply.ask<SnapshotMeta>({ type: 'createSnapshot', point: { index: s.lastApplied, ...point }, maxChunkBytes, compressionLevel }, Infinity).then(
      (meta) => self.tell({ type: 'snapshotDone', meta, error: null }),
      (error: Error) => self.tell({ type: 'snapshotDone', meta: null, error }),
    );
    return true;
  }

  private onSnapshotDone(meta: SnapshotMeta | null, error: Error | null): void {
    const waiters = this.snapshotting?.waiters ?? [];
    this.snapshotting = null;
    if (meta === null) {
      this.snapshotRetryAt = this.core.status().lastApplied + this.args.config.snapshotLogsSinceLast;
      this.log.warn({ err: error?.message }, 'snapshot failed');
      for (const w of waiters) w.reject(error ?? new Error('snapshot failed'));
      return;
    }
    this.core.step({ type: 'snapshotCreated', meta });
    for (const w of waiters) w.resolve(meta);
  }

  // ---- time and metrics ----

  private scheduleTick(): void {
    const at = this.core.nextDeadlineMs();
    if (at === this.tickAtMs) return;
    if (this.tickTimer !== null) this.ctx.clock.clearTimeout(this.tickTimer);
    this.tickTimer = null;
    this.tickAtMs = at;
    if (at === null) return;
    const self = this.ctx.self as ActorRef<RaftMsg>;
    this.tickTimer = this.ctx.clock.setTimeout(() => self.tell({ type: 'tick' }), Math.max(0, at - this.ctx.clock.now()));
  }

  private metricsNow(): RaftMetrics {
    const s = this.core.status();
    return {
      id: s.id, state: s.role, currentTerm: s.currentTerm, lastLogIndex: s.lastLogIndex, lastApplied: s.lastApplied,
      commitIndex: s.commitIndex, currentLeader: s.currentLeader, membership: s.membership,
      membershipIndex: s.membershipIndex, configChange: s.configChange, snapshotIndex: s.snapshotIndex,
      preVoteRounds: s.preVoteRounds, electionsStarted: s.electionsStarted, readIndexRounds: s.readIndexRounds, transferTarget: s.transferTarget,
      quorumLossStepDowns: s.quorumLossStepDowns, leaseUntilMs: s.leaseUntilMs,
    };
  }

  private publishMetrics(force: boolean): void {
    const m = this.metricsNow();
    const significant = isSignificantChange(this.lastMetrics, m);
    if (!force && !significant) return;
    if (significant) {
      if (this.lastMetrics === null || this.lastMetrics.currentTerm !== m.currentTerm) this.log = this.ctx.logger.child({ node: this.args.id, term: m.currentTerm });
      this.log.info({ role: m.state, leader: m.currentLeader, lastLogIndex: m.lastLogIndex, commitIndex: m.commitIndex }, 'raft state changed');
    }
    this.lastMetrics = m;
    this.metricsRef.tell({ type: 'update', metrics: m });
  }
}

/** A state machine result as bytes for a forwarded write's answer (node:v8, the structured-clone format). */
function serializeResult(result: unknown): Uint8Array {
  try { return serialize(result); } catch { return serialize(undefined); }
}

export function createRaftActor(args: RaftActorArgs): RaftActor { return new RaftActor(args); }
export const RAFT_ACTOR_MODULE = __filename;
