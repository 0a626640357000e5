/** Raft paper section 5.4 (safety): the election restriction, Figure 8, and the leader's own disk. */
import { expect } from 'chai';
import type { VoteResponse } from '../../actors/raft/core/types';
import {
  electLeader, follower, i, n, ofType, stepDurably, t, voteReq,
} from './helpers/fixtures';

describe('paper 5.4: safety', () => {
  // 5.4.1: "If the logs have last entries with different terms, then the log with the later term is
  // more up-to-date. If the logs end with the same term, then whichever log is longer is more
  // up-to-date." / "the voter denies its vote if its own log is more up-to-date than that of the candidate."
  const cases: { name: string; lastLogTerm: number; lastLogIndex: number; granted: boolean }[] = [
    { name: 'older last term, even if longer', lastLogTerm: 1, lastLogIndex: 9, granted: false },
    { name: 'same last term, shorter', lastLogTerm: 2, lastLogIndex: 2, granted: false },
    { name: 'same last term, same length', lastLogTerm: 2, lastLogIndex: 3, granted: true },
    { name: 'same last term, longer', lastLogTerm: 2, lastLogIndex: 4, granted: true },
    { name: 'later last term, even if shorter', lastLogTerm: 3, lastLogIndex: 1, granted: true },
  ];
  for (const c of cases) {
    it(`election restriction: a voter with log ending (term 2, index 3) ${c.granted ? 'grants' : 'denies'} a candidate with ${c.name}`, () => {
      const voter = follower(1, [1, 1, 2]);
      const cmds = stepDurably(voter, { type: 'vote', reqId: 1, req: voteReq(2, 5, c.lastLogIndex, c.lastLogTerm) });
      const resp = ofType(cmds, 'reply')[0]!.resp as VoteResponse;
      expect(resp.voteGranted).to.equal(c.granted);
      expect(voter.status().votedFor).to.equal(c.granted ? 2 : null);
      // Either way the voter moved to the candidate's term (5.1).
      expect(voter.status().currentTerm).to.equal(5);
    });
  }

  // The same check from the candidate's side: a candidate whose log is behind cannot win.
  it('a candidate with a stale log is refused by up-to-date voters and does not become leader', () => {
    const stale = follower(1, [1, 1]);
    const voters = [follower(2, [1, 1, 2]), follower(3, [1, 1, 2])];
    const cmds = stepDurably(stale, { type: 'tick', nowMs: stale.nextDeadlineMs()! });
    for (const v of ofType(cmds, 'sendVote')) {
      const voter = voters[v.to - 2]!;
      const reply = ofType(stepDurably(voter, { type: 'vote', reqId: 1, req: v.req }), 'reply')[0]!;
      stepDurably(stale, { type: 'voteResponse', from: v.to, resp: reply.resp as VoteResponse });
    }
    expect(stale.status().role).to.equal('Candidate');
  });

  // 5.4.2 / Figure 8: "Raft never commits log entries from previous terms by counting replicas. Only
  // log entries from the leader's current term are committed by counting replicas; once an entry from
  // the current term has been committed in this way, then all prior entries are committed indirectly
  // because of the Log Matching Property."
  it('Figure 8: a leader does not commit an entry of an earlier term by counting replicas, only indirectly', () => {
    // Entry 2 is from term 2, never committed; node 1 is elected in term 3 and appends blank entry 3.
    const core = follower(1, [1, 2], { term: 2 });
    electLeader(core);
    expect(core.status()).to.include({ currentTerm: 3, lastLogIndex: 3, durableIndex: 3 });
    const counted = stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: t(3), matchIndex: i(2) });
    expect(counted, 'a majority holds entry 2, of term 2').to.deep.equal([]);
    expect(core.status().commitIndex).to.equal(0);
    const cmds = stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: t(3), matchIndex: i(3) });
    expect(ofType(cmds, 'commit')).to.deep.equal([{ type: 'commit', commitIndex: 3 }]);
    expect(ofType(cmds, 'apply').flatMap((a) => a.entries.map((e) => [e.index, e.term]))).to.deep.equal([[1, 1], [2, 2], [3, 3]]);
  });

  // Seed 002 / DESIGN.md 4: "The leader counts itself toward a quorum only for entries that are durable
  // on its own disk."
  it('a leader counts itself toward a quorum only for entries durable on its own disk', () => {
    const core = follower(1, [1]);
    electLeader(core); // durable through its blank entry 2
    core.propose([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    const append = ofType(core.takeCommands(), 'appendLog')[0]!;
    let cmds = stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: t(2), matchIndex: i(5) });
    // Node 2 and the leader's durable prefix make a majority only through index 2.
    expect(core.status().commitIndex).to.equal(2);
    expect(ofType(cmds, 'commit')).to.deep.equal([{ type: 'commit', commitIndex: 2 }]);
    cmds = stepDurably(core, { type: 'logPersisted', index: append.entries[2]!.index });
    expect(core.status()).to.include({ durableIndex: 5, commitIndex: 5 });
    expect(ofType(cmds, 'apply').flatMap((a) => a.entries.map((e) => e.index))).to.deep.equal([3, 4, 5]);
  });

  // The converse: two followers are a majority of three without the leader; the entries commit, but
  // the leader applies only what its own disk holds (a restart must find every applied entry).
  it('followers alone can commit; the leader applies only what is durable locally', () => {
    const core = follower(1, [1]);
    electLeader(core);
    core.propose([Uint8Array.of(1)]);
    const append = ofType(core.takeCommands(), 'appendLog')[0]!;
    const first = stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: t(2), matchIndex: i(3) });
    expect(ofType(first, 'apply').flatMap((a) => a.entries.map((e) => e.index)), 'leader + node 2 agree through 2').to.deep.equal([1, 2]);
    const cmds = stepDurably(core, { type: 'replicated', peer: n(3), leaderTerm: t(2), matchIndex: i(3) });
    expect(core.status()).to.include({ commitIndex: 3, durableIndex: 2 });
    expect(ofType(cmds, 'commit')).to.deep.equal([{ type: 'commit', commitIndex: 3 }]);
    expect(ofType(cmds, 'apply'), 'entry 3 is not on the leader\'s disk yet').to.deep.equal([]);
    const later = stepDurably(core, { type: 'logPersisted', index: append.entries[0]!.index });
    expect(ofType(later, 'apply').flatMap((a) => a.entries.map((e) => e.index))).to.deep.equal([3]);
  });
});
