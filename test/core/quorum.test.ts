/** quorum.ts alone: what a majority (both majorities when joint) has agreed on. */
import { expect } from 'chai';
import { majorityMatch, quorumMatch, voteOutcome } from '../../actors/raft/core/quorum';
import type { Membership, NodeId } from '../../actors/raft/core/types';
import { membership, n } from './helpers/fixtures';

const matches = (m: Record<number, number>) => (id: NodeId) => m[id] ?? 0;
const ids = (...v: number[]) => v.map(n);

describe('quorum', () => {
  it('majorityMatch is the index held by a majority: the median, rounding toward safety', () => {
    expect(majorityMatch(ids(1), matches({ 1: 4 }))).to.equal(4);
    expect(majorityMatch(ids(1, 2, 3), matches({ 1: 7, 2: 5, 3: 0 }))).to.equal(5);
    // Four voters need three: the third highest.
    expect(majorityMatch(ids(1, 2, 3, 4), matches({ 1: 9, 2: 8, 3: 2, 4: 1 }))).to.equal(2);
    expect(majorityMatch(ids(1, 2, 3, 4, 5), matches({ 1: 9, 2: 8, 3: 7, 4: 0, 5: 0 }))).to.equal(7);
  });

  // Paper 6: "Agreement (for elections and entry commitment) requires separate majorities from both
  // the old and new configurations."
  it('quorumMatch in joint consensus is the smaller of the two majorities', () => {
    const joint: Membership = { members: ids(1, 2, 3), nonVoters: ids(9), membersAfterConsensus: ids(3, 4, 5) };
    const m = matches({ 1: 10, 2: 10, 3: 4, 4: 4, 5: 0, 9: 99 });
    expect(quorumMatch(joint, m)).to.equal(4);
    expect(quorumMatch(membership(1, 2, 3), m)).to.equal(10);
  });

  it('non-voters are never counted', () => {
    const m: Membership = { members: ids(1, 2, 3), nonVoters: ids(4, 5), membersAfterConsensus: null };
    expect(quorumMatch(m, matches({ 1: 3, 4: 3, 5: 3 }))).to.equal(0);
  });

  it('voteOutcome: won with a majority, lost once a majority is out of reach, else pending', () => {
    const m = membership(1, 2, 3, 4, 5);
    expect(voteOutcome(m, new Set(ids(1, 2)), new Set())).to.equal('pending');
    expect(voteOutcome(m, new Set(ids(1, 2, 3)), new Set())).to.equal('won');
    expect(voteOutcome(m, new Set(ids(1)), new Set(ids(2, 3)))).to.equal('pending');
    expect(voteOutcome(m, new Set(ids(1)), new Set(ids(2, 3, 4)))).to.equal('lost');
    // Votes from outside the config do not count.
    expect(voteOutcome(m, new Set(ids(1, 2, 8, 9)), new Set())).to.equal('pending');
  });

  it('voteOutcome in joint consensus needs both configurations', () => {
    const joint: Membership = { members: ids(1, 2, 3), nonVoters: [], membersAfterConsensus: ids(4, 5, 6) };
    expect(voteOutcome(joint, new Set(ids(1, 2)), new Set())).to.equal('pending');
    expect(voteOutcome(joint, new Set(ids(1, 2, 4, 5)), new Set())).to.equal('won');
    expect(voteOutcome(joint, new Set(ids(1, 2, 3)), new Set(ids(4, 5)))).to.equal('lost');
  });
});
