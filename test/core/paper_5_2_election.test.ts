/** Raft paper section 5.2 (leader election), with seed 002's persistence rules 1 and 2. */
import { expect } from 'chai';
import type { RaftCore } from '../../actors/raft/core/core';
import type { Command } from '../../actors/raft/core/io';
import {
  ackPersistence, appendReq, configEntry, follower, makeCore, n, normalEntry, ofType, stepDurably, t, TEST_CONFIG, timeOut, voteReq,
} from './helpers/fixtures';
import { ScriptedRandom, SeededRandom } from './helpers/random';
import type { Membership } from '../../actors/raft/core/types';

const grant = (term: number, voteGranted = true) => ({ type: 'voteResponse' as const, term: t(term), voteGranted, isCandidateUnknown: false });

function fiveNodeFollower(id = 1): RaftCore {
  return makeCore({ id, entries: [configEntry(1, 1, { members: [1, 2, 3, 4, 5].map(n), nonVoters: [], membersAfterConsensus: null })] });
}

describe('paper 5.2: leader election', () => {
  // "If a follower receives no communication over a period of time called the election timeout, then
  // it assumes there is no viable leader and begins an election to choose a new leader."
  it('a follower starts an election when its election timeout elapses, not before', () => {
    const core = follower(1, [1]);
    const deadline = core.nextDeadlineMs()!;
    core.step({ type: 'tick', nowMs: deadline - 1 });
    expect(core.takeCommands()).to.deep.equal([]);
    expect(core.status().role).to.equal('Follower');
    core.step({ type: 'tick', nowMs: deadline });
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2, votedFor: 1 });
  });

  // "To begin an election, a follower increments its current term and transitions to candidate state.
  // It then votes for itself and issues RequestVote RPCs in parallel to each of the other servers."
  // Seed 002 rule 1: "Before a ProposeVote request is sent out, at least the latest metadata as of the
  // time of message creation must be saved to persistent storage".
  it('a candidate asks for votes only once its own vote is durable', () => {
    const core = follower(1, [1, 1]);
    core.step({ type: 'tick', nowMs: core.nextDeadlineMs()! });
    const first = core.takeCommands();
    expect(first).to.deep.equal([{ type: 'saveHardState', hardState: { currentTerm: 2, votedFor: 1 }, seq: 1 }]);
    core.step({ type: 'hardStatePersisted', seq: 1 });
    const votes = ofType(core.takeCommands(), 'sendVote');
    expect(votes.map((v) => v.to)).to.deep.equal([2, 3]);
    expect(votes[0]!.req).to.deep.equal({ type: 'vote', term: 2, candidateId: 1, lastLogIndex: 2, lastLogTerm: 1 });
  });

  // Seed 002 rule 1 again: the ack of an older hard state (here, a vote we granted earlier) does not
  // make the candidate's own vote durable.
  it('an ack for an earlier hard state does not release the vote requests', () => {
    const core = follower(1, [1]);
    core.step({ type: 'vote', reqId: 1, req: voteReq(2, 2, 1, 1) });
    const grantSave = ofType(core.takeCommands(), 'saveHardState')[0]!;
    core.step({ type: 'tick', nowMs: core.nextDeadlineMs()! });
    const campaignSave = ofType(core.takeCommands(), 'saveHardState')[0]!;
    expect(campaignSave.hardState).to.deep.equal({ currentTerm: 3, votedFor: 1 });
    core.step({ type: 'hardStatePersisted', seq: grantSave.seq });
    expect(ofType(core.takeCommands(), 'sendVote')).to.deep.equal([]);
    core.step({ type: 'hardStatePersisted', seq: campaignSave.seq });
    expect(ofType(core.takeCommands(), 'sendVote').map((v) => v.req.term)).to.deep.equal([3, 3]);
  });

  // "A candidate wins an election if it receives votes from a majority of the servers in the full
  // cluster for the same term." / "Once a candidate wins an election, it becomes leader. It then sends
  // heartbeat messages to all of the other servers to establish its authority".
  it('a candidate that gets votes from a majority becomes leader and starts replicating', () => {
    const core = follower(1, [1]);
    timeOut(core);
    const cmds = stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status()).to.include({ role: 'Leader', currentLeader: 1 });
    expect(core.nextDeadlineMs()).to.equal(null);
    expect(cmds[0]).to.deep.equal({ type: 'startReplication', term: 2, targets: [2, 3], nextIndex: 2, commitIndex: 0, round: 0 });
    // Its first entry is a blank of its own term (paper 8), appended and replicated.
    const blank = { index: 2, term: 2, kind: 'blank' };
    expect(ofType(cmds, 'appendLog')).to.deep.equal([{ type: 'appendLog', entries: [blank], truncateFrom: null }]);
    expect(ofType(cmds, 'replicate')).to.deep.equal([{ type: 'replicate', entries: [blank] }]);
  });

  // "A candidate wins an election if it receives votes from a majority of the servers in the full cluster"
  it('in a five-node cluster two votes are not enough, three are', () => {
    const core = fiveNodeFollower();
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    stepDurably(core, { type: 'voteResponse', from: n(3), resp: grant(2, false) });
    expect(core.status().role).to.equal('Candidate');
    // A repeated vote from the same node does not count twice.
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status().role).to.equal('Candidate');
    stepDurably(core, { type: 'voteResponse', from: n(4), resp: grant(2) });
    expect(core.status().role).to.equal('Leader');
  });

  // Section 6: "Agreement (for elections and entry commitment) requires separate majorities from both
  // the old and new configurations."
  it('in joint consensus a candidate needs a majority of both configurations', () => {
    const joint: Membership = { members: [1, 2, 3].map(n), nonVoters: [], membersAfterConsensus: [3, 4, 5].map(n) };
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, joint)] });
    const cmds = timeOut(core);
    expect(ofType(cmds, 'sendVote').map((v) => v.to)).to.deep.equal([2, 3, 4, 5]);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status().role, 'old majority only').to.equal('Candidate');
    stepDurably(core, { type: 'voteResponse', from: n(4), resp: grant(2) });
    expect(core.status().role, 'one of three new voters').to.equal('Candidate');
    stepDurably(core, { type: 'voteResponse', from: n(5), resp: grant(2) });
    expect(core.status().role).to.equal('Leader');
  });

  // "The third possible outcome is that a candidate neither wins nor loses the election ... When this
  // happens, each candidate will time out and start a new election by incrementing its term and
  // initiating another round of RequestVote RPCs."
  it('after a split vote the candidate times out and starts a new election in the next term', () => {
    const core = follower(1, [1]);
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2, false) });
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2 });
    const cmds = timeOut(core);
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 3, votedFor: 1 });
    expect(ofType(cmds, 'sendVote').map((v) => v.req.term)).to.deep.equal([3, 3]);
    // A late vote from the previous term does not count toward this one.
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status().role).to.equal('Candidate');
  });

  // "election timeouts are chosen randomly from a fixed interval (e.g., 150–300ms)" / "Each candidate
  // restarts its randomized election timeout at the start of an election".
  it('every election draws a fresh timeout from [electionTimeoutMinMs, electionTimeoutMaxMs)', () => {
    const core = follower(1, [1], { random: new SeededRandom(42) });
    const timeouts: number[] = [];
    let now = 0;
    for (let k = 0; k < 200; k++) {
      const deadline = core.nextDeadlineMs()!;
      timeouts.push(deadline - now);
      now = deadline;
      core.step({ type: 'tick', nowMs: now });
      ackPersistence(core, core.takeCommands());
    }
    expect(core.status().currentTerm).to.equal(201);
    for (const ms of timeouts) expect(ms).to.be.within(TEST_CONFIG.electionTimeoutMinMs, TEST_CONFIG.electionTimeoutMaxMs - 1);
    expect(new Set(timeouts).size, 'timeouts vary').to.be.greaterThan(50);
    expect(Math.min(...timeouts)).to.be.below(170);
    expect(Math.max(...timeouts)).to.be.above(280);
  });

  it('the timeout bounds are exact: random 0 gives min, random just below 1 gives max - 1', () => {
    const low = follower(1, [1], { random: new ScriptedRandom([0]) });
    expect(low.nextDeadlineMs()).to.equal(TEST_CONFIG.electionTimeoutMinMs);
    const high = follower(1, [1], { random: new ScriptedRandom([0.999999]) });
    expect(high.nextDeadlineMs()).to.equal(TEST_CONFIG.electionTimeoutMaxMs - 1);
  });

  // "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis"
  it('a node votes for at most one candidate per term', () => {
    const core = follower(1, [1]);
    const replies: Command[] = [];
    replies.push(...stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(2, 2, 1, 1) }));
    replies.push(...stepDurably(core, { type: 'vote', reqId: 2, req: voteReq(3, 2, 1, 1) }));
    // The first candidate asking again (a retry) is told yes again.
    replies.push(...stepDurably(core, { type: 'vote', reqId: 3, req: voteReq(2, 2, 1, 1) }));
    const granted = ofType(replies, 'reply').map((r) => [r.reqId, (r.resp as { voteGranted: boolean }).voteGranted]);
    expect(granted).to.deep.equal([[1, true], [2, false], [3, true]]);
    expect(core.status().votedFor).to.equal(2);
    expect(ofType(replies, 'saveHardState')).to.have.length(1);
  });

  // Seed 002 rule 2: "Before a ProposeVote response is sent out, at least the latest metadata as of the
  // time of message creation must be saved to persistent storage".
  it('a vote is granted only after the hard state recording it is durable', () => {
    const core = follower(1, [1]);
    core.step({ type: 'vote', reqId: 9, req: voteReq(2, 5, 1, 1) });
    const cmds = core.takeCommands();
    expect(cmds).to.deep.equal([{ type: 'saveHardState', hardState: { currentTerm: 5, votedFor: 2 }, seq: 1 }]);
    core.step({ type: 'hardStatePersisted', seq: 1 });
    expect(core.takeCommands()).to.deep.equal([
      { type: 'reply', reqId: 9, resp: { type: 'voteResponse', term: 5, voteGranted: true, isCandidateUnknown: false } },
    ]);
  });

  // Granting a vote counts as hearing from a viable candidate: the voter gives it time to win instead
  // of starting a rival election (the same term, so no term change resets the timer on its own).
  it('granting a vote restarts the election timer', () => {
    const core = follower(1, [1], { term: 2 });
    const before = core.nextDeadlineMs()!;
    core.step({ type: 'tick', nowMs: before - 1 });
    stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(2, 2, 1, 1) });
    expect(core.status().votedFor).to.equal(2);
    expect(core.nextDeadlineMs()).to.be.at.least(before - 1 + TEST_CONFIG.electionTimeoutMinMs);
    core.step({ type: 'tick', nowMs: before });
    expect(core.status().role).to.equal('Follower');
  });

  // "A server remains in follower state as long as it receives valid RPCs from a leader or candidate.
  // Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all followers in
  // order to maintain their authority."
  it('a follower that keeps hearing heartbeats from its leader never starts an election', () => {
    const core = follower(1, [1]);
    for (let now = 0, reqId = 1; now <= 5000; now += TEST_CONFIG.heartbeatIntervalMs, reqId++) {
      core.step({ type: 'tick', nowMs: now });
      stepDurably(core, { type: 'appendEntries', reqId, req: appendReq(2, 1, 1, 1, []) });
    }
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1, currentLeader: 2 });
    // Silence: now the timeout elapses.
    core.step({ type: 'tick', nowMs: 5000 + TEST_CONFIG.electionTimeoutMaxMs });
    expect(core.status().role).to.equal('Candidate');
  });

  // "If the leader's term (included in its RPC) is at least as large as the candidate's current term,
  // then the candidate recognizes the leader as legitimate and returns to follower state."
  it('a candidate steps down on AppendEntries from a leader of its own term', () => {
    const core = follower(1, [1]);
    timeOut(core);
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 3, req: appendReq(2, 2, 1, 1, [normalEntry(2, 2)]) });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2, currentLeader: 2, votedFor: 1, lastLogIndex: 2 });
    expect(ofType(cmds, 'reply')[0]!.resp).to.include({ success: true, matchIndex: 2 });
  });

  // "If the term in the RPC is smaller than the candidate's current term, then the candidate rejects
  // the RPC and continues in candidate state."
  it('a candidate rejects AppendEntries from an older term and keeps campaigning', () => {
    const core = follower(1, [1], { term: 3 });
    timeOut(core);
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 3, req: appendReq(2, 3, 1, 1, []) });
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 4 });
    expect(ofType(cmds, 'reply')[0]!.resp).to.include({ success: false, term: 4 });
  });

  // Seed 000: "Non-voting nodes do not have election timeouts ... and are not solicited for votes."
  // Not solicited: candidates ask only the voters of their own config. A NonVoter that is asked
  // anyway answers on term and log alone, like every server in the paper: the asker's config
  // counts the vote only if it names this node a voter (a node that missed the configs adding it;
  // refusing there left a cluster with no leader, found by the membership integration tests).
  it('a NonVoter with a log never times out, and answers a vote request on term and log alone', () => {
    const m: Membership = { members: [2, 3, 4].map(n), nonVoters: [n(1)], membersAfterConsensus: null };
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, m)] });
    expect(core.status().role).to.equal('NonVoter');
    expect(core.nextDeadlineMs()).to.equal(null);
    core.step({ type: 'tick', nowMs: 1e9 });
    expect(core.status().role).to.equal('NonVoter');
    const stale = stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(2, 2, 0, 0) });
    expect(ofType(stale, 'reply')[0]!.resp, 'a candidate whose log is behind').to.include({ voteGranted: false, term: 2 });
    const cmds = stepDurably(core, { type: 'vote', reqId: 2, req: voteReq(3, 3, 1, 1) });
    expect(ofType(cmds, 'reply')[0]!.resp).to.include({ voteGranted: true, term: 3 });
    expect(core.status()).to.include({ votedFor: 3, role: 'NonVoter' });
    expect(core.nextDeadlineMs(), 'granting gives a NonVoter no election timer').to.equal(null);
  });

  // Seed 002 rule 1 meets 5.1: a leader of a higher term shows up while our self-vote is still on its
  // way to disk; once it lands we are a follower, and asking for votes then would be for a dead term.
  it('a candidate that steps down before its vote is durable never sends vote requests', () => {
    const core = follower(1, [1]);
    core.step({ type: 'tick', nowMs: core.nextDeadlineMs()! });
    const save = ofType(core.takeCommands(), 'saveHardState')[0]!;
    core.step({ type: 'appendEntries', reqId: 1, req: appendReq(3, 7, 1, 1, []) });
    const cmds = ackPersistence(core, [save, ...core.takeCommands()]);
    expect(ofType(cmds, 'sendVote')).to.deep.equal([]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 7 });
  });
});
