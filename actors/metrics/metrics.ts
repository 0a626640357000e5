/**
 * Metrics: what a node publishes about itself. The Raft actor sends a RaftMetrics at once on every
 * change of role, leader or membership, and every `metricsIntervalMs` otherwise; the Metrics actor
 * keeps the latest and fans it out to subscribers (an exporter for Prometheus, a test waiting on a
 * condition, the demo's progress line).
 */
import type { Actor } from '../../runtime/actor';
import type { ConfigChangeStatus } from '../raft/core/config-change';
import type { LogIndex, Membership, NodeId, RaftRole, Term } from '../raft/core/types';

export interface RaftMetrics {
  readonly id: NodeId;
  readonly state: RaftRole;
  readonly currentTerm: Term;
  readonly lastLogIndex: LogIndex;
  readonly lastApplied: LogIndex;
  readonly commitIndex: LogIndex;
  readonly currentLeader: NodeId | null;
  /** The config in force: the latest in the log, committed or not (paper 6). */
  readonly membership: Membership;
  /** The index of the config entry `membership` comes from (0 before any); committed once commitIndex reaches it. */
  readonly membershipIndex: LogIndex;
  /** On the leader, the config change under way (phase, target, nodes still catching up); else null. */
  readonly configChange: ConfigChangeStatus | null;
  /** The last index the latest snapshot covers (0: none); the log is compacted behind it. */
  readonly snapshotIndex: LogIndex;
  /** Pre-vote rounds and real elections this node started since it started. */
  readonly preVoteRounds: number;
  readonly electionsStarted: number;
  /** Read-index confirmation rounds started; each confirms a batch of linearizable reads. */
  readonly readIndexRounds: number;
  /** Times this node stepped down as leader because no quorum answered (check-quorum). */
  readonly quorumLossStepDowns: number;
  /** On the leader: until when (its clock, ms) lease reads are served without a round; null without a valid lease. */
  readonly leaseUntilMs: number | null;
  /** On the leader: the node a leadership transfer hands over to, while it runs; else null. */
  readonly transferTarget: NodeId | null;
}

export type MetricsMsg =
  | { readonly type: 'update'; readonly metrics: RaftMetrics }
  /** Answer: the latest RaftMetrics, or null before the first. */
  | { readonly type: 'get' };

export type MetricsListener = (m: RaftMetrics) => void;

/** Keeps the latest metrics; subscribers on the actor's thread are called on every update. */
export class MetricsActor implements Actor<MetricsMsg> {
  private latestValue: RaftMetrics | null = null;
  private readonly listeners = new Set<MetricsListener>();

  get latest(): RaftMetrics | null { return this.latestValue; }

  /** Calls `fn` on every update; returns the unsubscribe function. */
  subscribe(fn: MetricsListener): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  receive(msg: MetricsMsg): unknown {
    switch (msg.type) {
      case 'update':
        this.latestValue = msg.metrics;
        for (const fn of [...this.listeners]) fn(msg.metrics);
        return undefined;
      case 'get':
        return this.latestValue;
      default: {
        const never: never = msg;
        throw new TypeError(`unknown metrics message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }

  stopped(): void { this.listeners.clear(); }
}

export function createMetricsActor(): MetricsActor { return new MetricsActor(); }
export const METRICS_ACTOR_MODULE = __filename;

/**
 * True when two metrics differ in what must be published at once: role, leader, term, membership,
 * whether the membership is committed, and the phase of a config change.
 */
export function isSignificantChange(a: RaftMetrics | null, b: RaftMetrics): boolean {
  return a === null || a.state !== b.state || a.currentLeader !== b.currentLeader || a.currentTerm !== b.currentTerm
    || a.membership !== b.membership || isMembershipCommitted(a) !== isMembershipCommitted(b)
    || a.configChange?.phase !== b.configChange?.phase || a.configChange?.awaiting.length !== b.configChange?.awaiting.length
    || a.transferTarget !== b.transferTarget;
}

/** True once the config in force is committed (or was never in the log: pristine, or InitWithConfig's before its entry). */
export function isMembershipCommitted(m: RaftMetrics): boolean {
  return m.commitIndex >= m.membershipIndex;
}
