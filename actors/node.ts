/**
 * RaftNode: the application's handle to one Raft node. `RaftNode.start` spawns the node's actors
 * (Raft, ReplicationStreams, network, storage, Apply, Metrics) under a supervisor, on worker
 * threads or on the calling thread, wires them to each other by id, and returns the handle.
 *
 * @example
 * const system = ActorSystem.create();
 * const net = new LocalNetwork();
 * const node = await RaftNode.start({ system, id: 1, network: net.endpointSpec(nodeId(1)),
 *   stateMachine: { module: KV_MODULE, export: 'createKv', args: {} } });
 * await node.initWithConfig([1]);
 * const { index } = await node.clientWrite(encodeKv({ op: 'put', key: 'a', value: '1' }));
 */
import type { Actor, ActorContext, ActorRef, ActorSpec, Clock, Placement } from '../runtime/actor';
import { clockedSpec } from '../runtime/clock';
import { LOCAL, onArbiter } from '../runtime/actor';
import type { ActorSystem } from '../runtime/system';
import { Supervisor } from '../runtime/supervisor';
import { ensureCpuPool } from '../runtime/cpu-pool';
import { ActorGoneError, AskTimeoutError } from '../runtime/errors';
import { buildConfig, type RaftConfig } from './raft/core/config';
import { MAX_PAYLOAD_BYTES } from './raft/codec';
import { MalformedMessageError, NodeStoppedError, NotAllowedError } from './raft/core/errors';
import { nodeId, type NodeId, type SnapshotMeta } from './raft/core/types';
import { APPLY_ACTOR_MODULE, ApplyActor, type ApplyArgs, type ApplyMsg } from './apply/apply-actor';
import type { StateMachineSpec } from './apply/state-machine';
import { MetricsActor, type MetricsListener, type RaftMetrics } from './metrics/metrics';
import { validateConfigChangeRequest } from './raft/core/config-change';
import {
  RAFT_ACTOR_MODULE, type ClientWriteResponse, type ConfigChangeResult, type ControllerMsg, type RaftActorArgs, type RaftMsg, type ReadIndexResponse,
  type ResponseMode, type TransferResult,
} from './raft/raft-actor';
import { encodeCommand, encodePlain, encodeRegister, isSessionErrorResult, sessionErrorOf, withSessions } from './apply/sessions';
import type { Term } from './raft/core/types';
import { REPLICATION_STREAM_MODULE, type StreamArgs } from './replication/replication-stream';
import { MEMORY_STORAGE_MODULE } from '../storage/memory-storage';
import { raftActorId } from '../network/network';
import './errors-registry';

export type NodePlacement = 'worker' | 'local';

export interface RaftNodeOptions {
  readonly system: ActorSystem;
  readonly id: number;
  /** The node's network actor (e.g. `localNetwork.endpointSpec(id)`). */
  readonly network: ActorSpec;
  /** The application's state machine, built on the Apply actor's thread. */
  readonly stateMachine: StateMachineSpec;
  /** The storage actor. Default: MemoryStorage. */
  readonly storage?: ActorSpec;
  /**
   * 'worker' (default): the Raft actor, its streams and the network actor share one worker thread;
   * storage and apply get one each. 'local': everything on the calling thread.
   */
  readonly placement?: NodePlacement;
  readonly config?: Partial<RaftConfig>;
  /** Called once if the node fails (its Raft, storage or Apply actor crashed). */
  readonly onFailed?: (cause: Error) => void;
  /**
   * Start the process's CPU pool actor on `system` if it is not there (default true): large
   * snapshots are packed on its piscina threads. The simulator turns it off to stay on one thread.
   */
  readonly cpuPool?: boolean;
  /**
   * Forward client writes and linearizable reads that reach a node other than the leader to the
   * leader, through the network actor, instead of rejecting them with ForwardToLeaderError
   * (default false). A read is confirmed by the leader and then served from this node's own state
   * machine once it has applied that far. While no leader is known a request waits for one, up to
   * its timeout.
   */
  readonly forwardToLeader?: boolean;
  /**
   * Exactly-once client sessions (Raft paper section 8; see docs/CLIENTS.md): the state machine is
   * wrapped in the session layer and every write is enveloped. Must be the same on every node of
   * a cluster, from its first entry on (default false).
   */
  readonly sessions?: boolean;
  /**
   * The node's own clock, built over the clock its actors would get (default: that clock as it is).
   * Its Raft actor and replication streams (the actors that keep Raft's time: election timeouts,
   * heartbeats, check-quorum, leases) see it. The simulator uses it to give one node a clock that
   * drifts (runtime/clock.ts SkewedClock). 'local' placement only.
   */
  readonly clock?: (base: Clock) => Clock;
}

/** A client session's place in a write: its id (from registerSession) and this command's serial number. */
export interface SessionRef {
  readonly clientId: number;
  /** 1, 2, 3, ...: a retry of a command reuses its serial; the next command takes the next one. */
  readonly serial: number;
}

export interface ClientWriteOptions {
  /** 'committed' (default): answer once a quorum has it durable. 'applied': once applied here, with the result. */
  readonly responseMode?: ResponseMode;
  readonly timeoutMs?: number;
  /**
   * Apply this write exactly once (needs the `sessions` option): a retry with the same clientId and
   * serial gets the first attempt's result and is not applied again. Implies responseMode 'applied'.
   */
  readonly session?: SessionRef;
}

/**
 * How a read is served. 'linearizable' (default): read-index, confirmed by a quorum round without
 * writing to the log. 'lease': from the leader's lease while it is valid (no round trip; relies on
 * bounded clock drift, see RaftConfig.leaseClockDriftMarginMs), else as 'linearizable'. 'log': a
 * blank entry through the log first (slowest, no assumption at all). 'stale': this replica's state
 * as it is, at once (may be behind; never blocks).
 */
export type ReadConsistencyLevel = 'linearizable' | 'lease' | 'log' | 'stale';

export interface ClientReadOptions {
  readonly consistency?: ReadConsistencyLevel;
  readonly timeoutMs?: number;
}

/** A membership change as the application asks for it (see RaftNode.proposeConfigChange). */
export interface ConfigChange {
  /** Nodes to make voters: new (pristine) nodes, or non-voters to promote. */
  readonly add?: readonly number[];
  /** Nodes to take out of the config, voters or non-voters (the leader included). */
  readonly remove?: readonly number[];
  /** Nodes to keep as non-voting learners: new nodes, or voters to demote. */
  readonly addNonVoters?: readonly number[];
}

export interface WaitOptions { readonly timeoutMs?: number; readonly what?: string }

const STREAM_RESTART = { kind: 'restart', backoffMs: { initial: 10, max: 1000 }, maxRestarts: 20 } as const;

/** Starts and stops the replication streams the Raft actor asks for, through the node's supervisor. */
class NodeController implements Actor<ControllerMsg> {
  private readonly running = new Set<number>();
  private logger!: ActorContext['logger'];
  started(ctx: ActorContext): void { this.logger = ctx.logger; }
  constructor(private readonly sup: Supervisor, private readonly streamSpec: (target: number) => ActorSpec,
    private readonly placement: Placement, private readonly prefix: string) {}

  async receive(msg: ControllerMsg): Promise<void> {
    if (msg.type !== 'ensureStreams') throw new TypeError(`unknown controller message ${String((msg as { type?: unknown }).type)}`);
    for (const t of [...this.running]) {
      if (!msg.targets.includes(t)) { this.running.delete(t); await this.sup.stopActor(`${this.prefix}${t}`); }
    }
    for (const t of msg.targets) {
      if (this.running.has(t) || this.sup.state !== 'running') continue;
      try {
        await this.sup.spawn(`${this.prefix}${t}`, this.streamSpec(t), this.placement, STREAM_RESTART);
        this.running.add(t);
      } catch (err) {
        // A stream that cannot start must not fail the node: the next election or config change asks again.
        this.logger.warn({ target: t, err: (err as Error).message }, 'replication stream did not start');
      }
    }
  }
}

function validSession(s: unknown): SessionRef {
  const v = s as Partial<SessionRef> | null;
  if (v === null || typeof v !== 'object') throw new MalformedMessageError('session must be { clientId, serial }');
  if (!Number.isSafeInteger(v.clientId) || (v.clientId as number) < 1) throw new MalformedMessageError(`session clientId must be an id from registerSession, got ${String(v.clientId)}`);
  if (!Number.isSafeInteger(v.serial) || (v.serial as number) < 1) throw new MalformedMessageError(`session serial must be an integer >= 1, got ${String(v.serial)}`);
  return { clientId: v.clientId as number, serial: v.serial as number };
}

export class RaftNode {
  private constructor(
    readonly id: NodeId,
    readonly config: RaftConfig,
    private readonly system: ActorSystem,
    private readonly supervisor: Supervisor,
    private readonly raft: ActorRef<RaftMsg>,
    private readonly applyRef: ActorRef<ApplyMsg>,
    private readonly metricsActor: MetricsActor,
    /** Whether writes are session envelopes (RaftNodeOptions.sessions). */
    readonly sessions: boolean = false,
  ) {}

  /** Spawns a node. Config is validated first (InvalidConfigError); the node starts passive (NonVoter when pristine). */
  static async start(opts: RaftNodeOptions): Promise<RaftNode> {
    const id = nodeId(opts.id);
    const config = buildConfig(opts.config);
    const placement = opts.placement ?? 'worker';
    if (placement !== 'worker' && placement !== 'local') throw new TypeError(`placement must be 'worker' or 'local', got ${String(placement)}`);
    if (opts.clock !== undefined && (typeof opts.clock !== 'function' || placement !== 'local')) throw new TypeError('clock must be a function, and needs local placement');
    const clocked = (spec: ActorSpec): ActorSpec => (opts.clock === undefined ? spec : clockedSpec(spec, opts.clock));
    const { system } = opts;
    if (opts.cpuPool ?? true) await ensureCpuPool(system);
    const sup = new Supervisor(system, { name: `n${id}` });
    const where = async (role: string): Promise<Placement> => {
      if (placement === 'local') return LOCAL;
      await sup.startArbiter(`n${id}-${role}`);
      return onArbiter(`n${id}-${role}`);
    };
    const [raftAt, storageAt, applyAt] = [await where('raft'), await where('storage'), await where('apply')];
    const ids = {
      storage: `n${id}/storage`, network: `n${id}/network`, apply: `n${id}/apply`,
      metrics: `n${id}/metrics`, controller: `n${id}/controller`, streamPrefix: `n${id}/stream/`,
    };
    const raftId = raftActorId(id);
    const failNode = { kind: 'fail-node' } as const;
    try {
      const metrics = new MetricsActor();
      await sup.spawn(ids.metrics, { factory: () => metrics }, LOCAL, failNode);
      const streamSpec = (target: number): ActorSpec => clocked({
        module: REPLICATION_STREAM_MODULE, export: 'createReplicationStream',
        args: { self: id, target, config, raftActorId: raftId, networkActorId: ids.network, storageActorId: ids.storage } satisfies StreamArgs,
      });
      await sup.spawn(ids.controller, { factory: () => new NodeController(sup, streamSpec, raftAt, ids.streamPrefix) }, LOCAL, failNode);
      await sup.spawn(ids.storage, opts.storage ?? { module: MEMORY_STORAGE_MODULE, export: 'createMemoryStorage', args: {} }, storageAt, failNode);
      const sm = opts.stateMachine;
      const sessions = opts.sessions === true;
      const applySpec: ActorSpec = 'factory' in sm
        ? { factory: () => new ApplyActor(sessions ? withSessions(sm.factory()) : sm.factory(), raftId, ids.storage) }
        : { module: APPLY_ACTOR_MODULE, export: 'createApplyActor', args: { raftActorId: raftId, stateMachine: sm, storageActorId: ids.storage, sessions } satisfies ApplyArgs };
      const applyRef = await sup.spawn<ApplyMsg>(ids.apply, applySpec, applyAt, failNode);
      await sup.spawn(ids.network, opts.network, raftAt, { kind: 'restart', backoffMs: { initial: 10, max: 1000 }, maxRestarts: 20 });
      const raftArgs: RaftActorArgs = { id, config, ids, forwardToLeader: opts.forwardToLeader === true, sessions };
      const raft = await sup.spawn<RaftMsg>(raftId, clocked({ module: RAFT_ACTOR_MODULE, export: 'createRaftActor', args: raftArgs }), raftAt, failNode);
      if (opts.onFailed) sup.on('failed', opts.onFailed);
      return new RaftNode(id, config, system, sup, raft, applyRef, metrics, sessions);
    } catch (err) {
      await sup.stop();
      throw err;
    }
  }

  /**
   * Forms a cluster (seeds 000/004): call on every node with the same ids, its own included.
   * Rejects with NotAllowedError unless the node is a pristine NonVoter, InoperableConfigError for a bad set.
   */
  async initWithConfig(members: readonly number[]): Promise<void> {
    if (!Array.isArray(members)) throw new MalformedMessageError('members must be an array of node ids');
    for (const m of members) if (!Number.isSafeInteger(m) || m < 1) throw new MalformedMessageError(`bad node id ${String(m)}`);
    await this.raft.ask({ type: 'initWithConfig', members: [...members] });
  }

  /**
   * Changes the cluster's membership (seed 004's ProposeConfigChange, paper 6). Call it on the
   * leader. `add` makes nodes voters (new nodes start pristine and are caught up before they vote),
   * `remove` takes nodes out, `addNonVoters` keeps nodes as non-voting learners (read replicas).
   * Resolves once the final config is committed, with its index and content. Writes continue
   * throughout; one change at a time.
   *
   * Rejects with: NodeNotLeaderError (leaderId when known); LeaderTransferInProgressError (the
   * leader is handing over: retry on the new one); ConfigChangeInProgressError;
   * NoopConfigChangeError (nothing to change: also what a retry of a finished change gets);
   * InoperableConfigError (no voters left, or two or more voters shrunk to one);
   * MalformedMessageError (bad ids, an id in two lists); ConfigChangeAbortedError (leadership lost,
   * or a new node made no progress for `catchUpTimeoutMs`; `mayStillComplete` says whether the next
   * leader may finish it); NodeStoppedError or a timeout (outcome unknown).
   *
   * @example
   * await leader.proposeConfigChange({ add: [4, 5] });            // grow 3 -> 5
   * await leader.proposeConfigChange({ add: [6], remove: [1] });  // replace node 1 (even the leader)
   */
  async proposeConfigChange(change: ConfigChange, opts: { timeoutMs?: number } = {}): Promise<ConfigChangeResult> {
    const valid = validateConfigChangeRequest(change);
    // Copies of the caller's arrays: under local placement nothing is cloned, and a caller that
    // reuses its array must not change a request already under way.
    const request = Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, [...v]]));
    return this.askRaft<ConfigChangeResult>({ type: 'proposeConfigChange', change: request }, opts.timeoutMs ?? 300_000);
  }

  /**
   * Takes a snapshot of the state machine now (seed 002's manual trigger) and resolves with its
   * SnapshotMeta once it is durable; the log behind it is then purged (keeping snapshotKeepEntries).
   * Rejects with NotAllowedError when the state machine has no snapshot()/restore() or a leader's
   * snapshot is being installed. A call while one is being made waits for that one.
   */
  async snapshotNow(opts: { timeoutMs?: number } = {}): Promise<SnapshotMeta> {
    return this.askRaft<SnapshotMeta>({ type: 'snapshotNow' }, opts.timeoutMs ?? 120_000);
  }

  /**
   * Proposes a command. On a node that is not the leader it rejects with ForwardToLeaderError
   * (carrying the leader's id when known), unless the node forwards (forwardToLeader).
   * ProposalDroppedError: never applied, safe to retry. LeaderTransferInProgressError: nothing
   * appended, retry on the new leader. NodeStoppedError, NodeRemovedError (the node left the
   * cluster while the write waited) or a timeout: outcome unknown; retry with the same session
   * serial to have it applied exactly once (`opts.session`).
   *
   * @example
   * const clientId = await node.registerSession();
   * await node.clientWrite(cmd, { session: { clientId, serial: 1 } }); // a retry of serial 1 is applied once
   */
  async clientWrite(payload: Uint8Array, opts: ClientWriteOptions = {}): Promise<ClientWriteResponse> {
    if (!(payload instanceof Uint8Array)) throw new MalformedMessageError('payload must be a Uint8Array');
    // Refused before it is cloned to the Raft actor's thread: copying tens of MB only to refuse them stalls both threads.
    if (payload.byteLength > MAX_PAYLOAD_BYTES) throw new MalformedMessageError(`payload of ${payload.byteLength} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    // Only an absent mode defaults; anything else given is validated by the Raft actor.
    let responseMode = opts.responseMode === undefined ? 'committed' : opts.responseMode;
    let proposal = payload;
    if (opts.session !== undefined) {
      if (!this.sessions) throw new NotAllowedError('client sessions need the node option sessions: true');
      const { clientId, serial } = validSession(opts.session);
      proposal = encodeCommand(clientId, serial, payload);
      responseMode = 'applied'; // the original response is what exactly-once returns
    } else if (this.sessions) {
      proposal = encodePlain(payload);
    }
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const res = await this.askRaft<ClientWriteResponse>({ type: 'clientWrite', payload: proposal, responseMode, timeoutMs }, timeoutMs);
    const sessionError = this.sessions ? sessionErrorOf(res.result) : null;
    if (sessionError !== null) throw sessionError;
    return res;
  }

  /**
   * Opens a client session (needs the `sessions` option) and resolves with its client id: the log
   * index of its registration, the same on every replica. The session expires after `timeoutMs`
   * (default 1 hour) of log time without a command; a command of an expired session rejects with
   * SessionExpiredError and is not applied.
   */
  async registerSession(opts: { timeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<number> {
    if (!this.sessions) throw new NotAllowedError('client sessions need the node option sessions: true');
    const timeoutMs = opts.requestTimeoutMs ?? 30_000;
    const res = await this.askRaft<ClientWriteResponse>({ type: 'clientWrite', payload: encodeRegister(opts.timeoutMs ?? 3_600_000), responseMode: 'applied', timeoutMs }, timeoutMs);
    const r = res.result as { clientId?: unknown } | undefined;
    if (isSessionErrorResult(r) || typeof r?.clientId !== 'number') throw sessionErrorOf(r) ?? new MalformedMessageError('the state machine did not register the session');
    return r.clientId;
  }

  /**
   * Reads this node's state machine (StateMachine.query) at the consistency asked for (see
   * ReadConsistencyLevel; default 'linearizable'). On a node that is not the leader a linearizable
   * read rejects with ForwardToLeaderError unless the node forwards (forwardToLeader).
   *
   * @example
   * const v = await node.clientRead({ key: 'a' });                           // read-index
   * const w = await node.clientRead({ key: 'a' }, { consistency: 'lease' }); // no round trip while the lease holds
   */
  async clientRead<R = unknown>(query: unknown, opts: ClientReadOptions = {}): Promise<R> {
    const consistency = opts.consistency ?? 'linearizable';
    if (consistency !== 'stale') await this.ensureLinearizable({ consistency, timeoutMs: opts.timeoutMs });
    return this.query<R>(query);
  }

  /**
   * Waits until a read of this node's state machine is linearizable (thesis 6.4): the leader
   * confirmed its leadership with a quorum (batched with other reads) or holds a valid lease, and
   * this node has applied through the read index. Resolves with that index and the leader's term.
   */
  async ensureLinearizable(opts: { consistency?: Exclude<ReadConsistencyLevel, 'stale'>; timeoutMs?: number } = {}): Promise<ReadIndexResponse> {
    const level = opts.consistency ?? 'linearizable';
    const consistency = level === 'linearizable' ? 'index' : level;
    if (consistency !== 'index' && consistency !== 'lease' && consistency !== 'log') throw new MalformedMessageError(`consistency must be 'linearizable', 'lease', 'log' or 'stale', got ${String(level)}`);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return this.askRaft<ReadIndexResponse>({ type: 'clientRead', consistency, timeoutMs }, timeoutMs);
  }

  /**
   * Hands leadership to voter `to` (thesis 3.10): the leader stops taking writes
   * (LeaderTransferInProgressError), brings `to` up to date, and sends it TimeoutNow; resolves once
   * `to` is known to lead. Rejects with NodeNotLeaderError, or LeaderTransferError: 'not-a-voter',
   * 'in-progress', 'timeout' (not caught up, or not elected, within `timeoutMs`, default 10
   * election timeouts), 'superseded', 'leadership-lost'.
   */
  async transferLeadership(to: number, opts: { timeoutMs?: number } = {}): Promise<TransferResult> {
    if (!Number.isSafeInteger(to) || to < 1) throw new MalformedMessageError(`transfer target must be a node id, got ${String(to)}`);
    const timeoutMs = opts.timeoutMs ?? 10 * this.config.electionTimeoutMaxMs;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new MalformedMessageError(`timeoutMs must be a positive number, got ${String(timeoutMs)}`);
    return this.askRaft<TransferResult>({ type: 'transferLeadership', to, timeoutMs }, timeoutMs + 5_000);
  }

  /**
   * Starts an election now (manual trigger). With preVote on (the default) it is a pre-vote round
   * first, which fails while the followers hold a healthy leader's lease: use transferLeadership to
   * move leadership. NotAllowedError on the leader or a non-voter.
   */
  async electNow(): Promise<void> { await this.askRaft({ type: 'electNow' }, 10_000); }

  /**
   * Sends a heartbeat to every follower now (manual trigger) and resolves with the term once a
   * quorum answered it: leadership is confirmed as of now. Leader only (ForwardToLeaderError).
   */
  async heartbeatNow(opts: { timeoutMs?: number } = {}): Promise<Term> {
    return this.askRaft<Term>({ type: 'heartbeatNow' }, opts.timeoutMs ?? 10_000);
  }

  /**
   * Asks the Raft actor. If it stops while the request waits in its mailbox or for an outcome, that
   * is NodeStoppedError (outcome unknown), as documented, not the runtime's ActorGoneError (found by
   * the 6.824 port).
   */
  private askRaft<T>(msg: RaftMsg, timeoutMs: number): Promise<T> {
    return this.raft.ask<T>(msg, timeoutMs).catch((err: unknown) => {
      if (err instanceof ActorGoneError) throw new NodeStoppedError(this.id);
      throw err;
    });
  }

  /** The latest published metrics (null before the Raft actor has started). */
  metrics(): RaftMetrics | null { return this.metricsActor.latest; }

  /** Fresh metrics straight from the Raft actor. */
  async currentMetrics(): Promise<RaftMetrics> { return this.raft.ask<RaftMetrics>({ type: 'getMetrics' }); }

  /** Calls `fn` on every published metrics update; returns the unsubscribe function. */
  onMetrics(fn: MetricsListener): () => void { return this.metricsActor.subscribe(fn); }

  /**
   * Resolves with the first metrics satisfying `pred` (checked now and on every update);
   * rejects with AskTimeoutError after `timeoutMs` (default 10 s). Use this, never a sleep.
   */
  waitForMetrics(pred: (m: RaftMetrics) => boolean, opts: WaitOptions = {}): Promise<RaftMetrics> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const now = this.metricsActor.latest;
      if (now && pred(now)) { resolve(now); return; }
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new AskTimeoutError(`n${this.id}/metrics (${opts.what ?? 'condition'}; last: ${JSON.stringify(this.metricsActor.latest)})`, timeoutMs));
      }, timeoutMs);
      const unsubscribe = this.metricsActor.subscribe((m) => {
        if (!pred(m)) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(m);
      });
    });
  }

  /** A local, non-linearizable read of this replica's state machine (StateMachine.query). */
  async query<R = unknown>(q: unknown): Promise<R> { return this.applyRef.ask<R>({ type: 'query', query: q }); }

  /** Stops the node's actors in order (streams, Raft, network, Apply, storage, ...) and its threads. */
  async stop(): Promise<void> { await this.supervisor.stop(); }

  get state(): Supervisor['state'] { return this.supervisor.state; }

  /** The actor system this node lives in. */
  get actorSystem(): ActorSystem { return this.system; }
}

