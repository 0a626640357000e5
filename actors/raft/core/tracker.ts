/**
 * The leader's view of its followers (etcd's tracker/): the highest index each is known to hold
 * durably, and from that the commit index (Figure 2, with Figure 8's current-term rule applied by the
 * caller). The leader is counted through its own durable index, never its unflushed tail (seed 002).
 */
import { quorumMatch } from './quorum';
import type { LogIndex, Membership, NodeId } from './types';

/**
 * @example
 * const tr = new ProgressTracker(self, targets);
 * tr.recordMatch(nodeId(2), logIndex(7));
 * tr.quorumIndex(membership, durableIndex); // what a majority holds
 */
export class ProgressTracker {
  private readonly matchIndex = new Map<NodeId, LogIndex>();

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
}
