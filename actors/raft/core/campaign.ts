/**
 * One election from the candidate's side (paper 5.2): votes are asked for only once our self-vote is
 * durable (seed 002 rule 1), and each voter counts once.
 */
import type { RaftConfig } from './config';
import { InvariantViolation } from './errors';
import type { RandomSource } from './io';
import { voteOutcome, type VoteOutcome } from './quorum';
import type { Membership, NodeId } from './types';

/**
 * A fresh election deadline, uniform in [now + electionTimeoutMinMs, now + electionTimeoutMaxMs):
 * "election timeouts are chosen randomly from a fixed interval" so split votes are rare (paper 5.2).
 * @example electionDeadline(1000, config, random) // e.g. 1217 with the default 150..300 ms
 */
export function electionDeadline(nowMs: number, config: RaftConfig, random: RandomSource): number {
  const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = config;
  const r = random.nextFloat();
  if (!(r >= 0 && r < 1)) throw new InvariantViolation(`RandomSource.nextFloat returned ${r}, outside [0, 1)`);
  return nowMs + min + Math.floor(r * (max - min));
}

/**
 * @example
 * const c = new Campaign(self, seq);
 * c.record(nodeId(2), true);
 * c.outcome(membership); // 'won' in a three-node cluster
 */
export class Campaign {
  votesSent = false;
  private readonly granted = new Set<NodeId>();
  private readonly rejected = new Set<NodeId>();

  /**
   * `seq`: the hard-state save that records our vote for ourselves. `transfer`: started by the
   * leader's TimeoutNow, so voters grant it despite a leader's lease. `selfVote` false: our own
   * vote does not count (a pre-vote asked while we still hold a leader's lease).
   */
  constructor(self: NodeId, readonly seq: number, readonly transfer = false, selfVote = true) {
    if (selfVote) this.granted.add(self);
  }

  record(from: NodeId, granted: boolean): void {
    if (this.granted.has(from) || this.rejected.has(from)) return;
    (granted ? this.granted : this.rejected).add(from);
  }

  outcome(membership: Membership): VoteOutcome {
    return voteOutcome(membership, this.granted, this.rejected);
  }
}
