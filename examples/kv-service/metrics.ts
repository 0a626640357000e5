/**
 * The KV service's Prometheus metrics (prom-client), in a registry of its own per service instance
 * (never the global default one: tests run several nodes in one process).
 *
 * Raft's own numbers come from the node's published RaftMetrics; the transport's from
 * TcpNetworkStats, a SharedArrayBuffer the network actor writes on its thread. Both are read at
 * scrape time (collect callbacks), so nothing runs between scrapes except the leader-change
 * counter, which has to watch every update to see each new leader.
 *
 * Transport latency: TcpNetworkStats keeps per-bucket counts (not cumulative) over its own upper
 * bounds in ms. Prometheus histograms are cumulative and in seconds, and prom-client's Histogram
 * can only be fed observations, so `actor_raft_rpc_latency_seconds` is a small collector of our
 * own that converts the totals: a true histogram whose _count is the answered requests.
 *
 * @example
 * const metrics = new KvMetrics({ node, tcpStats });
 * const server = createKvHttpServer(node, { metrics });
 * // GET /metrics -> await metrics.text(), Content-Type: metrics.contentType
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { RaftNode } from '../../actors/node';
import type { RaftMetrics } from '../../actors/metrics/metrics';
import type { TcpNetworkStats, TcpNetworkStatsSnapshot } from '../../network/tcp-network';
import type { FileStorageStats } from '../../storage/file-storage';

export interface KvMetricsOptions {
  /** The node whose RaftMetrics are exported. */
  readonly node: Pick<RaftNode, 'metrics' | 'onMetrics' | 'currentMetrics'>;
  /** The TcpNetwork's counters (the same object whose `.buffer` went to tcpNetworkSpec). */
  readonly tcpStats?: TcpNetworkStats;
  /** FileStorage's counters, when the node stores to disk. */
  readonly storageStats?: FileStorageStats;
  /** prom-client's process metrics (CPU, memory, event loop lag, GC...); default true. */
  readonly defaultMetrics?: boolean;
}

/** Upper bounds (s) of the HTTP request latency histogram: 0.5 ms .. 10 s. */
const HTTP_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Methods kept as they are in the `method` label; any other is 'other' (bounded label values). */
const METHODS = new Set(['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']);

type Getter = (m: RaftMetrics) => number;

/** The RaftMetrics fields exported as gauges: name, help, value. */
const RAFT_GAUGES: readonly (readonly [string, string, Getter])[] = [
  ['actor_raft_term', 'The current Raft term of this node', (m) => m.currentTerm],
  ['actor_raft_commit_index', 'The highest log index this node knows to be committed', (m) => m.commitIndex],
  ['actor_raft_applied_index', 'The highest log index applied to this node\'s state machine', (m) => m.lastApplied],
  ['actor_raft_last_log_index', 'The last index in this node\'s log', (m) => m.lastLogIndex],
  ['actor_raft_snapshot_index', 'The last index the latest snapshot covers (0: none)', (m) => m.snapshotIndex],
  ['actor_raft_is_leader', '1 while this node is the leader, else 0', (m) => (m.state === 'Leader' ? 1 : 0)],
  ['actor_raft_current_leader', 'The id of the leader this node knows of (0: none known)', (m) => m.currentLeader ?? 0],
  ['actor_raft_voters', 'Voters in the config in force (the latest in the log)', (m) => m.membership.members.length],
];

/** Counters RaftMetrics keeps since the node started: name, help, value. */
const RAFT_COUNTERS: readonly (readonly [string, string, Getter])[] = [
  ['actor_raft_elections_started_total', 'Elections this node started', (m) => m.electionsStarted],
  ['actor_raft_pre_vote_rounds_total', 'Pre-vote rounds this node started', (m) => m.preVoteRounds],
  ['actor_raft_read_index_rounds_total', 'Read-index confirmation rounds (each confirms a batch of linearizable reads)', (m) => m.readIndexRounds],
  ['actor_raft_quorum_loss_step_downs_total', 'Times this node stepped down as leader because no quorum answered (check-quorum)', (m) => m.quorumLossStepDowns],
];

/** TcpNetworkStats' process-wide counters: field, metric name, help. */
const TCP_COUNTERS: readonly (readonly [keyof TcpNetworkStatsSnapshot & string, string, string])[] = [
  ['connects', 'actor_raft_tcp_connects_total', 'Peer connections that completed their handshake'],
  ['connectFailures', 'actor_raft_tcp_connect_failures_total', 'Dials of a peer that failed'],
  ['disconnects', 'actor_raft_tcp_disconnects_total', 'Peer connections closed'],
  ['rejectedSends', 'actor_raft_tcp_rejected_sends_total', 'Sends refused at once because their peer was down'],
  ['refusedCluster', 'actor_raft_tcp_refused_cluster_total', 'Connections refused: another cluster id'],
  ['refusedNode', 'actor_raft_tcp_refused_node_total', 'Connections refused: a node outside the address book, or addressed to another node'],
  ['refusedHandshake', 'actor_raft_tcp_refused_handshake_total', 'Connections refused: a bad or missing handshake'],
  ['badFrames', 'actor_raft_tcp_bad_frames_total', 'Connections closed for a malformed or stalled frame'],
  ['oversizedFrames', 'actor_raft_tcp_oversized_frames_total', 'Connections closed for a frame over the size limit'],
  ['framesIn', 'actor_raft_tcp_frames_received_total', 'Frames received from peers'],
  ['framesOut', 'actor_raft_tcp_frames_sent_total', 'Frames sent to peers'],
  ['bytesIn', 'actor_raft_tcp_received_bytes_total', 'Bytes received from peers'],
  ['bytesOut', 'actor_raft_tcp_sent_bytes_total', 'Bytes sent to peers'],
];

/** FileStorageStats fields exported: field, metric name, help. */
const STORAGE_COUNTERS = [
  ['fsyncs', 'actor_raft_storage_fsyncs_total', 'fdatasync and fsync calls of the node\'s storage'],
  ['batches', 'actor_raft_storage_flushes_total', 'Log flushes (each one group commit)'],
  ['entries', 'actor_raft_storage_entries_written_total', 'Log entries written'],
  ['bytes', 'actor_raft_storage_written_bytes_total', 'Bytes written to the log'],
] as const;

export class KvMetrics {
  readonly registry = new Registry();
  private readonly http: Histogram<'route' | 'method' | 'status'>;
  private readonly unsubscribe: () => void;
  private lastLeader: { term: number; leader: number } | null = null;
  /** RaftMetrics asked for at the start of this scrape (the published ones lag up to metricsIntervalMs). */
  private scraped: RaftMetrics | null = null;

  constructor(private readonly opts: KvMetricsOptions) {
    const registers = [this.registry];
    const latest = () => this.scraped ?? opts.node.metrics();
    for (const [name, help, get] of RAFT_GAUGES) {
      new Gauge({ name, help, registers, collect() { const m = latest(); if (m) this.set(get(m)); } });
    }
    for (const [name, help, get] of RAFT_COUNTERS) counterFrom(registers, name, help, () => { const m = latest(); return m ? get(m) : null; });

    const leaderChanges = new Counter({ name: 'actor_raft_leader_changes_total', help: 'New leaders this node has seen (a leader in a term it had not seen one in), itself included', registers });
    const observe = (m: RaftMetrics) => {
      if (m.currentLeader === null) return;
      if (this.lastLeader !== null && this.lastLeader.term === m.currentTerm && this.lastLeader.leader === m.currentLeader) return;
      this.lastLeader = { term: m.currentTerm, leader: m.currentLeader };
      leaderChanges.inc();
    };
    this.unsubscribe = opts.node.onMetrics(observe);
    const now = latest();
    if (now) observe(now);

    if (opts.tcpStats) this.registerTcp(opts.tcpStats);
    const storage = opts.storageStats;
    if (storage) for (const [field, name, help] of STORAGE_COUNTERS) counterFrom(registers, name, help, () => storage.read()[field]);

    this.http = new Histogram({
      name: 'kv_http_request_duration_seconds',
      help: 'HTTP requests to the KV API: time from the request to the end of the answer, by route, method and status ("aborted": the client left first)',
      labelNames: ['route', 'method', 'status'],
      buckets: HTTP_BUCKETS_S,
      registers,
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  private registerTcp(stats: TcpNetworkStats): void {
    const registers = [this.registry];
    // One read per scrape section would be enough; each collector reads its own (a read is ~100 floats).
    for (const [field, name, help] of TCP_COUNTERS) counterFrom(registers, name, help, () => stats.read()[field] as number);
    labelledCounterFrom(registers, 'actor_raft_rpc_sent_total', 'Raft RPCs this node sent to peers, by kind (answered or not)', (s) => s.requests, stats);
    labelledCounterFrom(registers, 'actor_raft_rpc_sent_failures_total', 'Raft RPCs this node sent that got no answer (unreachable peer, closed connection, timeout, error answer), by kind', (s) => s.failures, stats);
    new Counter({
      name: 'actor_raft_rpc_received_total',
      help: 'Raft RPCs from peers delivered to this node\'s Raft actor, by kind',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = stats.read();
        this.reset();
        for (const k of s.kinds) this.inc({ kind: k }, s.received[k]);
      },
    });
    this.registry.registerMetric(new RpcLatencyHistogram(stats) as unknown as Metric);
  }

  /** Records one HTTP request (the API calls it when the answer is done); status 0: the client went away first. */
  observeHttp(route: string, method: string, status: number, seconds: number): void {
    this.http.observe({ route, method: METHODS.has(method) ? method : 'other', status: status === 0 ? 'aborted' : String(status) }, seconds);
  }

  /** The whole registry in Prometheus' text format, with the node's metrics fresh from its Raft actor. */
  async text(): Promise<string> {
    try {
      this.scraped = await this.opts.node.currentMetrics();
    } catch {
      this.scraped = null; // stopping or stopped: the last published ones will do
    }
    try {
      return await this.registry.metrics();
    } finally {
      this.scraped = null;
    }
  }

  get contentType(): string { return this.registry.contentType; }

  /** Stops watching the node's metrics. */
  close(): void { this.unsubscribe(); }
}

/** A counter whose value is read from elsewhere at scrape time (null: not known yet, left out). */
function counterFrom(registers: Registry[], name: string, help: string, read: () => number | null): Counter {
  return new Counter({
    name, help, registers,
    collect() {
      const v = read();
      this.reset();
      if (v !== null) this.inc(v);
    },
  });
}

function labelledCounterFrom(registers: Registry[], name: string, help: string, pick: (s: TcpNetworkStatsSnapshot['sent'][keyof TcpNetworkStatsSnapshot['sent']]) => number, stats: TcpNetworkStats): Counter<'kind'> {
  return new Counter({
    name, help, labelNames: ['kind'], registers,
    collect() {
      const s = stats.read();
      this.reset();
      for (const k of s.kinds) this.inc({ kind: k }, pick(s.sent[k]));
    },
  });
}

/**
 * The outbound RPC round-trip histogram, built at scrape time from TcpNetworkStats' per-bucket
 * counts: cumulative buckets with `le` in seconds, `+Inf` as the total, the sum in seconds. Only
 * answered requests are in it (failures are actor_raft_rpc_sent_failures_total). Registered as a
 * custom metric: prom-client's registry needs only name, type, get() and reset().
 */
class RpcLatencyHistogram {
  readonly name = 'actor_raft_rpc_latency_seconds';
  readonly help = 'Round trip of the Raft RPCs this node sent and got an answer to, by kind (from the TCP transport\'s counters)';
  readonly type = 'histogram';
  readonly labelNames = ['kind', 'le'];
  readonly aggregator = 'sum';

  constructor(private readonly stats: TcpNetworkStats) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] } {
    const s = this.stats.read();
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const kind of s.kinds) {
      const { buckets, latencySumMs } = s.sent[kind];
      let cumulative = 0;
      s.latencyBoundsMs.forEach((boundMs, i) => {
        cumulative += buckets[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { kind, le: boundMs / 1000 }, value: cumulative });
      });
      cumulative += buckets[s.latencyBoundsMs.length];
      values.push({ metricName: `${this.name}_bucket`, labels: { kind, le: '+Inf' }, value: cumulative });
      values.push({ metricName: `${this.name}_sum`, labels: { kind }, value: latencySumMs / 1000 });
      values.push({ metricName: `${this.name}_count`, labels: { kind }, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void { /* the counts live in the transport's shared memory; nothing to reset here */ }
}
