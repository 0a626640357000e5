/**
 * Raft paper section 5.1 (terms), in the manner of etcd's raft_paper_test.go: each test is named for
 * the behaviour and quotes the sentence it checks.
 */
import { expect } from 'chai';
import {
  appendReq, electLeader, follower, makeCore, n, ofType, stepDurably, t, timeOut, voteReq,
} from './helpers/fixtures';

describe('paper 5.1: terms', () => {
  // "Current terms are exchanged whenever servers communicate; if one server's current term is
  // smaller than the other's, then it updates its current term to the larger value."
  it('a follower that sees a higher term updates its term and clears its vote', () => {
    const core = follower(1, [1], { term: 2, votedFor: 2 });
    core.step({ type: 'appendEntries', reqId: 1, req: appendReq(3, 5, 1, 1, []) });
    const st = core.status();
    expect(st.currentTerm).to.equal(5);
    expect(st.votedFor).to.equal(null);
    expect(st.currentLeader).to.equal(3);
    const saves = ofType(core.takeCommands(), 'saveHardState');
    expect(saves.map((s) => s.hardState)).to.deep.equal([{ currentTerm: 5, votedFor: null }]);
  });

  // "If a candidate or leader discovers that its term is out of date, it immediately reverts to
  // follower state."
  it('a candidate that sees a higher term reverts to follower', () => {
    const core = follower(1, [1]);
    timeOut(core);
    expect(core.status().role).to.equal('Candidate');
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: { type: 'voteResponse', term: t(9), voteGranted: false, isCandidateUnknown: false } });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 9, votedFor: null });
    expect(core.nextDeadlineMs()).to.be.a('number');
  });

  // "If a candidate or leader discovers that its term is out of date, it immediately reverts to
  // follower state."
  it('a leader that sees a higher term reverts to follower and stops replicating', () => {
    const core = follower(1, [1]);
    electLeader(core);
    const leaderTerm = core.status().currentTerm;
    const cmds = stepDurably(core, { type: 'vote', reqId: 7, req: voteReq(3, leaderTerm + 1, 0, 0) });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: leaderTerm + 1 });
    expect(ofType(cmds, 'stopReplication')).to.have.length(1);
  });

  // Same sentence, learned from a response: the replication stream reports the higher term.
  it('a leader told of a higher term by a replication response steps down', () => {
    const core = follower(1, [1]);
    electLeader(core);
    const cmds = stepDurably(core, { type: 'higherTerm', term: t(10) });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 10, currentLeader: null });
    expect(ofType(cmds, 'stopReplication')).to.have.length(1);
    expect(ofType(cmds, 'saveHardState')[0]!.hardState.currentTerm).to.equal(10);
    // A stale higherTerm changes nothing.
    expect(stepDurably(core, { type: 'higherTerm', term: t(4) })).to.deep.equal([]);
  });

  // "If a server receives a request with a stale term number, it rejects the request."
  it('rejects an AppendEntries with a stale term, and changes nothing', () => {
    const core = follower(1, [1, 1], { term: 3 });
    const before = core.status();
    core.step({ type: 'appendEntries', reqId: 4, req: appendReq(2, 2, 2, 1, [], 2) });
    expect(core.takeCommands()).to.deep.equal([
      { type: 'reply', reqId: 4, resp: { type: 'appendEntriesResponse', term: 3, success: false, matchIndex: 0, conflict: null } },
    ]);
    expect(core.status()).to.deep.equal(before);
  });

  // "If a server receives a request with a stale term number, it rejects the request."
  it('rejects a RequestVote with a stale term', () => {
    const core = follower(1, [1], { term: 3 });
    core.step({ type: 'vote', reqId: 5, req: voteReq(2, 2, 9, 2) });
    expect(core.takeCommands()).to.deep.equal([
      { type: 'reply', reqId: 5, resp: { type: 'voteResponse', term: 3, voteGranted: false, isCandidateUnknown: false } },
    ]);
    expect(core.status().votedFor).to.equal(null);
  });

  // A passive node keeps up with terms too, but a higher term does not make it a voter (seed 000).
  it('a NonVoter adopts a higher term and stays NonVoter', () => {
    const core = makeCore({ id: 1 });
    core.step({ type: 'appendEntries', reqId: 1, req: appendReq(2, 4, 0, 0, []) });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 4, currentLeader: 2 });
    expect(core.nextDeadlineMs()).to.equal(null);
  });
});
