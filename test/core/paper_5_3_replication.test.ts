/** Raft paper section 5.3 (log replication), Figure 2's AppendEntries rules, and seed 002 rule 3. */
import { expect } from 'chai';
import { buildConfig } from '../../actors/raft/core/config';
import { ForwardToLeaderError, InvariantViolation } from '../../actors/raft/core/errors';
import type { AppendEntriesResponse } from '../../actors/raft/core/types';
import {
  appendReq, electLeader, follower, i, n, normalEntry, ofType, stepDurably, t,
} from './helpers/fixtures';

const bytes = (...v: number[]) => v.map((x) => Uint8Array.of(x));
const respOf = (cmds: ReturnType<typeof stepDurably>) => ofType(cmds, 'reply').map((r) => r.resp as AppendEntriesResponse);

describe('paper 5.3: log replication', () => {
  // "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in
  // parallel to each of the other servers to replicate the entry."
  it('a leader appends proposals in its term and hands them to replication in the same step', () => {
    const core = follower(1, [1]);
    electLeader(core);
    const res = core.propose(bytes(7, 8));
    expect(res).to.deep.equal({ firstIndex: 3, lastIndex: 4, term: 2 });
    const cmds = core.takeCommands();
    const entries = [
      { index: 3, term: 2, kind: 'normal', payload: Uint8Array.of(7) },
      { index: 4, term: 2, kind: 'normal', payload: Uint8Array.of(8) },
    ];
    expect(cmds).to.deep.equal([
      { type: 'appendLog', entries, truncateFrom: null },
      { type: 'replicate', entries },
    ]);
    expect(core.status()).to.include({ lastLogIndex: 4, durableIndex: 2, commitIndex: 0 });
  });

  // Paper 8: "If the client's first choice is not the leader, that server will reject the client's
  // request and supply information about the most recent leader it has heard from".
  it('a non-leader refuses proposals and names the leader it knows', () => {
    const core = follower(1, [1]);
    expect(() => core.propose(bytes(1))).to.throw(ForwardToLeaderError).with.property('leaderId', null);
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(3, 1, 1, 1, []) });
    expect(() => core.propose(bytes(1))).to.throw(ForwardToLeaderError).with.property('leaderId', 3);
    expect(core.takeCommands()).to.deep.equal([]);
  });

  // "If the follower does not find an entry in its log with the same index and term, then it refuses
  // the new entries." With the fast-backtrack hint: a short log names its last index + 1.
  it('a follower whose log is too short refuses, hinting at its last index + 1', () => {
    const core = follower(1, [1, 1, 2]);
    const resp = respOf(stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 3, 7, 3, [normalEntry(8, 3)]) }));
    expect(resp).to.deep.equal([{ type: 'appendEntriesResponse', term: 3, success: false, matchIndex: 0, conflict: { index: 4, term: 0 } }]);
    expect(core.status().lastLogIndex).to.equal(3);
  });

  // "when rejecting an AppendEntries request, the follower can include the term of the conflicting
  // entry and the first index it stores for that term."
  it('a follower whose entry at prevLogIndex has another term refuses, naming that term and its first index', () => {
    const core = follower(1, [1, 1, 2, 2, 2]);
    const resp = respOf(stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 4, 5, 3, []) }));
    expect(resp[0]).to.include({ success: false });
    expect(resp[0]!.conflict).to.deep.equal({ index: 3, term: 2 });
    expect(core.status().lastLogIndex).to.equal(5);
  });

  // Figure 2: "If an existing entry conflicts with a new one (same index but different terms), delete
  // the existing entry and all that follow it" / "Append any new entries not already in the log".
  it('a follower deletes its conflicting suffix and takes the leader\'s entries', () => {
    const core = follower(1, [1, 1, 2, 2, 2]);
    const entries = [normalEntry(3, 2), normalEntry(4, 3, 44), normalEntry(5, 3, 55), normalEntry(6, 3, 66)];
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 3, 2, 1, entries) });
    // Index 3 matches and is kept; the cut starts at the first real conflict.
    expect(ofType(cmds, 'appendLog')).to.deep.equal([{ type: 'appendLog', entries: entries.slice(1), truncateFrom: 4 }]);
    expect([3, 4, 5, 6].map((x) => core.termAt(i(x)))).to.deep.equal([2, 3, 3, 3]);
    expect(core.entries(i(4), i(7))).to.deep.equal(entries.slice(1));
    expect(respOf(cmds)[0]).to.include({ success: true, matchIndex: 6 });
  });

  // Figure 2 appends only "new entries not already in the log": a retried or reordered request must
  // not cut entries a later request already added.
  it('a follower never truncates for entries it already holds (duplicate or reordered requests)', () => {
    const core = follower(1, [1]);
    const three = [normalEntry(2, 1), normalEntry(3, 1), normalEntry(4, 1)];
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 1, 1, 1, three) });
    const late = stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(2, 1, 1, 1, three.slice(0, 1)) });
    expect(ofType(late, 'appendLog')).to.deep.equal([]);
    expect(core.status().lastLogIndex).to.equal(4);
    expect(respOf(late)[0]).to.include({ success: true, matchIndex: 2 });
  });

  // Seed 002 rule 3: "Before an AppendEntries response is sent with a success: true, at least all
  // entries directly referenced by the corresponding request must be flushed to the persistent log".
  it('a follower answers success only once the entries are durable', () => {
    const core = follower(1, [1]);
    core.step({ type: 'appendEntries', reqId: 5, req: appendReq(2, 1, 1, 1, [normalEntry(2, 1), normalEntry(3, 1)]) });
    const first = core.takeCommands();
    expect(first.map((c) => c.type)).to.deep.equal(['appendLog']);
    expect(core.status().durableIndex).to.equal(1);
    core.step({ type: 'logPersisted', index: i(3) });
    expect(core.takeCommands()).to.deep.equal([
      { type: 'reply', reqId: 5, resp: { type: 'appendEntriesResponse', term: 1, success: true, matchIndex: 3, conflict: null } },
    ]);
    expect(core.status().durableIndex).to.equal(3);
  });

  // Figure 2, Persistent state: "(Updated on stable storage before responding to RPCs)": a success
  // that also moved our term waits for that term to be durable too.
  it('a success that adopted a new term waits for the hard state as well as the log', () => {
    const core = follower(1, [1]);
    core.step({ type: 'appendEntries', reqId: 1, req: appendReq(2, 4, 1, 1, [normalEntry(2, 4)]) });
    const cmds = core.takeCommands();
    const save = ofType(cmds, 'saveHardState')[0]!;
    core.step({ type: 'logPersisted', index: i(2) });
    expect(ofType(core.takeCommands(), 'reply')).to.deep.equal([]);
    core.step({ type: 'hardStatePersisted', seq: save.seq });
    expect(respOf(core.takeCommands())[0]).to.include({ success: true, matchIndex: 2, term: 4 });
  });

  // A truncation replaces entries a held-back success named: those entries will never be durable, so
  // the old leader must not hear "success" for them.
  it('a held success is turned into a refusal when a newer leader overwrites its entries', () => {
    const core = follower(1, [1]);
    core.step({ type: 'appendEntries', reqId: 1, req: appendReq(2, 2, 1, 1, [normalEntry(2, 2), normalEntry(3, 2), normalEntry(4, 2)]) });
    const oldCmds = core.takeCommands();
    core.step({ type: 'appendEntries', reqId: 2, req: appendReq(3, 3, 2, 2, [normalEntry(3, 3, 33)]) });
    const newCmds = core.takeCommands();
    expect(ofType(newCmds, 'appendLog')[0]!.truncateFrom).to.equal(3);
    expect(core.status().durableIndex).to.equal(1);
    // Storage finishes the old append first: only its surviving prefix counts.
    core.step({ type: 'logPersisted', index: i(4) });
    expect(core.status().durableIndex).to.equal(2);
    core.step({ type: 'logPersisted', index: i(3) });
    for (const s of ofType([...oldCmds, ...newCmds], 'saveHardState')) core.step({ type: 'hardStatePersisted', seq: s.seq });
    const replies = ofType(core.takeCommands(), 'reply');
    expect(replies.map((r) => [r.reqId, (r.resp as AppendEntriesResponse).success, r.resp.term])).to.deep.equal([[1, false, 3], [2, true, 3]]);
    expect(core.status().durableIndex).to.equal(3);
  });

  // Leader Completeness makes this impossible; if it happens the node must stop, not comply.
  it('a follower refuses loudly to truncate a committed entry', () => {
    const core = follower(1, [1, 1, 1]);
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 1, 3, 1, [], 3) });
    expect(core.status().commitIndex).to.equal(3);
    expect(() => core.step({ type: 'appendEntries', reqId: 2, req: appendReq(3, 2, 2, 1, [normalEntry(3, 2)]) })).to.throw(InvariantViolation, /committed/);
  });

  // "The leader keeps track of the highest index it knows to be committed, and it includes that index
  // in future AppendEntries RPCs (including heartbeats) so that the other servers eventually find out.
  // Once a follower learns that a log entry is committed, it applies the entry to its local state
  // machine (in log order)." Figure 2: "set commitIndex = min(leaderCommit, index of last new entry)".
  it('a follower learns the commit index from leaderCommit, capped by the last new entry, and applies in order', () => {
    const core = follower(1, [1]);
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 1, 1, 1, [normalEntry(2, 1), normalEntry(3, 1)], 5) });
    expect(core.status().commitIndex).to.equal(3);
    expect(ofType(cmds, 'commit')).to.deep.equal([{ type: 'commit', commitIndex: 3 }]);
    expect(ofType(cmds, 'apply').flatMap((a) => a.entries.map((e) => e.index))).to.deep.equal([1, 2, 3]);
    // A heartbeat repeating the same commit index changes nothing and re-applies nothing.
    const again = stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(2, 1, 3, 1, [], 3) });
    expect(again.map((c) => c.type)).to.deep.equal(['reply']);
  });

  // "A log entry is committed once the leader that created the entry has replicated it on a majority of
  // the servers".
  it('a leader commits and applies once a majority holds its entries durably', () => {
    const core = follower(1, [1]);
    electLeader(core);
    core.propose(bytes(1, 2, 3));
    stepDurably(core);
    expect(core.status().commitIndex).to.equal(0);
    const cmds = stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: t(2), matchIndex: i(4) });
    expect(ofType(cmds, 'commit')).to.deep.equal([{ type: 'commit', commitIndex: 4 }]);
    expect(ofType(cmds, 'apply').flatMap((a) => a.entries.map((e) => e.index))).to.deep.equal([1, 2, 3, 4]);
    stepDurably(core, { type: 'applied', index: i(4) });
    expect(core.status()).to.include({ commitIndex: 4, lastApplied: 4 });
    // A match from a stream of an earlier term is ignored.
    core.propose(bytes(4));
    stepDurably(core);
    expect(stepDurably(core, { type: 'replicated', peer: n(3), leaderTerm: t(1), matchIndex: i(5) })).to.deep.equal([]);
  });

  it('apply hands out consecutive batches of at most maxApplyBatchEntries, each index once', () => {
    const core = follower(1, [1], { config: buildConfig({ maxApplyBatchEntries: 4, preVote: false, checkQuorum: false }) });
    electLeader(core);
    core.propose(bytes(...Array.from({ length: 9 }, (_, k) => k)));
    stepDurably(core);
    const cmds = stepDurably(core, { type: 'replicated', peer: n(3), leaderTerm: t(2), matchIndex: i(11) });
    const batches = ofType(cmds, 'apply').map((a) => a.entries.map((e) => e.index));
    expect(batches).to.deep.equal([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]);
  });

  // "A leader never overwrites or deletes entries in its own log (the Leader Append-Only Property)."
  it('a leader told of another leader in its own term refuses it without touching its log', () => {
    const core = follower(1, [1]);
    electLeader(core);
    const before = core.status();
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(3, 2, 1, 1, [normalEntry(2, 2)]) });
    expect(respOf(cmds).map((r) => r.success)).to.deep.equal([false]);
    expect(ofType(cmds, 'appendLog')).to.deep.equal([]);
    expect(core.status()).to.deep.equal(before);
  });
});
