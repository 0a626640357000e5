/** Startup from durable state, and membership as the log defines it (paper 6; seeds 000, 004). */
import { expect } from 'chai';
import type { Membership } from '../../actors/raft/core/types';
import {
  appendReq, configEntry, follower, i, logOfTerms, makeCore, membership, n, normalEntry, ofType, stepDurably, TEST_CONFIG,
} from './helpers/fixtures';

describe('startup from durable state', () => {
  // Seed 004: "All Raft nodes, when they first come online in a pristine state, will enter into the
  // NonVoter state, which is a completely passive state."
  it('a pristine node starts as a NonVoter with no timer, alone in its membership', () => {
    const core = makeCore({ id: 7 });
    expect(core.status()).to.deep.equal({
      id: 7, role: 'NonVoter', currentTerm: 0, votedFor: null, currentLeader: null, lastLogIndex: 0, lastLogTerm: 0,
      durableIndex: 0, commitIndex: 0, lastApplied: 0, membership: membership(7), membershipIndex: 0, configChange: null,
      snapshotIndex: 0, snapshotTerm: 0, transferTarget: null, leaseUntilMs: null, preVoteRounds: 0, electionsStarted: 0, readIndexRounds: 0, quorumLossStepDowns: 0,
    });
    expect(core.nextDeadlineMs()).to.equal(null);
    expect(core.takeCommands()).to.deep.equal([]);
  });

  it('a member with a log restarts as a Follower with a randomized deadline', () => {
    const core = follower(2, [1, 1, 3], { term: 4, votedFor: 3, nowMs: 1000 });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 4, votedFor: 3, lastLogIndex: 3, lastLogTerm: 3, durableIndex: 3 });
    expect(core.nextDeadlineMs()).to.be.within(1000 + TEST_CONFIG.electionTimeoutMinMs, 1000 + TEST_CONFIG.electionTimeoutMaxMs - 1);
    expect(core.termAt(i(2))).to.equal(1);
    expect(core.termAt(i(4))).to.equal(null);
  });

  it('a node that is not a voter of the latest config restarts as a NonVoter', () => {
    const entries = [configEntry(1, 1, membership(1, 2, 3)), normalEntry(2, 1), configEntry(3, 2, membership(2, 3, 4))];
    const core = makeCore({ id: 1, entries });
    expect(core.status().role).to.equal('NonVoter');
    expect(core.status().membership).to.deep.equal(membership(2, 3, 4));
  });

  // Already-applied entries stay applied; the commit index above them is learned again from a leader.
  it('commitIndex starts at lastApplied, and applied entries are never handed out again', () => {
    const core = makeCore({ id: 1, entries: logOfTerms([1, 1, 1, 1]), lastApplied: 2 });
    expect(core.status()).to.include({ commitIndex: 2, lastApplied: 2 });
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 1, 4, 1, [], 4) });
    expect(ofType(cmds, 'apply').flatMap((a) => a.entries.map((e) => e.index))).to.deep.equal([3, 4]);
  });
});

describe('membership (paper 6)', () => {
  // Seed 000 ("add"): "new node will come online in NonVoter state with pristine disk" / "all nodes
  // will accept AppendEntries RPCs from any node claiming to be leader" / "stays non-voter until a
  // config is replicated which marks it as a member instead of a non-voter."
  it('a pristine NonVoter takes entries from any leader, and becomes a Follower when a config names it a member', () => {
    const core = makeCore({ id: 3 });
    const asNonVoter: Membership = { members: [1, 2].map(n), nonVoters: [n(3)], membersAfterConsensus: null };
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 2, 0, 0, [configEntry(1, 2, asNonVoter), normalEntry(2, 2)], 2) });
    expect(core.status()).to.include({ role: 'NonVoter', lastLogIndex: 2, commitIndex: 2, currentLeader: 1 });
    expect(core.nextDeadlineMs()).to.equal(null);
    // Paper 6: "a server always uses the latest configuration in its log, regardless of whether the
    // entry is committed."
    stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(1, 2, 2, 2, [configEntry(3, 2, membership(1, 2, 3))], 2) });
    expect(core.status()).to.include({ role: 'Follower', commitIndex: 2 });
    expect(core.status().membership).to.deep.equal(membership(1, 2, 3));
    expect(core.nextDeadlineMs()).to.be.a('number');
  });

  // Seed 000: "When a node detects that it is no longer present in the cluster membership, it must
  // transition to NonVoter state".
  it('a follower removed by a config entry becomes a NonVoter', () => {
    const core = follower(3, [1]);
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 1, 1, 1, [configEntry(2, 1, membership(1, 2))]) });
    expect(core.status().role).to.equal('NonVoter');
    expect(core.nextDeadlineMs()).to.equal(null);
  });

  // Paper 6 again: the config in force is the latest in the log, so cutting an uncommitted config
  // entry brings back the one before it.
  it('truncating a config entry rolls the membership back to the previous config', () => {
    const core = follower(3, [1]);
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 1, 1, 1, [configEntry(2, 1, membership(1, 2))]) });
    expect(core.status().role).to.equal('NonVoter');
    stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(2, 2, 1, 1, [normalEntry(2, 2)]) });
    expect(core.status().membership).to.deep.equal(membership(1, 2, 3));
    expect(core.status()).to.include({ role: 'Follower', lastLogIndex: 2, lastLogTerm: 2 });
  });
});
