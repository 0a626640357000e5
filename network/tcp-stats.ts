/**
 * Counters of the TCP transport in shared memory: the network actor writes them on its thread (the
 * Raft worker under worker placement) and the application reads them from any thread, e.g. for
 * Prometheus, without a message. One writer per buffer; readers may see a sum mid-update, never
 * a torn number (each counter is one aligned float64).
 *
 * @example
 * const stats = TcpNetworkStats.create();
 * const net = tcpNetworkSpec({ ..., stats: stats.buffer });
 * const s = stats.read(); s.sent.append.requests; s.refusedCluster;
 */
import { RPC_KINDS, type RpcKind } from '../actors/raft/codec';

/** Upper bounds (ms) of the outbound RPC latency histogram; one more bucket holds the rest. */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]);

const GLOBALS = [
  'connects', 'connectFailures', 'disconnects', 'rejectedSends',
  'refusedCluster', 'refusedNode', 'refusedHandshake', 'badFrames', 'oversizedFrames',
  'framesIn', 'framesOut', 'bytesIn', 'bytesOut',
] as const;
export type TcpGlobalStat = (typeof GLOBALS)[number];

const BUCKETS = LATENCY_BOUNDS_MS.length + 1;
/** Per kind: requests, failures, latency sum, buckets, received. */
const PER_KIND = 3 + BUCKETS + 1;
const SLOTS = GLOBALS.length + RPC_KINDS.length * PER_KIND;

export interface SentStats {
  /** Requests written to a connection (or refused before, see failures). */
  readonly requests: number;
  /** Requests that got no answer: unreachable peer, closed connection, timeout, or an error answer. */
  readonly failures: number;
  /** Sum of the latencies of answered requests, ms. */
  readonly latencySumMs: number;
  /** Answered requests per latency bucket (not cumulative), length LATENCY_BOUNDS_MS.length + 1. */
  readonly buckets: readonly number[];
}

export type TcpNetworkStatsSnapshot = Record<TcpGlobalStat, number> & {
  readonly kinds: readonly RpcKind[];
  readonly latencyBoundsMs: readonly number[];
  readonly sent: Readonly<Record<RpcKind, SentStats>>;
  /** Inbound requests handed to this node's Raft actor, per kind. */
  readonly received: Readonly<Record<RpcKind, number>>;
};

const kindIndex = new Map<RpcKind, number>(RPC_KINDS.map((k, i) => [k, i]));

export class TcpNetworkStats {
  private readonly v: Float64Array;
  private constructor(readonly buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== SLOTS * 8) {
      throw new TypeError('TcpNetwork stats must be the buffer of TcpNetworkStats.create()');
    }
    this.v = new Float64Array(buffer);
  }
  static create(): TcpNetworkStats { return new TcpNetworkStats(new SharedArrayBuffer(SLOTS * 8)); }
  static over(buffer: SharedArrayBuffer): TcpNetworkStats { return new TcpNetworkStats(buffer); }

  add(name: TcpGlobalStat, n = 1): void { this.v[GLOBALS.indexOf(name)] += n; }

  private base(kind: RpcKind): number { return GLOBALS.length + kindIndex.get(kind)! * PER_KIND; }
  sent(kind: RpcKind): void { this.v[this.base(kind)] += 1; }
  failed(kind: RpcKind): void { this.v[this.base(kind) + 1] += 1; }
  answered(kind: RpcKind, ms: number): void {
    const b = this.base(kind);
    this.v[b + 2] += ms;
    let i = 0;
    while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]) i++;
    this.v[b + 3 + i] += 1;
  }
  received(kind: RpcKind): void { this.v[this.base(kind) + 3 + BUCKETS] += 1; }

  read(): TcpNetworkStatsSnapshot {
    const out: Record<string, unknown> = { kinds: RPC_KINDS, latencyBoundsMs: LATENCY_BOUNDS_MS };
    GLOBALS.forEach((g, i) => { out[g] = this.v[i]; });
    const sent: Record<string, SentStats> = {};
    const received: Record<string, number> = {};
    for (const k of RPC_KINDS) {
      const b = this.base(k);
      sent[k] = { requests: this.v[b], failures: this.v[b + 1], latencySumMs: this.v[b + 2], buckets: Array.from(this.v.subarray(b + 3, b + 3 + BUCKETS)) };
      received[k] = this.v[b + 3 + BUCKETS];
    }
    out.sent = sent;
    out.received = received;
    return out as TcpNetworkStatsSnapshot;
  }
}
