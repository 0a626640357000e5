/**
 * Simulation: a whole Raft cluster in one thread, under a virtual clock and one seeded random
 * source, with the real actors (Raft, ReplicationStreams, Apply, Metrics, storage, network) on
 * `local` placement. Nothing runs unless the simulation steps it, so one seed gives one history,
 * byte for byte, and a failing seed replays exactly.
 *
 * One step is one actor handling one message, or the clock jumping to the next timer. After every
 * step the InvariantChecker looks at every running node.
 *
 * @example
 * const sim = await Simulation.create({ seed: 7, nodes: 5 });
 * await sim.runUntil(() => sim.leader() !== null, { timeoutMs: 5_000 });
 * sim.network.faults = UNRELIABLE_NETWORK;
 * await sim.crash(sim.leader()!);
 * await sim.runFor(2_000);
 * console.log(sim.traceHash());
 * await sim.shutdown();
 */
import { createHash, type Hash } from 'node:crypto';
import type { ActorSpec, Runnable } from '../runtime/index';
import type { Clock } from '../runtime/actor';
import { type ClockDrift, SkewedClock, VirtualClock } from '../runtime/clock';
import { ManualDispatcher } from '../runtime/dispatcher';
import { createLogger, type Logger } from '../runtime/logging';
import { SeededRandom } from '../runtime/random';
import { ActorSystem } from '../runtime/system';
import type { RaftConfig } from '../actors/raft/core/config';
import { buildConfig } from '../actors/raft/core/config';
import { nodeId, type Entry, type LogIndex, type NodeId, type SnapshotMeta } from '../actors/raft/core/types';
import type { StateMachine } from '../actors/apply/state-machine';
import { RaftNode, type ClientWriteOptions } from '../actors/node';
import type { ClientWriteResponse, ConfigChangeResult, RaftActor, RaftInspection } from '../actors/raft/raft-actor';
import { raftActorId, type InboundRpc } from '../network/network';
import { KvStateMachine } from '../examples/kv/kv-state-machine';
import { DEFAULT_DISK, type DiskOptions, SimDisk } from './disk';
import { InvariantChecker, InvariantViolationError, type InvariantOptions } from './invariants';
import { NodeDisk, SimStorageActor } from './sim-storage';
import { RELIABLE_NETWORK, SimNetwork, type NetworkFaults, validateFaults } from './sim-network';

/** The application under test: a state machine per node, and optionally how to hash its state. */
export interface SimStateMachine<S extends StateMachine = StateMachine> {
  create(id: NodeId): S;
  /** A hash of the state, compared across nodes at equal applied index. Omit if the state cannot be hashed. */
  stateHash?(sm: S): string;
}

/** A membership change as RaftNode.proposeConfigChange takes it: `{ add?, remove?, addNonVoters? }`. */
export type SimConfigChange = Parameters<RaftNode['proposeConfigChange']>[0];

/** The default application: the KV store of examples/kv, hashed by its digest query. */
export const KV_APPLICATION: SimStateMachine<KvStateMachine> = {
  create: () => new KvStateMachine(),
  stateHash: (sm) => (sm.query({ q: 'digest' }) as { sha256: string }).sha256,
};

export interface SimulationOptions {
  readonly seed: number;
  /** Cluster size; nodes get ids 1..nodes. */
  readonly nodes: number;
  readonly config?: Partial<RaftConfig>;
  /** Default: KV_APPLICATION. */
  readonly application?: SimStateMachine;
  /**
   * The state machine outlives a crash (an application that persists what it applies), so applied
   * indexes never go back. Default true; false rebuilds it on restart and replays from index 1.
   */
  readonly durableStateMachine?: boolean;
  /**
   * Your own storage actor for node `id`. Default: SimStorage on a simulated disk. With your own
   * storage, crashes lose what your actor loses, and the log-matching and durable-quorum checks
   * (which read the simulated disk) are off.
   */
  readonly storage?: (id: NodeId) => ActorSpec;
  /** Packet faults at the start (default: reliable). Change them any time through `network.faults`. */
  readonly network?: Partial<NetworkFaults>;
  readonly disk?: Partial<DiskOptions>;
  /** Form the cluster with InitWithConfig on the initial members (default true). */
  readonly init?: boolean;
  /**
   * How many nodes form the cluster (default: all `nodes`). Ids 1..members run InitWithConfig with
   * each other; the others start as pristine NonVoters, outside the cluster until a leader adds
   * them with `proposeConfigChange`.
   */
  readonly members?: number;
  /** Keep every trace line in memory (`traceLines()`), not only their hash. Default false. */
  readonly keepTrace?: boolean;
  /** A run that takes more steps than this fails (a livelock guard). Default 5,000,000. */
  readonly maxSteps?: number;
  /** Default: silent. */
  readonly logger?: Logger;
  /**
   * Per node id, a clock that drifts from the simulation's virtual clock (SkewedClock: `rate` times
   * as fast, plus `offsetMs`). The node's Raft actor and replication streams keep its time: its
   * election timeouts, heartbeats, check-quorum and lease. Nodes not named keep virtual time.
   */
  readonly clocks?: Readonly<Record<number, ClockDrift>>;
  /**
   * Exactly-once client sessions on every node (RaftNodeOptions.sessions; default false). The session
   * table lives in memory and snapshots only, so the state machine is rebuilt at every start:
   * `durableStateMachine` defaults to false, and true is refused.
   */
  readonly sessions?: boolean;
  /** Turn off invariants that rest on assumptions a test breaks on purpose (`leaseSafety: false`). */
  readonly invariants?: Pick<InvariantOptions, 'leaseSafety'>;
}

/** Called with every batch a node's state machine applies (see Simulation.onApplied). */
export type ApplyListener = (id: NodeId, sm: StateMachine, entries: readonly Entry[]) => void;

/** The simulation itself failed to make progress or was misused. */
export class SimulationError extends Error {
  readonly code = 'Simulation';
  constructor(message: string, readonly seed: number) {
    super(`${message} (seed ${seed})`);
    this.name = 'SimulationError';
  }
}

/** A node is not running: the client could not reach it, and nothing was sent. */
export class NodeDownError extends Error {
  readonly code = 'NodeDown';
  constructor(readonly node: number) {
    super(`node ${node} is down`);
    this.name = 'NodeDownError';
  }
}

/** What ObservedStateMachine reports to the simulation. */
interface StateMachineObserver {
  applied(entries: readonly Entry[]): void;
  /** The Apply actor asked for a snapshot of the state (it is about to write one to storage). */
  snapshotTaken(): void;
  /** The state was replaced with a snapshot's. */
  restored(meta: SnapshotMeta): void;
}

/**
 * The state machine the Apply actor sees: the application's, with every batch and every restore
 * reported to the checker. snapshot() and restore() are present exactly when the application's
 * state machine has both, so the Apply actor takes snapshots only of a state machine that can.
 */
class ObservedStateMachine implements StateMachine {
  /** Present only when the application's state machine answers queries, so the Apply actor can tell. */
  readonly query?: (q: unknown) => unknown;
  readonly snapshot?: () => Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>;
  readonly restore?: (meta: SnapshotMeta, data: AsyncIterable<Uint8Array>) => Promise<void>;
  constructor(private readonly sm: StateMachine, private readonly observer: StateMachineObserver) {
    if (sm.query) this.query = (q) => sm.query!(q);
    if (typeof sm.snapshot === 'function' && typeof sm.restore === 'function') {
      this.snapshot = () => { observer.snapshotTaken(); return sm.snapshot!(); };
      this.restore = async (meta, data) => {
        await sm.restore!(meta, data);
        observer.restored(meta);
      };
    }
  }
  lastApplied(): LogIndex | Promise<LogIndex> { return this.sm.lastApplied(); }
  apply(entries: readonly Entry[]): readonly unknown[] | Promise<readonly unknown[]> {
    const out = this.sm.apply(entries);
    if (out instanceof Promise) return out.then((r) => { this.observer.applied(entries); return r; });
    this.observer.applied(entries);
    return out;
  }
}

interface SimNode {
  readonly id: NodeId;
  handle: RaftNode | null;
  /** Replaced by `wipe`: a new, empty disk. */
  nodeDisk: NodeDisk;
  sm: StateMachine | null;
  failure: Error | null;
  crashes: number;
  /** Times this node was wiped (a fresh disk and state machine each time). */
  wipes: number;
  /** Its Apply actor is writing a snapshot of its own state machine (the chunks storage gets are ours, not a leader's). */
  creatingSnapshot: boolean;
  /**
   * May run InitWithConfig when it restarts pristine: an initial member never wiped. A node added
   * later, or wiped, joins only through a leader's config change; InitWithConfig would start a
   * cluster of its own.
   */
  initialMember: boolean;
}

/** Counters of one simulation. */
export interface SimulationStats {
  steps: number;
  crashes: number;
  restarts: number;
  tornWrites: number;
  unsyncedBytesLost: number;
  wipes: number;
  /** Snapshots of the nodes' own state machines made durable. */
  snapshotsCreated: number;
  /** InstallSnapshot transfers begun (a first chunk stored on a follower) and completed (the snapshot durable there). */
  snapshotTransfers: number;
  snapshotInstalls: number;
  /** InstallSnapshot chunks followers' storage accepted. */
  snapshotChunks: number;
  /** State machines restored from a snapshot (after an install, or at a start behind the snapshot). */
  snapshotRestores: number;
}

const hop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Simulation {
  readonly clock = new VirtualClock();
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  readonly config: RaftConfig;
  readonly ids: readonly NodeId[];
  /** The nodes that formed the cluster with InitWithConfig: ids 1..members. */
  readonly initialMembers: readonly NodeId[];
  readonly stats: SimulationStats = {
    steps: 0, crashes: 0, restarts: 0, tornWrites: 0, unsyncedBytesLost: 0, wipes: 0,
    snapshotsCreated: 0, snapshotTransfers: 0, snapshotInstalls: 0, snapshotChunks: 0, snapshotRestores: 0,
  };
  readonly system: ActorSystem;
  private readonly dispatcher: ManualDispatcher;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly hash: Hash = createHash('sha256');
  private readonly lines: string[] | null;
  private readonly app: SimStateMachine;
  private readonly durableSm: boolean;
  private readonly maxSteps: number;
  private readonly diskOptions: DiskOptions;
  private eventSeq = 0;
  private closed = false;
  private readonly applyListeners: ApplyListener[] = [];

  private constructor(readonly seed: number, private readonly opts: SimulationOptions) {
    this.random = new SeededRandom(seed);
    this.lines = opts.keepTrace ? [] : null;
    this.config = buildConfig(opts.config);
    this.app = opts.application ?? KV_APPLICATION;
    // A state machine that keeps its state across restarts loses the session table (docs/CLIENTS.md,
    // "What sessions do not cover"): with sessions it is rebuilt at every start.
    this.durableSm = opts.durableStateMachine ?? opts.sessions !== true;
    this.maxSteps = opts.maxSteps ?? 5_000_000;
    this.dispatcher = new ManualDispatcher((task: Runnable) => this.trace(`run ${(task as { id?: string }).id ?? '?'}`));
    this.system = ActorSystem.create({ clock: this.clock, dispatcher: this.dispatcher, seed, logger: opts.logger ?? createLogger({ level: 'silent' }) });
    this.network = new SimNetwork(this.clock, this.random.fork('network'), (line) => this.trace(line));
    this.network.faults = validateFaults({ ...RELIABLE_NETWORK, ...opts.network });
    this.network.setDeliver((target, bytes, timeoutMs) => {
      const n = this.nodes.get(target);
      if (!n?.handle) return null;
      return this.system.ref<InboundRpc>(raftActorId(target)).ask<Uint8Array>({ type: 'rpc', bytes }, timeoutMs);
    });
    this.ids = Array.from({ length: opts.nodes }, (_, i) => nodeId(i + 1));
    this.initialMembers = this.ids.slice(0, opts.members ?? opts.nodes);
    this.diskOptions = { ...DEFAULT_DISK, ...opts.disk };
    for (const id of this.ids) {
      this.nodes.set(id, { id, handle: null, nodeDisk: this.newDisk(id, 0), sm: null, failure: null, crashes: 0, wipes: 0, creatingSnapshot: false, initialMember: this.initialMembers.includes(id) });
    }
    for (const [id, drift] of Object.entries(opts.clocks ?? {})) {
      if (!this.nodes.has(Number(id) as NodeId)) throw new RangeError(`clocks: no node ${id} in this simulation (ids 1..${opts.nodes})`);
      new SkewedClock(this.clock, drift); // validates the drift
    }
    this.checker = new InvariantChecker(seed, opts.storage ? undefined : (id) => this.nodes.get(id)?.nodeDisk.view, {
      localNow: (id) => this.localNow(id),
      leaseSafety: opts.invariants?.leaseSafety ?? true,
      checkQuorumWindowMs: this.config.checkQuorum ? 2 * this.config.electionTimeoutMaxMs + this.config.heartbeatIntervalMs : null,
    });
    this.network.onAnswer = (to, from) => this.checker.answered(to, from);
  }

  /** Starts every node (and forms the cluster of the initial members unless `init: false`). */
  static async create(opts: SimulationOptions): Promise<Simulation> {
    validateOptions(opts);
    const sim = new Simulation(opts.seed, opts);
    // The first line is unchanged for a cluster of every node, so existing traces keep their hash.
    sim.trace(`sim seed=${opts.seed} nodes=${opts.nodes}${sim.initialMembers.length === opts.nodes ? '' : ` members=${sim.initialMembers.length}`}`);
    for (const [id, d] of Object.entries(opts.clocks ?? {})) sim.trace(`clock-drift ${id} rate=${d.rate} offset=${d.offsetMs ?? 0}`);
    if (opts.sessions === true) sim.trace('sessions');
    for (const id of sim.ids) await sim.settle(sim.startNode(id));
    if (opts.init ?? true) {
      const inits = sim.initialMembers.map((id) => sim.node(id).initWithConfig(sim.initialMembers));
      await sim.settle(Promise.all(inits));
    }
    return sim;
  }

  // ---- time and steps ----

  now(): number { return this.clock.now(); }

  /** Whether the nodes run exactly-once client sessions (the `sessions` option). */
  get sessions(): boolean { return this.opts.sessions === true; }

  /** What node `id`'s own clock reads now: virtual time, or its drifting clock (`clocks`). */
  localNow(id: number): number {
    const d = this.opts.clocks?.[id];
    return d === undefined ? this.clock.now() : (d.offsetMs ?? 0) + d.rate * this.clock.now();
  }

  /**
   * Calls `fn` with every batch of entries a node's state machine applies, after it applied them
   * (with the state machine, which a restart without durableStateMachine replaces). A listener that
   * finds something wrong reports it with `checker.fail`. Returns the function that removes it.
   */
  onApplied(fn: ApplyListener): () => void {
    this.applyListeners.push(fn);
    return () => { const i = this.applyListeners.indexOf(fn); if (i >= 0) this.applyListeners.splice(i, 1); };
  }

  /** A number that orders events (client calls and returns) of this simulation. */
  nextEventSeq(): number { return ++this.eventSeq; }

  /**
   * Runs one step: one actor message, or a jump of the clock to the next timer (no later than
   * `until`). Returns false when nothing is left to do before `until`.
   */
  async step(until = Infinity): Promise<boolean> {
    if (this.closed) throw new SimulationError('the simulation is shut down', this.seed);
    if (!this.dispatcher.runOne()) {
      const next = this.clock.nextTimerAt();
      if (next === undefined || next > until) return false;
      this.trace(`clock ${next.toFixed(3)}`);
      this.clock.advanceTo(next);
    }
    if (++this.stats.steps > this.maxSteps) throw new SimulationError(`more than ${this.maxSteps} steps`, this.seed);
    await hop(); // promise continuations (asks answered, async handlers) belong to this step
    if (this.checker.violation !== null) throw this.checker.violation;
    this.checkInvariants();
    return true;
  }

  /** Runs for `ms` of virtual time. */
  async runFor(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`runFor(${ms}): ms must be >= 0`);
    const until = this.now() + ms;
    while (await this.step(until)) { /* each step checks invariants */ }
    if (this.now() < until) this.clock.advanceTo(until);
  }

  /** Runs until `pred()` holds; throws SimulationError after `timeoutMs` of virtual time. */
  async runUntil(pred: () => boolean, opts: { timeoutMs: number; what?: string }): Promise<void> {
    const until = this.now() + opts.timeoutMs;
    while (!pred()) {
      if (!(await this.step(until))) {
        if (pred()) return;
        throw new SimulationError(`${opts.what ?? 'condition'} not reached within ${opts.timeoutMs} virtual ms`, this.seed);
      }
    }
  }

  /** Steps the simulation until `p` settles (or `timeoutMs` of virtual time passes), and returns its outcome. */
  async settle<T>(p: Promise<T>, timeoutMs = 60_000): Promise<T> {
    let done = false;
    p.then(() => { done = true; }, () => { done = true; });
    await hop();
    await this.runUntil(() => done, { timeoutMs, what: 'operation' });
    return p;
  }

  // ---- nodes ----

  /** The RaftNode handle of a running node; throws NodeDownError when it is down. */
  node(id: number): RaftNode {
    const n = this.simNode(id);
    if (!n.handle) throw new NodeDownError(id);
    return n.handle;
  }

  isUp(id: number): boolean { return this.simNode(id).handle !== null; }

  upNodes(): NodeId[] { return this.ids.filter((id) => this.isUp(id)); }

  /** The node's protocol state right now, or null when it is down or still starting. */
  inspect(id: number): RaftInspection | null {
    if (!this.isUp(id)) return null;
    return this.system.localActor<RaftActor>(raftActorId(id))?.inspect() ?? null;
  }

  /** The state machine of node `id` (also while it is down, when durable). */
  stateMachine<S extends StateMachine = StateMachine>(id: number): S | null { return this.simNode(id).sm as S | null; }

  /** The leader of the highest term among running nodes, or null. */
  leader(): NodeId | null {
    let best: { id: NodeId; term: number } | null = null;
    for (const id of this.ids) {
      const s = this.inspect(id)?.status;
      if (s?.role === 'Leader' && (best === null || s.currentTerm > best.term)) best = { id, term: s.currentTerm };
    }
    return best?.id ?? null;
  }

  /** The node's simulated disk (undefined with your own storage). */
  disk(id: number): SimDisk { return this.simNode(id).nodeDisk.disk; }

  /**
   * Power loss on node `id`: its unsynced writes are dropped (or torn), its actors stop, its packets
   * in flight are lost. Clients waiting on it hear NodeStoppedError (outcome unknown).
   */
  async crash(id: number): Promise<void> {
    const n = this.simNode(id);
    if (!n.handle) throw new SimulationError(`crash(${id}): node is already down`, this.seed);
    const handle = n.handle;
    n.handle = null;
    n.creatingSnapshot = false;
    n.crashes++;
    this.stats.crashes++;
    this.network.nodeDown(n.id);
    const effect = n.nodeDisk.disk.crash();
    n.nodeDisk.afterCrash();
    if (effect.tornBytes > 0) this.stats.tornWrites++;
    this.stats.unsyncedBytesLost += effect.droppedBytes;
    this.trace(`crash ${id} dropped=${effect.droppedBytes} torn=${effect.tornBytes}`);
    await this.settle(handle.stop());
  }

  /** Starts node `id` again from what its disk holds. */
  async restart(id: number): Promise<void> {
    const n = this.simNode(id);
    if (n.handle) throw new SimulationError(`restart(${id}): node is running`, this.seed);
    this.stats.restarts++;
    this.trace(`restart ${id}`);
    this.checker.restarted(n.id, this.durableSm);
    await this.settle(this.startNode(n.id));
    // Like an application that runs InitWithConfig at boot whenever its node is pristine (seed 004):
    // an initial member that crashed before the cluster's config reached its disk joins the
    // formation again. A node added later (or wiped) never does: it would form a cluster of its own.
    const s = this.inspect(id)?.status;
    if ((this.opts.init ?? true) && n.initialMember && s?.role === 'NonVoter' && s.lastLogIndex === 0) {
      this.trace(`reinit ${id}`);
      await this.settle(this.node(id).initWithConfig(this.initialMembers));
    }
  }

  /**
   * Replaces node `id`'s machine, as an operator does with a node removed from the cluster: it is
   * crashed if running, and gets a fresh, empty disk and a fresh state machine. It stays down;
   * `restart(id)` then starts it as a pristine NonVoter that only a leader's config change brings
   * in (never InitWithConfig). Wiping a node that is still in the config loses its votes and
   * entries, which Raft does not tolerate: only wipe nodes a committed config has removed. With
   * your own storage (`storage` option), what the node finds at restart is up to your storage spec.
   */
  async wipe(id: number): Promise<void> {
    const n = this.simNode(id);
    if (n.handle) await this.crash(id);
    n.wipes++;
    this.stats.wipes++;
    n.nodeDisk = this.newDisk(n.id, n.wipes);
    n.sm = null;
    n.initialMember = false;
    this.trace(`wipe ${id}`);
    this.checker.wiped(n.id);
  }

  /** True once node `id` has been wiped (it can only rejoin through a config change). */
  wasWiped(id: number): boolean { return this.simNode(id).wipes > 0; }

  /**
   * A client write to node `id`, stepped until it settles. NodeDownError when the node is down.
   * Runs the simulation while it waits; use `node(id).clientWrite` to issue writes concurrently.
   */
  async write(id: number, payload: Uint8Array, opts: ClientWriteOptions = {}): Promise<ClientWriteResponse> {
    return this.settle(this.node(id).clientWrite(payload, opts), (opts.timeoutMs ?? 30_000) + 1_000);
  }

  /**
   * A membership change proposed on node `id` (the leader), stepped until it settles: resolves
   * with the final config once it commits, rejects with the library's typed errors
   * (NodeNotLeaderError, ConfigChangeInProgressError, NoopConfigChangeError, ConfigChangeAbortedError,
   * InoperableConfigError) or NodeDownError. Use `node(id).proposeConfigChange` to keep stepping yourself.
   */
  async proposeConfigChange(id: number, change: SimConfigChange, opts: { timeoutMs?: number } = {}): Promise<ConfigChangeResult> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    this.trace(`propose-config ${id} ${JSON.stringify(change)}`);
    return this.settle(this.node(id).proposeConfigChange(change, { timeoutMs }), timeoutMs + 1_000);
  }

  /** Resolves after `ms` of virtual time (the simulation must be stepping meanwhile). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimeout(resolve, ms));
  }

  /** Errors that stopped a node on their own (not a simulated crash): a bug unless a test provoked it. */
  failures(): { id: NodeId; error: Error }[] {
    return [...this.nodes.values()].filter((n) => n.failure !== null).map((n) => ({ id: n.id, error: n.failure! }));
  }

  // ---- trace ----

  /** Adds a line to the trace (the simulator's own events; tests may add theirs). */
  trace(line: string): void {
    this.hash.update(line).update('\n');
    this.lines?.push(line);
  }

  /** sha256 of every trace line so far: equal for two runs of one seed, byte for byte. */
  traceHash(): string { return this.hash.copy().digest('hex'); }

  traceLines(): readonly string[] {
    if (this.lines === null) throw new SimulationError('traceLines() needs keepTrace: true', this.seed);
    return this.lines;
  }

  /** Stops every node and the actor system. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    for (const n of this.nodes.values()) {
      const h = n.handle;
      n.handle = null;
      if (h) await this.settle(h.stop()).catch(() => undefined);
    }
    this.closed = true;
    await this.system.shutdown();
  }

  // ---- internals ----

  private newDisk(id: NodeId, wipes: number): NodeDisk {
    // The first disk keeps the stream it always had; each wipe draws from a stream of its own.
    const stream = wipes === 0 ? `disk${id}` : `disk${id}.wipe${wipes}`;
    return new NodeDisk(new SimDisk(`n${id}/raft.log`, this.random.fork(stream), this.diskOptions));
  }

  private simNode(id: number): SimNode {
    const n = this.nodes.get(id as NodeId);
    if (!n) throw new RangeError(`no node ${id} in this simulation (ids 1..${this.ids.length})`);
    return n;
  }

  private async startNode(id: NodeId): Promise<void> {
    const n = this.simNode(id);
    const incarnation = this.network.nodeUp(id);
    if (!this.durableSm || n.sm === null) n.sm = this.app.create(id);
    n.creatingSnapshot = false;
    const sm = n.sm;
    const hashState = this.app.stateHash;
    const observed = new ObservedStateMachine(sm, {
      applied: (entries) => {
        this.checker.applied(id, entries, hashState ? hashState(sm) : undefined);
        for (const l of this.applyListeners) l(id, sm, entries);
      },
      snapshotTaken: () => { n.creatingSnapshot = true; },
      restored: (meta) => {
        this.stats.snapshotRestores++;
        this.trace(`restored ${id} ${meta.lastIncludedIndex}`);
        this.checker.restored(id, meta, hashState ? hashState(sm) : undefined);
      },
    });
    const storage: ActorSpec = this.opts.storage
      ? this.opts.storage(id)
      : {
        factory: () => new SimStorageActor({
          nodeDisk: n.nodeDisk,
          onLogWrite: (from, entries) => this.checker.logWritten(id, from, entries),
          onLogPurge: (through) => this.checker.logPurged(id, through),
          onSnapshotChunk: (meta, offset, _bytes, done) => this.snapshotChunk(n, meta, offset, done),
        }),
      };
    try {
      n.handle = await RaftNode.start({
        system: this.system, id, network: this.network.endpointSpec(id, incarnation), storage,
        stateMachine: { factory: () => observed }, placement: 'local', config: this.config, cpuPool: false,
        onFailed: (error) => this.nodeFailed(id, error),
        ...(this.opts.sessions === true ? { sessions: true } : {}),
        ...(this.opts.clocks?.[id] !== undefined ? { clock: (base: Clock) => new SkewedClock(base, this.opts.clocks![id]!) } : {}),
      });
    } catch (err) {
      this.network.nodeDown(id);
      throw err;
    }
  }

  /** Counts a snapshot chunk node `n`'s storage accepted: of its own snapshot, or of a leader's transfer. */
  private snapshotChunk(n: SimNode, meta: SnapshotMeta, offset: number, done: boolean): void {
    if (n.creatingSnapshot) {
      if (!done) return;
      n.creatingSnapshot = false;
      this.stats.snapshotsCreated++;
      this.trace(`snapshot ${n.id} ${meta.lastIncludedIndex}`);
      return;
    }
    this.stats.snapshotChunks++;
    if (offset === 0) this.stats.snapshotTransfers++;
    if (done) {
      this.stats.snapshotInstalls++;
      this.trace(`installed ${n.id} ${meta.lastIncludedIndex}`);
    }
  }

  private nodeFailed(id: NodeId, error: Error): void {
    const n = this.simNode(id);
    this.trace(`failed ${id} ${error.name}`);
    n.failure = error;
    if (n.handle) {
      n.handle = null;
      this.network.nodeDown(id);
    }
  }

  private checkInvariants(): void {
    this.checker.at(this.stats.steps, this.now());
    for (const id of this.ids) {
      const view = this.inspect(id);
      if (view) this.checker.observe(id, view);
    }
    this.checker.endStep();
  }
}

function validateOptions(o: SimulationOptions): void {
  if (o === null || typeof o !== 'object') throw new TypeError('Simulation options must be an object');
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${String(o.seed)}`);
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 15) throw new RangeError(`nodes must be an integer in 1..15, got ${String(o.nodes)}`);
  if (o.members !== undefined && !(Number.isInteger(o.members) && o.members >= 1 && o.members <= o.nodes)) {
    throw new RangeError(`members must be an integer in 1..nodes (${String(o.nodes)}), got ${String(o.members)}`);
  }
  if (o.sessions === true && o.durableStateMachine === true) {
    throw new RangeError('sessions need a state machine rebuilt at every start (durableStateMachine: false): one that persists itself loses the session table on restart (docs/CLIENTS.md)');
  }
  if (o.maxSteps !== undefined && !(Number.isInteger(o.maxSteps) && o.maxSteps > 0)) throw new RangeError(`maxSteps must be a positive integer, got ${String(o.maxSteps)}`);
  const d = o.disk ?? {};
  for (const k of ['syncMinMs', 'syncJitterMs'] as const) {
    if (d[k] !== undefined && !(typeof d[k] === 'number' && d[k]! >= 0 && Number.isFinite(d[k]))) throw new RangeError(`disk.${k} must be a finite number >= 0, got ${String(d[k])}`);
  }
  if (d.tornWriteProbability !== undefined && !(d.tornWriteProbability >= 0 && d.tornWriteProbability <= 1)) {
    throw new RangeError(`disk.tornWriteProbability must be in [0, 1], got ${String(d.tornWriteProbability)}`);
  }
}

export { InvariantViolationError };
