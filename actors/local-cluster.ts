/**
 * LocalCluster: several Raft nodes in one process on a LocalNetwork, for development, tests and the
 * demo. Forms the cluster with InitWithConfig on every node in parallel, finds the leader by
 * waiting on metrics, and injects faults through the network.
 *
 * @example
 * const cluster = await LocalCluster.start({ size: 3, stateMachine: { module: KV_MODULE, export: 'createKv', args: {} } });
 * const leader = await cluster.waitForLeader();
 * await cluster.node(leader).clientWrite(encodeKv({ op: 'put', key: 'k', value: 'v' }));
 * await cluster.shutdown();
 */
import type { Logger } from 'pino';
import type { ActorSpec } from '../runtime/actor';
import { ActorSystem } from '../runtime/system';
import { LocalNetwork } from '../network/local-network';
import { nodeId, type NodeId } from './raft/core/types';
import { isKnown } from './raft/core/membership';
import type { RaftConfig } from './raft/core/config';
import type { StateMachineSpec } from './apply/state-machine';
import type { RaftMetrics } from './metrics/metrics';
import { RaftNode, type NodePlacement } from './node';

export interface LocalClusterOptions {
  readonly size: number;
  readonly stateMachine: StateMachineSpec;
  readonly placement?: NodePlacement;
  readonly config?: Partial<RaftConfig>;
  /** Seed for the actor system's random source (election timeouts). */
  readonly seed?: number;
  /** Form the cluster with InitWithConfig on every node (default true). */
  readonly init?: boolean;
  /** The actor system's logger (default: pino at RAFT_LOG_LEVEL, silent under tests). */
  readonly logger?: Logger;
  /**
   * Each node's storage (default MemoryStorage). With a durable one, such as
   * `(id) => fileStorageSpec({ dir: `./data/${id}` })`, `restartNode` brings a node back with its state.
   */
  readonly storage?: (id: NodeId) => ActorSpec;
  /** Every node forwards writes and reads to the leader (RaftNodeOptions.forwardToLeader). */
  readonly forwardToLeader?: boolean;
  /** Exactly-once client sessions on every node (RaftNodeOptions.sessions). */
  readonly sessions?: boolean;
}

/** Most nodes a LocalCluster starts: a bound so a typo cannot spawn thousands of threads. */
export const MAX_CLUSTER_SIZE = 15;

export class LocalCluster {
  readonly network = new LocalNetwork();
  private readonly nodes = new Map<number, RaftNode>();

  private constructor(readonly system: ActorSystem, private readonly opts: LocalClusterOptions) {}

  /** The ids of the running nodes, ascending (changes with addNode and stopNode). */
  get ids(): readonly NodeId[] {
    return [...this.nodes.keys()].sort((a, b) => a - b) as NodeId[];
  }

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > MAX_CLUSTER_SIZE) {
      throw new RangeError(`size must be an integer in 1..${MAX_CLUSTER_SIZE}, got ${String(opts.size)}`);
    }
    const system = ActorSystem.create({ seed: opts.seed ?? 1, logger: opts.logger });
    const ids = Array.from({ length: opts.size }, (_, i) => nodeId(i + 1));
    const cluster = new LocalCluster(system, opts);
    try {
      const nodes = await Promise.all(ids.map((id) => cluster.addNode(id)));
      if (opts.init ?? true) await Promise.all(nodes.map((n) => n.initWithConfig(ids)));
    } catch (err) {
      await cluster.shutdown();
      throw err;
    }
    return cluster;
  }

  node(id: number): RaftNode {
    const n = this.nodes.get(id);
    if (!n) throw new RangeError(`no node ${id} in this cluster (ids: ${this.ids.join(', ')})`);
    return n;
  }

  all(): RaftNode[] { return [...this.nodes.values()]; }

  /**
   * Starts a new, pristine node (a NonVoter with an empty log) on the cluster's network. It joins
   * nothing by itself: propose `{ add: [id] }` (or `addNonVoters`) to the leader.
   * @example
   * await cluster.addNode(4);
   * await cluster.node(leader).proposeConfigChange({ add: [4] });
   */
  async addNode(id: number): Promise<RaftNode> {
    const nid = nodeId(id);
    if (this.nodes.has(nid)) throw new RangeError(`node ${id} is already running in this cluster`);
    if (this.nodes.size >= MAX_CLUSTER_SIZE) throw new RangeError(`a LocalCluster runs at most ${MAX_CLUSTER_SIZE} nodes`);
    // A node that lost its state (stopNode wipes MemoryStorage) must not come back under an id the
    // config still names: it forgot its vote and its log, and could vote twice in one term.
    if (this.opts.storage === undefined) {
      const naming = this.all().find((n) => { const m = n.metrics(); return m !== null && m.lastLogIndex > 0 && isKnown(m.membership, nid); });
      if (naming) throw new RangeError(`node ${id} is still in the config (as node ${naming.id} sees it): remove it with proposeConfigChange before starting a fresh node under its id`);
    }
    return this.startNode(nid);
  }

  /**
   * Stops node `id` and starts it again on the same storage: a crash and restart. Only with durable
   * storage (the `storage` option); with MemoryStorage the node would come back empty.
   * @example await cluster.restartNode(2); // node 2 recovers its term, vote and log from disk
   */
  async restartNode(id: number): Promise<RaftNode> {
    if (this.opts.storage === undefined) throw new RangeError('restartNode needs durable storage (the storage option); MemoryStorage forgets everything when a node stops');
    await this.stopNode(id);
    return this.startNode(nodeId(id));
  }

  private async startNode(nid: NodeId): Promise<RaftNode> {
    const node = await RaftNode.start({
      system: this.system, id: nid, network: this.network.endpointSpec(nid), stateMachine: this.opts.stateMachine,
      placement: this.opts.placement, config: this.opts.config, storage: this.opts.storage?.(nid),
      forwardToLeader: this.opts.forwardToLeader, sessions: this.opts.sessions,
    });
    this.nodes.set(nid, node);
    return node;
  }

  /** Stops node `id` (for MemoryStorage its state is gone; durable storage keeps it) and forgets it. */
  async stopNode(id: number): Promise<void> {
    const node = this.node(id);
    this.nodes.delete(node.id);
    await node.stop();
  }

  /**
   * Waits until one leader is seen by every node in `among` (default: every node) in the same
   * term, and returns its id. Rejects after `timeoutMs`.
   */
  async waitForLeader(opts: { among?: readonly number[]; notIn?: readonly number[]; timeoutMs?: number } = {}): Promise<NodeId> {
    const among = (opts.among ?? this.ids).map((id) => this.node(id));
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    const agreed = (): NodeId | null => {
      const ms = among.map((n) => n.metrics());
      const first = ms[0];
      if (!first || first.currentLeader === null || (opts.notIn ?? []).includes(first.currentLeader)) return null;
      const ok = ms.every((m) => m !== null && m.currentLeader === first.currentLeader && m.currentTerm === first.currentTerm);
      const leader = ok ? this.nodes.get(first.currentLeader) : undefined;
      return leader && leader.metrics()?.state === 'Leader' && leader.metrics()?.currentTerm === first.currentTerm ? first.currentLeader : null;
    };
    for (;;) {
      const l = agreed();
      if (l !== null) return l;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no agreed leader within ${opts.timeoutMs ?? 15_000} ms: ${JSON.stringify(among.map((n) => summary(n.metrics())))}`);
      // Wake on the next metrics update of any node (or give up at the deadline).
      await new Promise<void>((resolve) => {
        const offs: (() => void)[] = [];
        const done = () => { clearTimeout(t); for (const off of offs) off(); resolve(); };
        const t = setTimeout(done, Math.min(left, 250));
        for (const n of among) offs.push(n.onMetrics(done));
      });
    }
  }

  /** Waits until every node in `among` has applied at least `index`. */
  async waitForApplied(index: number, opts: { among?: readonly number[]; timeoutMs?: number } = {}): Promise<void> {
    await Promise.all((opts.among ?? this.ids).map((id) => this.waitForNodeApplied(this.node(id), index, opts.timeoutMs)));
  }

  private async waitForNodeApplied(n: RaftNode, index: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await n.currentMetrics()).lastApplied < index) {
      if (Date.now() > deadline) throw new Error(`node ${n.id} did not apply index ${index} within ${timeoutMs} ms: ${JSON.stringify(summary(n.metrics()))}`);
      await n.waitForMetrics((m) => m.lastApplied >= index, { timeoutMs: Math.min(25, Math.max(1, deadline - Date.now())) }).catch(() => undefined);
    }
  }

  isolate(id: number): void { this.network.isolate(nodeId(id)); }
  restore(id: number): void { this.network.restore(nodeId(id)); }

  /** Stops every node and the actor system: no threads or timers remain. */
  async shutdown(): Promise<void> {
    await Promise.allSettled(this.all().map((n) => n.stop()));
    await this.system.shutdown();
  }
}

function summary(m: RaftMetrics | null): unknown {
  return m && { id: m.id, state: m.state, term: m.currentTerm, leader: m.currentLeader, last: m.lastLogIndex, commit: m.commitIndex, applied: m.lastApplied };
}
