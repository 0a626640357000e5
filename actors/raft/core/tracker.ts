/**
 * The leader's view of its followers (etcd's tracker/): the highest index each is known to hold
 * durably, and from that the commit index (Figure 2, with Figure 8's current-term rule applied by the
 * caller). The leader is counted through its own durable index, never its unflushed tail (seed 002).
 *
 * It also keeps what each follower has acknowledged of the leader's authority in this term, for the
 * extensions that need a quorum's recent word: read-index rounds (which heartbeat round a follower
 * last answered), the lease (when the leader sent the latest request a follower answered) and
 * check-quorum (who answered anything since the last check). The leader counts itself once in each,
 * as a voter of its config, never as the answer of a follower (async-raft's off-by-one).
 */
import { quorumMatch, quorumValue, voteOutcome } from './quorum';
import type { LogIndex, Membership, NodeId } from './types';

/**
 * @example
 * const tr = new ProgressTracker(self, targets);
 * tr.recordMatch(nodeId(2), logIndex(7));
 * tr.quorumIndex(membership, durableIndex); // what a majority holds
 */
export class ProgressTracker {
  private readonly matchIndex = new Map<NodeId, LogIndex>();
  private readonly ackRound = new Map<NodeId, number>();
  private readonly ackSentAtMs = new Map<NodeId, number>();
  /** Peers heard from since the last check-quorum. */
  private active = new Set<NodeId>();

  constructor(private readonly self: NodeId, public targets: NodeId[]) {}

  /** Records that `peer` holds `index` durably; false when that is not news. */
  recordMatch(peer: NodeId, index: LogIndex): boolean {
    if (index <= (this.matchIndex.get(peer) ?? 0)) return false;
    this.matchIndex.set(peer, index);
    return true;
  }

  /** What `peer` is known to hold durably (0 when nothing yet). */
  matchOf(peer: NodeId): LogIndex {
    return this.matchIndex.get(peer) ?? (0 as LogIndex);
  }

  /** The index a quorum of `membership` holds, counting ourselves at `selfDurable`. */
  quorumIndex(membership: Membership, selfDurable: LogIndex): LogIndex {
    return quorumMatch(membership, (id) => (id === this.self ? selfDurable : this.matchOf(id)));
  }

  /**
   * `peer` answered, in our term, a request we sent at `sentAtMs` (our clock) carrying heartbeat
   * round `round`: it accepted us as its leader after that moment.
   */
  recordAck(peer: NodeId, round: number, sentAtMs: number): void {
    if (round > (this.ackRound.get(peer) ?? 0)) this.ackRound.set(peer, round);
    if (sentAtMs > (this.ackSentAtMs.get(peer) ?? -Infinity)) this.ackSentAtMs.set(peer, sentAtMs);
    this.active.add(peer);
  }

  /** Whether a quorum (ourselves included, once) answered a request of round `round` or later. */
  roundConfirmed(membership: Membership, round: number): boolean {
    const granted = new Set<NodeId>([this.self]);
    for (const [peer, r] of this.ackRound) if (r >= round) granted.add(peer);
    return voteOutcome(membership, granted, new Set()) === 'won';
  }

  /**
   * The latest moment a quorum is known to have accepted our leadership: the send time of the
   * request each voter last answered, ourselves at `nowMs`, taken at the quorum's position (the
   * weaker side of a joint config). -Infinity when no quorum has answered anything yet.
   */
  quorumAckSentAtMs(membership: Membership, nowMs: number): number {
    return quorumValue(membership, (id) => (id === this.self ? nowMs : this.ackSentAtMs.get(id) ?? -Infinity)) ?? -Infinity;
  }

  /** Check-quorum: whether a quorum (ourselves included) was heard from since the last call; starts the next period. */
  takeQuorumActive(membership: Membership): boolean {
    const granted = new Set<NodeId>([this.self, ...this.active]);
    this.active = new Set();
    return voteOutcome(membership, granted, new Set()) === 'won';
  }
}
