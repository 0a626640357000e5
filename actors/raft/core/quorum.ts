/**
 * What a majority has agreed on (paper 5.2, 5.3 and 6): the index a majority has made durable, and
 * the outcome of a vote. In joint consensus both the old and the new voters must agree, so every
 * answer is the weaker of the two configs' answers.
 */
import type { LogIndex, Membership, NodeId } from './types';

/** An empty voter set constrains nothing: it agrees on everything (one side of a joint config may be empty). */
const UNCONSTRAINED = Number.MAX_SAFE_INTEGER;

/**
 * The largest index that a majority of `voters` has at or above, given each voter's match.
 * @example majorityMatch([1, 2, 3] as NodeId[], (id) => ({ 1: 7, 2: 5, 3: 0 })[id]) // 5
 */
export function majorityMatch(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return UNCONSTRAINED;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  // Sorted high to low, the value at floor(n/2) is held by floor(n/2)+1 voters: a majority.
  return matches[Math.floor(voters.length / 2)]!;
}

/**
 * The index acknowledged by the membership: a majority of `members`, and while joint also a majority
 * of `membersAfterConsensus`.
 * @example quorumMatch({ members: [1, 2, 3], nonVoters: [], membersAfterConsensus: null }, matchOf)
 */
export function quorumMatch(membership: Membership, matchOf: (id: NodeId) => number): LogIndex {
  return (quorumValue(membership, matchOf) ?? 0) as LogIndex;
}

/**
 * The largest value a quorum of `membership` has reached, as `valueOf` gives each voter's (the
 * weaker of the two sides while joint); null when no voter constrains it.
 * @example quorumValue(m, (id) => lastAckSentAtMs(id)) // when a quorum last acknowledged us
 */
export function quorumValue(membership: Membership, valueOf: (id: NodeId) => number): number | null {
  const old = majorityMatch(membership.members, valueOf);
  const next = membership.membersAfterConsensus === null ? UNCONSTRAINED : majorityMatch(membership.membersAfterConsensus, valueOf);
  const agreed = Math.min(old, next);
  return agreed === UNCONSTRAINED ? null : agreed;
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

function singleOutcome(voters: readonly NodeId[], granted: ReadonlySet<NodeId>, rejected: ReadonlySet<NodeId>): VoteOutcome {
  if (voters.length === 0) return 'won';
  const needed = Math.floor(voters.length / 2) + 1;
  let yes = 0;
  let no = 0;
  for (const v of voters) {
    if (granted.has(v)) yes++;
    else if (rejected.has(v)) no++;
  }
  if (yes >= needed) return 'won';
  if (voters.length - no < needed) return 'lost';
  return 'pending';
}

/**
 * Whether an election is decided. Votes from nodes that are not voters are ignored.
 * @example voteOutcome(m, new Set([1, 2]), new Set()) // 'won' for members [1, 2, 3]
 */
export function voteOutcome(membership: Membership, granted: ReadonlySet<NodeId>, rejected: ReadonlySet<NodeId>): VoteOutcome {
  const old = singleOutcome(membership.members, granted, rejected);
  if (membership.membersAfterConsensus === null) return old;
  const next = singleOutcome(membership.membersAfterConsensus, granted, rejected);
  if (old === 'lost' || next === 'lost') return 'lost';
  if (old === 'won' && next === 'won') return 'won';
  return 'pending';
}
