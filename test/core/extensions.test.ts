/**
 * The Raft extensions on one core: pre-vote (thesis 9.6), check-quorum and the leader lease
 * (thesis 6.2, 4.2.3), read-index and lease reads (thesis 6.4), leader transfer (thesis 3.10) and
 * electNow. Each test names its config: EXTENSIONS_CONFIG (the library's defaults, both extensions
 * on) or a buildConfig that turns one of them off to show the difference. Election deadlines are
 * pinned with ScriptedRandom where a test depends on the clock.
 */
import { expect } from 'chai';
import { buildConfig, type RaftConfig } from '../../actors/raft/core/config';
import type { RaftCore } from '../../actors/raft/core/core';
import {
  ForwardToLeaderError, LeaderTransferError, LeaderTransferInProgressError, NodeNotLeaderError, NotAllowedError,
} from '../../actors/raft/core/errors';
import type { Command, Input } from '../../actors/raft/core/io';
import type { Membership, VoteRequest } from '../../actors/raft/core/types';
import {
  appendReq, configEntry, EXTENSIONS_CONFIG, follower, i, makeCore, membership, n, ofType, stepDurably, t, timeOut, voteReq,
} from './helpers/fixtures';
import { ScriptedRandom } from './helpers/random';

// ---- configs ----

const TIMING = { electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 50 } as const;
/** Pre-vote alone. */
const PRE_VOTE_ONLY: RaftConfig = buildConfig({ ...TIMING, preVote: true, checkQuorum: false });
/** Check-quorum alone. */
const CHECK_QUORUM_ONLY: RaftConfig = buildConfig({ ...TIMING, preVote: false, checkQuorum: true });
/** Neither: the paper's algorithm. */
const PAPER_ONLY: RaftConfig = buildConfig({ ...TIMING, preVote: false, checkQuorum: false });
/**
 * Both extensions on, with a wide timeout range: a voter under test, built with ScriptedRandom([0.99]),
 * has its own election deadline ~990 ms away and never starts an election of its own in the window a
 * test looks at.
 */
const VOTER_CONFIG: RaftConfig = buildConfig({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 1150, heartbeatIntervalMs: 50, preVote: true, checkQuorum: true });

// ---- inputs ----

const preVoteAnswer = (from: number, term: number, granted: boolean, requestTerm: number): Input => ({
  type: 'voteResponse', from: n(from), requestTerm: t(requestTerm),
  resp: { type: 'voteResponse', term: t(term), voteGranted: granted, isCandidateUnknown: false, preVote: true },
});
const voteAnswer = (from: number, term: number, granted = true): Input => ({
  type: 'voteResponse', from: n(from), requestTerm: t(term),
  resp: { type: 'voteResponse', term: t(term), voteGranted: granted, isCandidateUnknown: false },
});
/** A replication stream's report: `peer` answered, in `leaderTerm`, a request of heartbeat round `round` sent at `sentAtMs`. */
const ack = (peer: number, leaderTerm: number, matchIndex: number, round: number, sentAtMs: number): Input => ({
  type: 'replicated', peer: n(peer), leaderTerm: t(leaderTerm), matchIndex: i(matchIndex), round, sentAtMs,
});
const preVoteReq = (candidateId: number, term: number, lastLogIndex: number, lastLogTerm: number): VoteRequest => ({ ...voteReq(candidateId, term, lastLogIndex, lastLogTerm), preVote: true });
const tick = (nowMs: number): Input => ({ type: 'tick', nowMs });
const heartbeat = (leaderId: number, term: number, prevLogIndex: number, prevLogTerm: number, leaderCommit = 0): Input => ({
  type: 'appendEntries', reqId: 900, req: appendReq(leaderId, term, prevLogIndex, prevLogTerm, [], leaderCommit),
});

const replies = (cmds: readonly Command[]) => ofType(cmds, 'reply').map((r) => r.resp);

// ---- drivers ----

/**
 * Elects `core` (a follower with a log) by its election timer: through a pre-vote round when its
 * config has one, then a real vote; `voters` grant both. Returns every command on the way.
 */
function elect(core: RaftCore, voters: readonly number[] = [2]): Command[] {
  const cmds = timeOut(core);
  const before = core.status().currentTerm;
  for (const v of voters) if (core.status().role === 'Follower') cmds.push(...stepDurably(core, preVoteAnswer(v, before, true, before + 1)));
  const term = core.status().currentTerm;
  for (const v of voters) if (core.status().role === 'Candidate') cmds.push(...stepDurably(core, voteAnswer(v, term)));
  expect(core.status().role, 'elect: the node did not win').to.equal('Leader');
  return cmds;
}

/**
 * Node 1 of {1,2,3} with log [config@1], elected leader of term 2 at time 150 (deadlines pinned at
 * min): its blank is at index 2, uncommitted. Check-quorum (when on) looks first at 450.
 */
function leader3(config: RaftConfig = EXTENSIONS_CONFIG): RaftCore {
  const core = follower(1, [1], { config, random: new ScriptedRandom([0]) });
  elect(core);
  expect(core.status()).to.include({ currentTerm: 2, lastLogIndex: 2, commitIndex: 0 });
  return core;
}

const FIVE = membership(1, 2, 3, 4, 5);

/** Node 1 of five voters, elected leader of term 2 at 150 with votes (and pre-votes) from 2 and 3. */
function leader5(config: RaftConfig = EXTENSIONS_CONFIG): RaftCore {
  const core = makeCore({ id: 1, entries: [configEntry(1, 1, FIVE)], config, random: new ScriptedRandom([0]) });
  elect(core, [2, 3]);
  return core;
}

/** `peers` acknowledge the leader's blank (index 2, term 2), sent at `sentAtMs`; the state machine applies it. */
function commitBlank(core: RaftCore, peers: readonly number[] = [2], sentAtMs = 150, apply = true): Command[] {
  const cmds: Command[] = [];
  for (const p of peers) cmds.push(...stepDurably(core, ack(p, 2, 2, 0, sentAtMs)));
  expect(core.status().commitIndex).to.equal(2);
  if (apply) cmds.push(...stepDurably(core, { type: 'applied', index: i(2) }));
  return cmds;
}

/** Calls `op` on the core and returns what it emitted (persistence acknowledged). */
function run(core: RaftCore, op: (c: RaftCore) => void): Command[] {
  op(core);
  return stepDurably(core);
}

function expectThrows<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    return err as E;
  }
  throw new Error(`expected ${type.name} to be thrown`);
}

/** A voter (node 2 of {1,2,3}) with log terms [1, 1], whose start-up lease has run out: now is 200. */
function voterAt200(config: RaftConfig = VOTER_CONFIG, extra: { term?: number; votedFor?: number | null } = {}): RaftCore {
  const core = follower(2, [1, 1], { config, random: new ScriptedRandom([0.99]), ...extra });
  stepDurably(core, tick(200));
  expect(core.status().role).to.equal('Follower');
  return core;
}

describe('extensions: pre-vote (thesis 9.6)', () => {
  it('a follower whose election timer fires stays a Follower in its term, keeps its vote, and asks for pre-votes for term + 1', () => {
    const core = follower(1, [1, 1], { config: EXTENSIONS_CONFIG, term: 3, votedFor: 2 });
    const cmds = timeOut(core);
    expect(ofType(cmds, 'saveHardState'), 'a pre-vote round changes nothing durable').to.deep.equal([]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 3, votedFor: 2, currentLeader: null });
    const votes = ofType(cmds, 'sendVote');
    expect(votes.map((v) => v.to)).to.deep.equal([2, 3]);
    for (const v of votes) expect(v.req).to.deep.equal({ type: 'vote', term: 4, candidateId: 1, lastLogIndex: 2, lastLogTerm: 1, preVote: true });
    expect(core.nextDeadlineMs(), 'a fresh deadline for the next round').to.be.greaterThan(0);
  });

  it('a quorum of granted pre-votes starts a real campaign in term + 1, whose vote requests are not pre-votes', () => {
    const core = follower(1, [1, 1], { config: EXTENSIONS_CONFIG, term: 3, votedFor: 2 });
    timeOut(core);
    core.step(preVoteAnswer(2, 3, true, 4));
    const first = core.takeCommands();
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 4, votedFor: 1 });
    expect(first).to.deep.equal([{ type: 'saveHardState', hardState: { currentTerm: 4, votedFor: 1 }, seq: 1 }]);
    core.step({ type: 'hardStatePersisted', seq: 1 });
    const votes = ofType(core.takeCommands(), 'sendVote');
    expect(votes.map((v) => v.to)).to.deep.equal([2, 3]);
    for (const v of votes) expect(v.req).to.deep.equal({ type: 'vote', term: 4, candidateId: 1, lastLogIndex: 2, lastLogTerm: 1 });
  });

  it('five voters: one granted pre-vote (even repeated) is not enough, two are', () => {
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, FIVE)], config: EXTENSIONS_CONFIG });
    timeOut(core);
    stepDurably(core, preVoteAnswer(2, 1, true, 2));
    stepDurably(core, preVoteAnswer(2, 1, true, 2));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1 });
    stepDurably(core, preVoteAnswer(3, 1, true, 2));
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2, votedFor: 1 });
  });

  it('pre-vote refusals from a quorum end the round: the node stays a Follower in its term, late grants start nothing, the next timeout asks again', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    timeOut(core);
    stepDurably(core, preVoteAnswer(2, 1, false, 2));
    stepDurably(core, preVoteAnswer(3, 1, false, 2));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1 });
    // The round is lost: a grant arriving now (a duplicate, or a change of mind) does not revive it.
    const late = stepDurably(core, preVoteAnswer(2, 1, true, 2));
    expect(late).to.deep.equal([]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1, votedFor: null });
    const again = ofType(timeOut(core), 'sendVote');
    expect(again.map((v) => [v.to, v.req.term, v.req.preVote])).to.deep.equal([[2, 2, true], [3, 2, true]]);
  });

  it('a pre-vote refusal carrying a higher term makes the pre-candidate adopt that term, with no vote', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG, votedFor: 1 });
    timeOut(core);
    const cmds = stepDurably(core, preVoteAnswer(2, 5, false, 2));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 5, votedFor: null });
    expect(ofType(cmds, 'saveHardState').map((s) => s.hardState)).to.deep.equal([{ currentTerm: 5, votedFor: null }]);
    expect(ofType(cmds, 'sendVote')).to.deep.equal([]);
  });

  it('an answer to an earlier pre-vote round (its request term is not ours + 1) is ignored', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    timeOut(core); // asks for term 2
    stepDurably(core, preVoteAnswer(3, 2, false, 2)); // node 3 is in term 2: adopt it
    expect(core.status().currentTerm).to.equal(2);
    timeOut(core); // asks for term 3
    stepDurably(core, preVoteAnswer(2, 1, true, 2)); // node 2's late grant of the term-2 round
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2 });
    stepDurably(core, preVoteAnswer(2, 2, true, 3));
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 3 });
  });

  it('AppendEntries from a leader of the term ends a pre-vote round: later grants start no campaign', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    timeOut(core);
    stepDurably(core, heartbeat(3, 1, 1, 1));
    stepDurably(core, preVoteAnswer(2, 1, true, 2));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1, currentLeader: 3 });
  });

  it('a candidate whose election times out goes back to a pre-vote round, keeping its term', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    timeOut(core);
    stepDurably(core, preVoteAnswer(2, 1, true, 2));
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2 });
    const cmds = timeOut(core);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2, votedFor: 1 });
    expect(ofType(cmds, 'sendVote').map((v) => [v.req.term, v.req.preVote])).to.deep.equal([[3, true], [3, true]]);
    expect(ofType(cmds, 'saveHardState')).to.deep.equal([]);
  });

  it('a single-voter node wins its pre-vote alone and campaigns at once', () => {
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, membership(1))], config: EXTENSIONS_CONFIG });
    const cmds = timeOut(core);
    expect(ofType(cmds, 'sendVote')).to.deep.equal([]);
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 2 });
  });

  it('a pre-vote answer saying the candidate is unknown sends a node with a log to NonVoter, as a real vote answer does', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    timeOut(core);
    const cmds = stepDurably(core, {
      type: 'voteResponse', from: n(2), requestTerm: t(2),
      resp: { type: 'voteResponse', term: t(1), voteGranted: false, isCandidateUnknown: true, preVote: true },
    });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 1 });
    expect(ofType(cmds, 'leftCluster')).to.have.length(1);
  });

  it('a voter grants a pre-vote for a higher term and an up-to-date log, answering with its own term and changing neither term, vote nor timer', () => {
    const core = voterAt200(VOTER_CONFIG, { term: 1, votedFor: 3 });
    const deadline = core.nextDeadlineMs();
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(1, 2, 2, 1) });
    expect(cmds).to.deep.equal([{ type: 'reply', reqId: 7, resp: { type: 'voteResponse', term: 1, voteGranted: true, isCandidateUnknown: false, preVote: true } }]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1, votedFor: 3 });
    expect(core.nextDeadlineMs()).to.equal(deadline);
  });

  it('a voter refuses a pre-vote whose term is not above its own', () => {
    const core = voterAt200(VOTER_CONFIG, { term: 2 });
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(1, 2, 2, 1) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 2, voteGranted: false, isCandidateUnknown: false, preVote: true }]);
    expect(core.status()).to.include({ currentTerm: 2, votedFor: null });
  });

  it('a voter refuses a pre-vote from a candidate whose log is behind its own', () => {
    const core = voterAt200();
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(1, 2, 1, 1) }); // voter holds 2 entries of term 1
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 1, voteGranted: false, isCandidateUnknown: false, preVote: true }]);
    expect(core.status().currentTerm).to.equal(1);
  });

  it('a pristine node refuses pre-votes, and its term stays 0', () => {
    const core = makeCore({ id: 2, config: EXTENSIONS_CONFIG });
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(1, 5, 3, 4) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 0, voteGranted: false, isCandidateUnknown: false, preVote: true }]);
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 0 });
  });

  it('with check-quorum, a voter that heard its leader within electionTimeoutMinMs refuses pre-votes; from then on it grants', () => {
    const core = voterAt200();
    stepDurably(core, heartbeat(3, 1, 2, 1)); // at 200
    stepDurably(core, tick(349));
    const refused = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(1, 2, 2, 1) });
    expect(replies(refused)).to.deep.equal([{ type: 'voteResponse', term: 1, voteGranted: false, isCandidateUnknown: false, preVote: true }]);
    stepDurably(core, tick(350));
    const granted = stepDurably(core, { type: 'vote', reqId: 8, req: preVoteReq(1, 2, 2, 1) });
    expect(replies(granted)).to.deep.equal([{ type: 'voteResponse', term: 1, voteGranted: true, isCandidateUnknown: false, preVote: true }]);
    expect(core.status()).to.include({ currentTerm: 1, currentLeader: 3 });
  });

  it('without check-quorum, a voter that just heard its leader still grants a pre-vote (pre-vote alone checks term and log)', () => {
    const core = voterAt200(PRE_VOTE_ONLY);
    stepDurably(core, heartbeat(3, 1, 2, 1));
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(1, 2, 2, 1) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 1, voteGranted: true, isCandidateUnknown: false, preVote: true }]);
  });

  it('a leader (with check-quorum) refuses pre-votes', () => {
    const core = leader3();
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: preVoteReq(3, 3, 2, 2) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 2, voteGranted: false, isCandidateUnknown: false, preVote: true }]);
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 2 });
  });
});

describe('extensions: check-quorum (thesis 6.2)', () => {
  it('a leader that hears from no follower for electionTimeoutMaxMs steps down to Follower in the same term', () => {
    const core = leader3(); // leader at 150
    expect(core.nextDeadlineMs()).to.equal(450);
    expect(stepDurably(core, tick(449))).to.deep.equal([]);
    expect(core.status().role).to.equal('Leader');
    const cmds = stepDurably(core, tick(450));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2, currentLeader: null, votedFor: 1 });
    expect(ofType(cmds, 'stopReplication')).to.have.length(1);
    expect(ofType(cmds, 'saveHardState'), 'the term does not move').to.deep.equal([]);
    expect(core.nextDeadlineMs(), 'an election timer again').to.equal(600);
  });

  it('one follower answering in the period keeps a three-voter leader; the check repeats every electionTimeoutMaxMs, counting only answers since the last', () => {
    const core = leader3();
    stepDurably(core, tick(300));
    stepDurably(core, ack(2, 2, 0, 0, 250)); // a refusal in our term counts as an answer too
    stepDurably(core, tick(450));
    expect(core.status().role).to.equal('Leader');
    expect(core.nextDeadlineMs()).to.equal(750);
    stepDurably(core, tick(749));
    expect(core.status().role).to.equal('Leader');
    stepDurably(core, tick(750));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2 });
  });

  it('five voters: one follower answering is not enough, two are', () => {
    const one = leader5();
    stepDurably(one, ack(2, 2, 2, 0, 150));
    stepDurably(one, ack(2, 2, 2, 0, 200));
    stepDurably(one, tick(450));
    expect(one.status().role).to.equal('Follower');

    const two = leader5();
    stepDurably(two, ack(2, 2, 2, 0, 150));
    stepDurably(two, ack(3, 2, 2, 0, 150));
    stepDurably(two, tick(450));
    expect(two.status().role).to.equal('Leader');
  });

  it('without check-quorum a leader never steps down on its own', () => {
    const core = leader3(PRE_VOTE_ONLY);
    expect(core.nextDeadlineMs()).to.equal(null);
    stepDurably(core, tick(100_000));
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 2 });
  });

  it('a leader deposed by check-quorum holds no lease: it grants the next up-to-date candidate at once', () => {
    const core = leader3();
    stepDurably(core, tick(450));
    expect(core.status().role).to.equal('Follower');
    const cmds = stepDurably(core, { type: 'vote', reqId: 3, req: voteReq(2, 3, 2, 2) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 3, voteGranted: true, isCandidateUnknown: false }]);
    expect(core.status()).to.include({ currentTerm: 3, votedFor: 2 });
  });
});

describe('extensions: the leader lease on voters (check-quorum)', () => {
  it('a follower that heard its leader within electionTimeoutMinMs refuses a vote without adopting its term; from then on it grants', () => {
    const core = voterAt200();
    stepDurably(core, heartbeat(3, 1, 2, 1)); // at 200
    stepDurably(core, tick(349));
    const refused = stepDurably(core, { type: 'vote', reqId: 7, req: voteReq(1, 5, 2, 1) });
    expect(refused).to.deep.equal([{ type: 'reply', reqId: 7, resp: { type: 'voteResponse', term: 1, voteGranted: false, isCandidateUnknown: false } }]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1, votedFor: null, currentLeader: 3 });
    stepDurably(core, tick(350));
    const granted = stepDurably(core, { type: 'vote', reqId: 8, req: voteReq(1, 5, 2, 1) });
    expect(ofType(granted, 'saveHardState').map((s) => s.hardState)).to.deep.equal([{ currentTerm: 5, votedFor: 1 }]);
    expect(replies(granted)).to.deep.equal([{ type: 'voteResponse', term: 5, voteGranted: true, isCandidateUnknown: false }]);
  });

  it('a leader refuses a vote request of a higher term and stays leader in its term', () => {
    const core = leader3();
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: voteReq(3, 9, 2, 2) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 2, voteGranted: false, isCandidateUnknown: false }]);
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 2 });
    expect(ofType(cmds, 'stopReplication')).to.deep.equal([]);
  });

  it('a vote request marked transfer overrides the lease: granted, and its term adopted', () => {
    const core = voterAt200();
    stepDurably(core, heartbeat(3, 1, 2, 1));
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: { ...voteReq(1, 2, 2, 1), transfer: true } });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 2, voteGranted: true, isCandidateUnknown: false }]);
    expect(core.status()).to.include({ currentTerm: 2, votedFor: 1, currentLeader: null });
  });

  it('a restarted node with a log counts as having heard a leader when it started', () => {
    const core = follower(2, [1, 1], { config: VOTER_CONFIG, random: new ScriptedRandom([0.99]), nowMs: 1000 });
    stepDurably(core, tick(1149));
    expect(replies(stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(1, 2, 2, 1) }))[0]).to.include({ voteGranted: false, term: 1 });
    expect(replies(stepDurably(core, { type: 'vote', reqId: 2, req: preVoteReq(1, 2, 2, 1) }))[0]).to.include({ voteGranted: false, term: 1 });
    expect(core.status().currentTerm).to.equal(1);
    stepDurably(core, tick(1150));
    expect(replies(stepDurably(core, { type: 'vote', reqId: 3, req: preVoteReq(1, 2, 2, 1) }))[0]).to.include({ voteGranted: true, term: 1 });
    expect(replies(stepDurably(core, { type: 'vote', reqId: 4, req: voteReq(1, 2, 2, 1) }))[0]).to.include({ voteGranted: true, term: 2 });
  });

  it('a node that stops leading keeps no lease, even within electionTimeoutMinMs of the leader it heard before', () => {
    const core = follower(3, [1, 2], { config: VOTER_CONFIG, random: new ScriptedRandom([0.99]) });
    stepDurably(core, tick(200));
    stepDurably(core, heartbeat(1, 2, 2, 2)); // node 1 leads term 2; heard at 200
    stepDurably(core, { type: 'timeoutNow', reqId: 1, req: { type: 'timeoutNow', term: t(2), leaderId: n(1) } });
    stepDurably(core, voteAnswer(2, 3));
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 3, lastLogIndex: 3 });
    stepDurably(core, { type: 'higherTerm', term: t(4) });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 4 });
    const cmds = stepDurably(core, { type: 'vote', reqId: 2, req: voteReq(2, 5, 3, 3) }); // still at 200
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 5, voteGranted: true, isCandidateUnknown: false }]);
  });

  it('without check-quorum a follower that just heard its leader grants a higher-term vote (the paper\'s rule)', () => {
    const core = voterAt200(PAPER_ONLY);
    stepDurably(core, heartbeat(3, 1, 2, 1));
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: voteReq(1, 5, 2, 1) });
    expect(replies(cmds)).to.deep.equal([{ type: 'voteResponse', term: 5, voteGranted: true, isCandidateUnknown: false }]);
  });
});

describe('extensions: read-index (thesis 6.4)', () => {
  it('off the leader, read throws ForwardToLeaderError naming the leader it knows', () => {
    const core = voterAt200();
    stepDurably(core, heartbeat(3, 1, 2, 1));
    expect(expectThrows(() => core.read(1, 'index'), ForwardToLeaderError).leaderId).to.equal(3);
    expect(expectThrows(() => core.read(2, 'lease'), ForwardToLeaderError).leaderId).to.equal(3);
  });

  it('a new leader holds reads until an entry of its term commits, then starts one round for all of them', () => {
    const core = leader3();
    const early = run(core, (c) => { c.read(1, 'index'); c.read(2, 'index'); });
    expect(early).to.deep.equal([]);
    const onCommit = commitBlank(core, [2], 150, false);
    expect(ofType(onCommit, 'heartbeatRound')).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    expect(ofType(onCommit, 'readsReady'), 'the answer that committed was sent before the round').to.deep.equal([]);
    stepDurably(core, { type: 'applied', index: i(2) });
    const confirmed = stepDurably(core, ack(3, 2, 2, 1, 160));
    expect(ofType(confirmed, 'readsReady')).to.deep.equal([{ type: 'readsReady', ids: [1, 2], readIndex: 2 }]);
  });

  it('three voters: one follower answering the round confirms it', () => {
    const core = leader3();
    commitBlank(core);
    const start = run(core, (c) => c.read(7, 'index'));
    expect(start).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    const cmds = stepDurably(core, ack(2, 2, 2, 1, 160));
    expect(cmds).to.deep.equal([{ type: 'readsReady', ids: [7], readIndex: 2 }]);
  });

  it('an answer to an earlier round does not confirm the current one', () => {
    const core = leader3();
    commitBlank(core);
    run(core, (c) => c.read(7, 'index'));
    expect(ofType(stepDurably(core, ack(2, 2, 2, 0, 155)), 'readsReady')).to.deep.equal([]);
    expect(ofType(stepDurably(core, ack(3, 2, 2, 0, 155)), 'readsReady')).to.deep.equal([]);
    expect(ofType(stepDurably(core, ack(3, 2, 2, 1, 160)), 'readsReady')).to.deep.equal([{ type: 'readsReady', ids: [7], readIndex: 2 }]);
  });

  it('five voters: one follower answer is not enough (the leader counts itself once), two are', () => {
    const core = leader5();
    commitBlank(core, [2, 3]);
    run(core, (c) => c.read(1, 'index'));
    expect(stepDurably(core, ack(2, 2, 2, 1, 160))).to.deep.equal([]);
    expect(stepDurably(core, ack(2, 2, 2, 1, 170)), 'the same follower twice is still one').to.deep.equal([]);
    expect(stepDurably(core, ack(4, 2, 2, 1, 170))).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
  });

  it('a confirmed read waits for the state machine to apply its read index', () => {
    const core = leader3();
    commitBlank(core, [2], 150, false);
    run(core, (c) => c.read(1, 'index'));
    expect(ofType(stepDurably(core, ack(2, 2, 2, 1, 160)), 'readsReady')).to.deep.equal([]);
    expect(stepDurably(core, { type: 'applied', index: i(1) })).to.deep.equal([]);
    expect(stepDurably(core, { type: 'applied', index: i(2) })).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
  });

  it('reads arriving during a round are batched into the next, which starts when the first is confirmed, at the commit index of that moment', () => {
    const core = leader3();
    commitBlank(core);
    expect(run(core, (c) => c.read(1, 'index'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    run(core, (c) => c.propose([Uint8Array.of(9)])); // index 3
    stepDurably(core, ack(3, 2, 3, 0, 150)); // commits 3, confirms nothing
    stepDurably(core, { type: 'applied', index: i(3) });
    const meanwhile = run(core, (c) => { c.read(2, 'index'); c.read(3, 'index'); });
    expect(ofType(meanwhile, 'heartbeatRound'), 'one round in flight at a time').to.deep.equal([]);
    const first = stepDurably(core, ack(2, 2, 2, 1, 160));
    expect(ofType(first, 'readsReady')).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
    expect(ofType(first, 'heartbeatRound')).to.deep.equal([{ type: 'heartbeatRound', round: 2 }]);
    expect(ofType(stepDurably(core, ack(2, 2, 3, 1, 165)), 'readsReady'), 'round 1 answers do not confirm round 2').to.deep.equal([]);
    const second = stepDurably(core, ack(2, 2, 3, 2, 170));
    expect(ofType(second, 'readsReady')).to.deep.equal([{ type: 'readsReady', ids: [2, 3], readIndex: 3 }]);
    expect(ofType(second, 'heartbeatRound'), 'nothing queued: no round').to.deep.equal([]);
  });

  it('losing leadership fails the reads not yet confirmed and keeps those confirmed, which are served once applied', () => {
    const core = leader3();
    commitBlank(core, [2], 150, false);
    run(core, (c) => c.read(1, 'index'));
    stepDurably(core, ack(2, 2, 2, 1, 160)); // read 1 confirmed, waiting for apply
    run(core, (c) => { c.read(2, 'index'); c.read(3, 'index'); }); // 2 in round 2, 3 queued
    const cmds = stepDurably(core, { type: 'higherTerm', term: t(3) });
    const failed = ofType(cmds, 'readsFailed');
    expect(failed.map((f) => f.ids)).to.deep.equal([[2, 3]]);
    expect(failed[0]!.error).to.be.instanceOf(ForwardToLeaderError);
    expect(core.status().role).to.equal('Follower');
    expect(stepDurably(core, { type: 'applied', index: i(2) })).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
  });

  it('reads waiting for the leader\'s first commit fail when check-quorum deposes it', () => {
    const core = leader3();
    run(core, (c) => c.read(5, 'index'));
    const cmds = stepDurably(core, tick(450));
    expect(core.status().role).to.equal('Follower');
    expect(ofType(cmds, 'readsFailed').map((f) => f.ids)).to.deep.equal([[5]]);
  });

  it('a single-voter leader confirms a read with no peer', () => {
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, membership(1))], config: EXTENSIONS_CONFIG });
    timeOut(core);
    expect(core.status()).to.include({ role: 'Leader', commitIndex: 2 });
    stepDurably(core, { type: 'applied', index: i(2) });
    const cmds = run(core, (c) => c.read(4, 'index'));
    expect(cmds).to.deep.equal([{ type: 'heartbeatRound', round: 1 }, { type: 'readsReady', ids: [4], readIndex: 2 }]);
  });

  it('in a joint config a round needs a majority of the old voters and of the new ones', () => {
    const core = leader3();
    commitBlank(core);
    run(core, (c) => c.proposeConfigChange({ add: [n(4), n(5)], remove: [n(2), n(3)] }));
    stepDurably(core, ack(4, 2, 2, 0, 170));
    stepDurably(core, ack(5, 2, 2, 0, 170)); // both at line rate: the joint config is appended (index 3)
    const joint: Membership = { members: [n(1), n(2), n(3)], nonVoters: [], membersAfterConsensus: [n(1), n(4), n(5)] };
    expect(core.status().membership).to.deep.equal(joint);
    expect(run(core, (c) => c.read(9, 'index'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    expect(stepDurably(core, ack(2, 2, 2, 1, 180))).to.deep.equal([]);
    expect(stepDurably(core, ack(3, 2, 2, 1, 180)), 'all of the old voters, but only the leader of the new').to.deep.equal([]);
    expect(stepDurably(core, ack(4, 2, 2, 1, 180))).to.deep.equal([{ type: 'readsReady', ids: [9], readIndex: 2 }]);
    expect(core.status().membership, 'the joint config is still uncommitted').to.deep.equal(joint);
  });

  it('a leader outside its own latest config does not count itself in a round', () => {
    // Node 1 restarts with a joint config {1,2,3} -> {2,3,4} in its log, wins, commits it, and
    // appends the final {2,3,4}, which leaves it out: it leads until that config commits.
    const jointCfg: Membership = { members: [n(1), n(2), n(3)], nonVoters: [], membersAfterConsensus: [n(2), n(3), n(4)] };
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, membership(1, 2, 3)), configEntry(2, 1, jointCfg)], config: EXTENSIONS_CONFIG, random: new ScriptedRandom([0]) });
    elect(core, [2, 3]);
    stepDurably(core, ack(2, 2, 3, 0, 150));
    stepDurably(core, ack(3, 2, 3, 0, 150));
    expect(core.status()).to.include({ role: 'Leader', commitIndex: 3, lastLogIndex: 4 });
    expect(core.status().membership).to.deep.equal(membership(2, 3, 4));
    stepDurably(core, { type: 'applied', index: i(3) });
    expect(run(core, (c) => c.read(1, 'index'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    expect(stepDurably(core, ack(2, 2, 3, 1, 160)), 'in {1,2,3} this would be a quorum; in {2,3,4} it is one of three').to.deep.equal([]);
    expect(stepDurably(core, ack(3, 2, 3, 1, 160))).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 3 }]);
  });
});

describe('extensions: lease reads', () => {
  it('while the lease holds a lease read is ready at once, with no round', () => {
    const core = leader3();
    commitBlank(core, [2], 150);
    expect(core.status().leaseUntilMs).to.equal(250); // 150 + electionTimeoutMinMs 150 - margin 50
    expect(run(core, (c) => c.read(1, 'lease'))).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
  });

  it('the lease ends electionTimeoutMinMs - leaseClockDriftMarginMs after the send time of the answer that made a quorum; a lease read then falls back to a round', () => {
    const core = leader3();
    commitBlank(core, [2], 150);
    stepDurably(core, tick(249));
    expect(core.status().leaseUntilMs).to.equal(250);
    expect(run(core, (c) => c.read(1, 'lease'))).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
    stepDurably(core, tick(250));
    expect(core.status().leaseUntilMs).to.equal(null);
    expect(run(core, (c) => c.read(2, 'lease'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    const cmds = stepDurably(core, ack(3, 2, 2, 1, 250));
    expect(ofType(cmds, 'readsReady')).to.deep.equal([{ type: 'readsReady', ids: [2], readIndex: 2 }]);
    expect(core.status().leaseUntilMs, 'the round\'s answer renews the lease').to.equal(350);
  });

  it('five voters: the lease runs from the quorum-th latest send time, the leader itself counting as now', () => {
    const core = leader5();
    commitBlank(core, [2, 3], 150);
    stepDurably(core, tick(210));
    stepDurably(core, ack(2, 2, 2, 0, 200));
    stepDurably(core, ack(3, 2, 2, 0, 180));
    stepDurably(core, ack(4, 2, 2, 0, 160));
    // Send times: leader 210 (now), 200, 180, 160, none: the third latest is 180.
    expect(core.status().leaseUntilMs).to.equal(280);
  });

  it('no lease before an entry of the leader\'s term commits: a lease read waits for the commit and a round', () => {
    const core = leader3();
    stepDurably(core, ack(2, 2, 1, 0, 150)); // an answer from a quorum, but not for the blank
    expect(core.status()).to.include({ commitIndex: 0, leaseUntilMs: null });
    expect(run(core, (c) => c.read(1, 'lease'))).to.deep.equal([]);
    const cmds = stepDurably(core, ack(2, 2, 2, 0, 155));
    expect(ofType(cmds, 'heartbeatRound')).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    expect(ofType(cmds, 'readsReady')).to.deep.equal([]);
  });

  it('lease reads need check-quorum: NotAllowedError without it (index reads still work)', () => {
    const core = leader3(PRE_VOTE_ONLY);
    commitBlank(core);
    expect(core.status().leaseUntilMs).to.equal(null);
    expectThrows(() => core.read(1, 'lease'), NotAllowedError);
    expect(run(core, (c) => c.read(2, 'index'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
  });

  it('a transfer under way suspends the lease; after it times out without TimeoutNow the lease is back', () => {
    const core = leader3();
    commitBlank(core, [2], 150);
    run(core, (c) => c.transferLeadership(1, n(3), 50)); // node 3 holds nothing yet
    expect(core.status().leaseUntilMs).to.equal(null);
    expect(run(core, (c) => c.read(1, 'lease'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
    const settled = stepDurably(core, tick(200));
    expect(ofType(settled, 'transferSettled')).to.have.length(1);
    expect(core.status().leaseUntilMs).to.equal(250);
    expect(run(core, (c) => c.read(2, 'lease'))).to.deep.equal([{ type: 'readsReady', ids: [2], readIndex: 2 }]);
  });

  it('once TimeoutNow was sent, no lease for the rest of the term, even after the transfer times out', () => {
    const core = leader3();
    commitBlank(core, [2, 3], 150);
    const cmds = run(core, (c) => c.transferLeadership(1, n(3), 50));
    expect(ofType(cmds, 'sendTimeoutNow')).to.have.length(1);
    const settled = ofType(stepDurably(core, tick(200)), 'transferSettled');
    expect(settled[0]!.outcome.ok).to.equal(false);
    stepDurably(core, ack(2, 2, 2, 0, 200));
    stepDurably(core, ack(3, 2, 2, 0, 200));
    expect(core.status()).to.include({ role: 'Leader', transferTarget: null, leaseUntilMs: null });
    expect(run(core, (c) => c.read(1, 'lease'))).to.deep.equal([{ type: 'heartbeatRound', round: 1 }]);
  });

  // Found by this suite: ReadQueue.confirm appended the confirmed round at the end of `confirmed`,
  // which takeReady expects in read-index order.
  it('a round confirmed after a lease read at a higher index is not held behind it: each read waits only for its own read index', () => {
    const core = leader3();
    commitBlank(core, [2], 150);
    run(core, (c) => c.read(1, 'index')); // round 1 at read index 2
    run(core, (c) => c.propose([Uint8Array.of(9)])); // index 3
    stepDurably(core, ack(3, 2, 3, 0, 150)); // commits 3; not applied yet
    expect(core.status().leaseUntilMs).to.equal(250);
    expect(run(core, (c) => c.read(2, 'lease')), 'read index 3 is not applied yet').to.deep.equal([]);
    const cmds = stepDurably(core, ack(2, 2, 3, 1, 155)); // confirms round 1: read 1 may be served at 2, which is applied
    expect(ofType(cmds, 'readsReady')).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
    expect(stepDurably(core, { type: 'applied', index: i(3) })).to.deep.equal([{ type: 'readsReady', ids: [2], readIndex: 3 }]);
  });

  it('a lease read is served at the commit index and, like any read, once that is applied', () => {
    const core = leader3();
    commitBlank(core, [2], 150, false);
    expect(run(core, (c) => c.read(1, 'lease'))).to.deep.equal([]);
    expect(stepDurably(core, { type: 'applied', index: i(2) })).to.deep.equal([{ type: 'readsReady', ids: [1], readIndex: 2 }]);
  });
});

describe('extensions: leader transfer (thesis 3.10)', () => {
  it('off the leader, transferLeadership throws NodeNotLeaderError', () => {
    const core = voterAt200();
    stepDurably(core, heartbeat(3, 1, 2, 1));
    expect(expectThrows(() => core.transferLeadership(1, n(1), 100), NodeNotLeaderError).leaderId).to.equal(3);
  });

  it('a target that is not a voter of the latest config is refused: not-a-voter', () => {
    const core = leader3();
    const err = expectThrows(() => core.transferLeadership(1, n(9), 100), LeaderTransferError);
    expect(err).to.include({ reason: 'not-a-voter', target: 9, caughtUp: false });
    expect(core.status().transferTarget).to.equal(null);
  });

  it('a second transfer while one is under way is refused: in-progress', () => {
    const core = leader3();
    run(core, (c) => c.transferLeadership(1, n(3), 1000));
    expect(expectThrows(() => core.transferLeadership(2, n(2), 1000), LeaderTransferError).reason).to.equal('in-progress');
    expect(core.status().transferTarget).to.equal(3);
  });

  it('a non-positive timeout is refused', () => {
    const core = leader3();
    expectThrows(() => core.transferLeadership(1, n(3), 0), RangeError);
    expect(core.status().transferTarget).to.equal(null);
  });

  it('a transfer to the leader itself settles ok at once, and writes go on', () => {
    const core = leader3();
    const cmds = run(core, (c) => c.transferLeadership(4, n(1), 1000));
    expect(cmds).to.deep.equal([{ type: 'transferSettled', id: 4, outcome: { ok: true, leader: 1 } }]);
    expect(core.status().transferTarget).to.equal(null);
    expect(core.propose([Uint8Array.of(1)]).firstIndex).to.equal(3);
  });

  it('while a transfer is under way, propose, proposeBlank and proposeConfigChange throw LeaderTransferInProgressError naming the target', () => {
    const core = leader3();
    commitBlank(core);
    run(core, (c) => c.transferLeadership(1, n(3), 1000));
    expect(core.status().transferTarget).to.equal(3);
    expect(expectThrows(() => core.propose([Uint8Array.of(1)]), LeaderTransferInProgressError).target).to.equal(3);
    expect(expectThrows(() => core.proposeBlank(), LeaderTransferInProgressError).target).to.equal(3);
    expect(expectThrows(() => core.proposeConfigChange({ add: [n(4)] }), LeaderTransferInProgressError).target).to.equal(3);
    expect(core.status().lastLogIndex, 'nothing was appended').to.equal(2);
  });

  it('TimeoutNow goes to the target once its match reaches the leader\'s last index, and only once', () => {
    const core = leader3();
    commitBlank(core, [2]);
    expect(ofType(run(core, (c) => c.transferLeadership(1, n(3), 1000)), 'sendTimeoutNow')).to.deep.equal([]);
    expect(ofType(stepDurably(core, ack(3, 2, 1, 0, 150)), 'sendTimeoutNow')).to.deep.equal([]);
    expect(ofType(stepDurably(core, ack(2, 2, 2, 0, 150)), 'sendTimeoutNow'), 'another node catching up changes nothing').to.deep.equal([]);
    const cmds = stepDurably(core, ack(3, 2, 2, 0, 160));
    expect(ofType(cmds, 'sendTimeoutNow')).to.deep.equal([{ type: 'sendTimeoutNow', to: 3, req: { type: 'timeoutNow', term: 2, leaderId: 1 } }]);
    expect(ofType(stepDurably(core, ack(3, 2, 2, 1, 170)), 'sendTimeoutNow')).to.deep.equal([]);
  });

  it('a target already caught up gets TimeoutNow at once', () => {
    const core = leader3();
    commitBlank(core, [3]);
    const cmds = run(core, (c) => c.transferLeadership(1, n(3), 1000));
    expect(cmds).to.deep.equal([{ type: 'sendTimeoutNow', to: 3, req: { type: 'timeoutNow', term: 2, leaderId: 1 } }]);
  });

  it('a follower told TimeoutNow by its leader answers and campaigns at once, with no pre-vote, its vote requests marked transfer', () => {
    const core = follower(3, [1, 2], { config: EXTENSIONS_CONFIG });
    stepDurably(core, heartbeat(1, 2, 2, 2));
    const cmds = stepDurably(core, { type: 'timeoutNow', reqId: 5, req: { type: 'timeoutNow', term: t(2), leaderId: n(1) } });
    expect(cmds[0]).to.deep.equal({ type: 'reply', reqId: 5, resp: { type: 'timeoutNowResponse', term: 2 } });
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 3, votedFor: 3 });
    const votes = ofType(cmds, 'sendVote');
    expect(votes.map((v) => v.to)).to.deep.equal([1, 2]);
    for (const v of votes) expect(v.req).to.deep.equal({ type: 'vote', term: 3, candidateId: 3, lastLogIndex: 2, lastLogTerm: 2, transfer: true });
  });

  it('TimeoutNow from a node that is not our leader is answered and ignored', () => {
    const core = follower(3, [1, 2], { config: EXTENSIONS_CONFIG });
    stepDurably(core, heartbeat(2, 2, 2, 2));
    const cmds = stepDurably(core, { type: 'timeoutNow', reqId: 5, req: { type: 'timeoutNow', term: t(2), leaderId: n(1) } });
    expect(cmds).to.deep.equal([{ type: 'reply', reqId: 5, resp: { type: 'timeoutNowResponse', term: 2 } }]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2, currentLeader: 2 });
  });

  it('a stale TimeoutNow (an older term) is refused with our term', () => {
    const core = follower(3, [1, 2], { config: EXTENSIONS_CONFIG });
    const cmds = stepDurably(core, { type: 'timeoutNow', reqId: 5, req: { type: 'timeoutNow', term: t(1), leaderId: n(1) } });
    expect(cmds).to.deep.equal([{ type: 'reply', reqId: 5, resp: { type: 'timeoutNowResponse', term: 2 } }]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2 });
  });

  it('ok: the leader grants the target\'s transfer vote, steps down, and settles once the target\'s AppendEntries shows it leads', () => {
    const core = leader3();
    commitBlank(core, [3]);
    run(core, (c) => c.transferLeadership(6, n(3), 1000));
    const voted = stepDurably(core, { type: 'vote', reqId: 2, req: { ...voteReq(3, 3, 2, 2), transfer: true } });
    expect(replies(voted)).to.deep.equal([{ type: 'voteResponse', term: 3, voteGranted: true, isCandidateUnknown: false }]);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 3 });
    expect(ofType(voted, 'transferSettled'), 'not settled by stepping down: TimeoutNow was sent').to.deep.equal([]);
    const cmds = stepDurably(core, heartbeat(3, 3, 2, 2));
    expect(ofType(cmds, 'transferSettled')).to.deep.equal([{ type: 'transferSettled', id: 6, outcome: { ok: true, leader: 3 } }]);
    expect(core.status()).to.include({ currentLeader: 3, transferTarget: null });
  });

  it('superseded: another node is seen leading', () => {
    const core = leader3();
    commitBlank(core, [3]);
    run(core, (c) => c.transferLeadership(6, n(3), 1000));
    const cmds = stepDurably(core, heartbeat(2, 3, 2, 2));
    const settled = ofType(cmds, 'transferSettled');
    expect(settled).to.have.length(1);
    expect(settled[0]!.id).to.equal(6);
    const outcome = settled[0]!.outcome;
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error).to.include({ reason: 'superseded', target: 3, caughtUp: true });
  });

  it('timeout: at the deadline the transfer fails, and writes resume', () => {
    const core = leader3();
    commitBlank(core);
    run(core, (c) => c.transferLeadership(6, n(3), 100)); // at 150: deadline 250
    expect(core.nextDeadlineMs()).to.equal(250);
    expect(ofType(stepDurably(core, tick(249)), 'transferSettled')).to.deep.equal([]);
    const settled = ofType(stepDurably(core, tick(250)), 'transferSettled');
    expect(settled).to.have.length(1);
    const outcome = settled[0]!.outcome;
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error).to.be.instanceOf(LeaderTransferError);
    expect(outcome.error).to.include({ reason: 'timeout', target: 3, caughtUp: false });
    expect(core.status()).to.include({ role: 'Leader', transferTarget: null });
    expect(core.propose([Uint8Array.of(1)]).firstIndex).to.equal(3);
  });

  // Found by this suite: becomeLeader kept a transfer left from an earlier term (TimeoutNow sent,
  // then stepped down), refusing writes and holding no lease until that transfer's deadline.
  it('a transfer of an earlier term does not hold up the node\'s own later leadership', () => {
    const core = leader3();
    commitBlank(core, [3]);
    run(core, (c) => c.transferLeadership(6, n(3), 5000)); // node 3 is caught up: TimeoutNow at once
    // Node 3's transfer campaign reaches us: we grant and step down. Node 3 then fails (it crashes).
    stepDurably(core, { type: 'vote', reqId: 2, req: { ...voteReq(3, 3, 2, 2), transfer: true } });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 3 });
    // Our election timer fires; node 2 elects us in term 4.
    const cmds = elect(core, [2]);
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 4 });
    // Node 3 is not leading and never got a second TimeoutNow: the transfer is over, and this leadership takes writes.
    expect(core.status().transferTarget).to.equal(null);
    const settled = ofType(cmds, 'transferSettled');
    expect(settled.map((s) => [s.id, s.outcome.ok])).to.deep.equal([[6, false]]);
    expect(core.propose([Uint8Array.of(1)]).term).to.equal(4);
  });

  it('leadership-lost: the leader steps down before the target caught up', () => {
    const core = leader3();
    run(core, (c) => c.transferLeadership(6, n(3), 1000));
    const settled = ofType(stepDurably(core, { type: 'higherTerm', term: t(4) }), 'transferSettled');
    expect(settled).to.have.length(1);
    const outcome = settled[0]!.outcome;
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error).to.include({ reason: 'leadership-lost', target: 3, caughtUp: false });
    expect(core.status().transferTarget).to.equal(null);
  });
});

describe('extensions: electNow', () => {
  it('throws NotAllowedError on a leader', () => {
    const core = leader3();
    expectThrows(() => core.electNow(), NotAllowedError);
    expect(core.status()).to.include({ role: 'Leader', currentTerm: 2 });
  });

  it('throws NotAllowedError on a NonVoter', () => {
    const core = makeCore({ id: 2, config: EXTENSIONS_CONFIG });
    expectThrows(() => core.electNow(), NotAllowedError);
    expect(core.takeCommands()).to.deep.equal([]);
  });

  it('with pre-vote, starts a pre-vote round: the term stays, pre-vote requests go out', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    const cmds = run(core, (c) => c.electNow());
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1 });
    expect(ofType(cmds, 'sendVote').map((v) => [v.to, v.req.term, v.req.preVote])).to.deep.equal([[2, 2, true], [3, 2, true]]);
    expect(ofType(cmds, 'saveHardState')).to.deep.equal([]);
  });

  it('without pre-vote, inside a leader\'s lease it is refused (its own vote would break the lease), and changes nothing', () => {
    const core = follower(1, [1], { config: CHECK_QUORUM_ONLY }); // restarted: counts as having heard a leader at 0
    expect(() => core.electNow()).to.throw(NotAllowedError, /lease/);
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1 });
    expect(core.takeCommands()).to.deep.equal([]);
  });

  it('with pre-vote, inside a leader\'s lease its own pre-vote does not count: the others must grant a quorum without it', () => {
    const core = follower(1, [1], { config: EXTENSIONS_CONFIG });
    run(core, (c) => c.electNow());
    // One grant of three voters would be a quorum with our own; inside the lease it is not.
    run(core, (c) => c.step({ type: 'voteResponse', from: n(2), resp: { type: 'voteResponse', term: t(1), voteGranted: true, isCandidateUnknown: false, preVote: true }, requestTerm: t(2) }));
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 1 });
    run(core, (c) => c.step({ type: 'voteResponse', from: n(3), resp: { type: 'voteResponse', term: t(1), voteGranted: true, isCandidateUnknown: false, preVote: true }, requestTerm: t(2) }));
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2 });
  });

  it('without pre-vote, campaigns at once (outside any lease)', () => {
    const core = follower(1, [1], { config: CHECK_QUORUM_ONLY });
    run(core, (c) => c.step({ type: 'tick', nowMs: CHECK_QUORUM_ONLY.electionTimeoutMinMs }));
    const cmds = run(core, (c) => c.electNow());
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2, votedFor: 1 });
    expect(ofType(cmds, 'saveHardState').map((s) => s.hardState)).to.deep.equal([{ currentTerm: 2, votedFor: 1 }]);
    expect(ofType(cmds, 'sendVote').map((v) => [v.to, v.req.term, v.req.preVote])).to.deep.equal([[2, 2, undefined], [3, 2, undefined]]);
  });
});
