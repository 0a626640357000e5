/**
 * Paper 7 (log compaction) and seed 002's snapshot rules, on the core alone: starting from a
 * snapshot, taking one, and installing a leader's (InstallSnapshot), including the follower that
 * keeps the entries after the snapshot that match and drops a log that contradicts it.
 */
import { expect } from 'chai';
import { buildConfig } from '../../actors/raft/core/config';
import { RaftCore } from '../../actors/raft/core/core';
import { SeededRandom } from './helpers/random';
import { InvariantViolation } from '../../actors/raft/core/errors';
import type { Command } from '../../actors/raft/core/io';
import type { InstallSnapshotRequest, Membership, SnapshotMeta } from '../../actors/raft/core/types';
import {
  appendReq, electLeader, follower, i, makeCore, membership, n, normalEntry, ofType, stepDurably, t, TEST_CONFIG,
} from './helpers/fixtures';

const M = membership(1, 2, 3);

function meta(index: number, term: number, m: Membership = M, membershipIndex = 1): SnapshotMeta {
  return { id: `s-${term}-${index}`, lastIncludedIndex: i(index), lastIncludedTerm: t(term), membership: m, membershipIndex: i(membershipIndex), byteLength: 10, checksum: 1234 };
}

function installReq(term: number, m: SnapshotMeta, chunk: { offset: number; bytes: number; done: boolean }): InstallSnapshotRequest {
  return {
    type: 'installSnapshot', term: t(term), leaderId: n(2), lastIncludedIndex: m.lastIncludedIndex, lastIncludedTerm: m.lastIncludedTerm,
    offset: chunk.offset, data: new Uint8Array(chunk.bytes), done: chunk.done, snapshotId: m.id, membership: m.membership,
    membershipIndex: m.membershipIndex, byteLength: m.byteLength, checksum: m.checksum,
  };
}

/** Entries from..to of term `term` (index 1 excluded: these continue a snapshot). */
const after = (from: number, to: number, term: number) => Array.from({ length: to - from + 1 }, (_, k) => normalEntry(from + k, term));

const replies = (cmds: readonly Command[]) => ofType(cmds, 'reply').map((c) => c.resp);

describe('core: snapshots (paper 7)', () => {
  describe('starting from a snapshot', () => {
    it('a log that continues the snapshot: the log starts after it, and a state machine behind it is restored', () => {
      const core = makeCore({ id: 1, term: 3, snapshot: meta(50, 3), entries: after(51, 60, 3) });
      const cmds = core.takeCommands();
      const s = core.status();
      expect(s).to.include({ snapshotIndex: 50, snapshotTerm: 3, lastLogIndex: 60, lastLogTerm: 3, commitIndex: 50, lastApplied: 50, role: 'Follower' });
      expect(s.membership).to.deep.equal(M);
      expect(s.membershipIndex).to.equal(1);
      expect(ofType(cmds, 'restoreSnapshot').map((c) => c.meta.lastIncludedIndex)).to.deep.equal([50]);
      expect(ofType(cmds, 'resetLog')).to.deep.equal([]);
      expect(core.termAt(i(50))).to.equal(3);
      expect(core.termAt(i(49))).to.equal(null);
    });

    it('entries storage kept behind the snapshot are dropped from memory; a state machine already past it is not restored', () => {
      const core = makeCore({ id: 1, term: 3, snapshot: meta(50, 3), entries: after(41, 60, 3), lastApplied: 55 });
      const cmds = core.takeCommands();
      expect(core.status()).to.include({ snapshotIndex: 50, lastLogIndex: 60, commitIndex: 55, lastApplied: 55 });
      expect(ofType(cmds, 'restoreSnapshot')).to.deep.equal([]);
      expect(core.entries(i(45), i(46))).to.equal(null);
      expect(core.entries(i(51), i(53))!.map((e) => e.index)).to.deep.equal([51, 52]);
    });

    it('a log that contradicts the snapshot (a crash between installing it and cutting the log) is dropped, in memory and in storage', () => {
      const core = makeCore({ id: 1, term: 4, snapshot: meta(50, 4), entries: after(41, 55, 3) });
      const cmds = core.takeCommands();
      expect(ofType(cmds, 'resetLog')).to.deep.equal([{ type: 'resetLog', snapshotIndex: 50 }]);
      expect(core.status()).to.include({ lastLogIndex: 50, lastLogTerm: 4, commitIndex: 50, durableIndex: 50 });
      core.step({ type: 'logPersisted', index: i(50) });
      expect(core.status().durableIndex).to.equal(50);
    });

    describe('an empty log: storage\'s first index says whether it continues the snapshot', () => {
      const start = (firstIndex: number) => new RaftCore({
        id: n(1), config: TEST_CONFIG, random: new SeededRandom(1), nowMs: 0,
        initial: { hardState: { currentTerm: t(3), votedFor: null }, entries: [], lastApplied: i(0), snapshot: meta(50, 3), firstIndex: i(firstIndex) },
      });

      it('storage still starting at 1 (a crash after the installed snapshot was durable, before the log reset was): the log is reset', () => {
        // Simulator seed 95: without the reset, the next append at 51 was "a gap after index 0" to storage.
        const cmds = start(1).takeCommands();
        expect(ofType(cmds, 'resetLog')).to.deep.equal([{ type: 'resetLog', snapshotIndex: 50 }]);
      });

      it('storage starting right after the snapshot: nothing to reset', () => {
        const cmds = start(51).takeCommands();
        expect(ofType(cmds, 'resetLog')).to.deep.equal([]);
        expect(ofType(cmds, 'restoreSnapshot')).to.have.length(1);
      });

      it('storage starting past the snapshot + 1: entries are missing, refused', () => {
        expect(() => start(53)).to.throw(InvariantViolation, /entries are missing/);
      });
    });

    it('a log that starts after the snapshot + 1 is missing entries: refused', () => {
      expect(() => makeCore({ id: 1, term: 3, snapshot: meta(50, 3), entries: after(53, 60, 3) })).to.throw(InvariantViolation, /entries are missing/);
    });

    it('InitWithConfig is refused after a snapshot: the node is not pristine', () => {
      const core = makeCore({ id: 1, term: 3, snapshot: meta(50, 3), entries: [] });
      expect(() => core.initWithConfig([n(1)])).to.throw(/already formed/);
    });
  });

  describe('taking a snapshot', () => {
    it('snapshotCreated forgets the covered entries and asks storage to purge behind them, keeping snapshotKeepEntries', () => {
      const config = buildConfig({ ...TEST_CONFIG, snapshotKeepEntries: 5 });
      const core = follower(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], { config, lastApplied: 10 });
      core.takeCommands();
      const point = core.snapshotPoint(i(8));
      expect(point).to.deep.equal({ term: 1, membership: M, membershipIndex: 1 });
      core.step({ type: 'snapshotCreated', meta: meta(8, 1) });
      expect(ofType(core.takeCommands(), 'purgeLog')).to.deep.equal([{ type: 'purgeLog', throughIndex: 3 }]);
      expect(core.status()).to.include({ snapshotIndex: 8, snapshotTerm: 1, lastLogIndex: 10 });
      expect(core.entries(i(8), i(9))).to.equal(null);
      expect(core.termAt(i(8))).to.equal(1);
      // An older or equal snapshot changes nothing; one above what is applied is a bug.
      core.step({ type: 'snapshotCreated', meta: meta(8, 1) });
      expect(core.takeCommands()).to.deep.equal([]);
      expect(() => core.step({ type: 'snapshotCreated', meta: meta(11, 1) })).to.throw(InvariantViolation, /only 10 is applied/);
      expect(core.snapshotPoint(i(7)), 'below the snapshot: not in memory any more').to.equal(null);
    });

    it('a snapshot whose term contradicts the log is refused as a bug', () => {
      const core = follower(1, [1, 1, 2, 2], { lastApplied: 4 });
      expect(() => core.step({ type: 'snapshotCreated', meta: meta(3, 1) })).to.throw(InvariantViolation, /term 1 at 3, the log has 2/);
    });

    it('no purge while the snapshot is within snapshotKeepEntries of the log start', () => {
      const core = follower(1, [1, 1, 1, 1], { lastApplied: 4 });
      core.step({ type: 'snapshotCreated', meta: meta(4, 1) });
      expect(ofType(core.takeCommands(), 'purgeLog')).to.deep.equal([]);
      expect(core.status().snapshotIndex).to.equal(4);
    });
  });

  describe('InstallSnapshot on a follower', () => {
    it('stores each chunk first, answers it once stored, and installs on the last: a log that matches keeps the entries after the snapshot', () => {
      const core = follower(1, [1, 1, 1, 1, 1, 2, 2, 2], { term: 2 });
      core.takeCommands();
      const m = meta(6, 2);
      core.step({ type: 'installSnapshot', reqId: 1, req: installReq(2, m, { offset: 0, bytes: 6, done: false }) });
      let cmds = core.takeCommands();
      expect(ofType(cmds, 'storeSnapshotChunk').map((c) => c.reqId)).to.deep.equal([1]);
      expect(replies(cmds), 'not answered before storage holds the chunk').to.deep.equal([]);
      cmds = stepDurably(core, { type: 'snapshotChunkStored', reqId: 1, req: installReq(2, m, { offset: 0, bytes: 6, done: false }) });
      expect(replies(cmds)).to.deep.equal([{ type: 'installSnapshotResponse', term: 2 }]);
      expect(core.status().snapshotIndex).to.equal(0);
      const last = installReq(2, m, { offset: 6, bytes: 4, done: true });
      core.step({ type: 'installSnapshot', reqId: 2, req: last });
      core.takeCommands();
      cmds = stepDurably(core, { type: 'snapshotChunkStored', reqId: 2, req: last });
      expect(ofType(cmds, 'restoreSnapshot').map((c) => c.meta.id)).to.deep.equal([m.id]);
      expect(ofType(cmds, 'resetLog')).to.deep.equal([]);
      expect(replies(cmds)).to.deep.equal([{ type: 'installSnapshotResponse', term: 2 }]);
      expect(core.status()).to.include({ snapshotIndex: 6, commitIndex: 6, lastApplied: 6, lastLogIndex: 8, currentLeader: 2 });
      expect(core.entries(i(7), i(9))!.map((e) => e.term)).to.deep.equal([2, 2]);
    });

    it('a log that contradicts the snapshot is dropped whole; storage is told to drop it too', () => {
      const core = follower(1, [1, 1, 1, 1, 1, 1, 1, 1], { term: 1 });
      core.takeCommands();
      const m = meta(7, 3);
      const req = installReq(3, m, { offset: 0, bytes: 10, done: true });
      const first = stepDurably(core, { type: 'installSnapshot', reqId: 5, req });
      expect(core.status().currentTerm, 'a higher term is adopted first').to.equal(3);
      expect(ofType(first, 'storeSnapshotChunk')).to.have.length(1);
      const cmds = stepDurably(core, { type: 'snapshotChunkStored', reqId: 5, req });
      expect(ofType(cmds, 'resetLog')).to.deep.equal([{ type: 'resetLog', snapshotIndex: 7 }]);
      expect(replies(cmds), 'answered once the term is durable').to.deep.equal([{ type: 'installSnapshotResponse', term: 3 }]);
      expect(core.status()).to.include({ lastLogIndex: 7, lastLogTerm: 3, commitIndex: 7, snapshotIndex: 7 });
      expect(core.termAt(i(8))).to.equal(null);
      // The log goes on from the snapshot.
      const next = stepDurably(core, { type: 'appendEntries', reqId: 6, req: appendReq(2, 3, 7, 3, [normalEntry(8, 3)], 8) });
      expect(replies(next).at(-1)).to.deep.include({ success: true, matchIndex: 8 });
    });

    it('a snapshot that covers nothing new (at or below our commit index) is answered at once and never stored (it would replace a newer one)', () => {
      const core = follower(1, [1, 1, 1, 1], { term: 1, lastApplied: 4 });
      core.takeCommands();
      const req = installReq(1, meta(3, 1), { offset: 0, bytes: 10, done: true });
      const cmds = stepDurably(core, { type: 'installSnapshot', reqId: 1, req });
      expect(ofType(cmds, 'storeSnapshotChunk')).to.deep.equal([]);
      expect(ofType(cmds, 'restoreSnapshot')).to.deep.equal([]);
      expect(replies(cmds)).to.deep.equal([{ type: 'installSnapshotResponse', term: 1 }]);
      expect(core.status()).to.include({ snapshotIndex: 0, commitIndex: 4, lastLogIndex: 4 });
    });

    it('a chunk of a stale term is refused with our term, and nothing is stored', () => {
      const core = follower(1, [1, 2], { term: 5 });
      core.takeCommands();
      core.step({ type: 'installSnapshot', reqId: 9, req: installReq(4, meta(2, 2), { offset: 0, bytes: 10, done: true }) });
      const cmds = core.takeCommands();
      expect(ofType(cmds, 'storeSnapshotChunk')).to.deep.equal([]);
      expect(replies(cmds)).to.deep.equal([{ type: 'installSnapshotResponse', term: 5 }]);
    });

    it('a leader of the same term sending a snapshot is bad input: refused, nothing stored', () => {
      const core = follower(1, [1, 1, 1]);
      electLeader(core);
      const term = core.status().currentTerm;
      core.step({ type: 'installSnapshot', reqId: 3, req: installReq(term, meta(2, 1), { offset: 0, bytes: 10, done: true }) });
      const cmds = core.takeCommands();
      expect(ofType(cmds, 'storeSnapshotChunk')).to.deep.equal([]);
      expect(core.status().role).to.equal('Leader');
    });

    it('a candidate that receives a snapshot of its term recognises the leader', () => {
      const core = follower(1, [1, 1, 1]);
      stepDurably(core, { type: 'tick', nowMs: core.nextDeadlineMs()! });
      expect(core.status().role).to.equal('Candidate');
      const term = core.status().currentTerm;
      core.step({ type: 'installSnapshot', reqId: 1, req: installReq(term, meta(5, term), { offset: 0, bytes: 10, done: true }) });
      expect(core.status()).to.include({ role: 'Follower', currentLeader: 2 });
      expect(ofType(core.takeCommands(), 'storeSnapshotChunk')).to.have.length(1);
    });

    it('the snapshot brings its config: a follower that had none learns the membership', () => {
      const core = makeCore({ id: 4, entries: [] });
      core.takeCommands();
      const m = meta(20, 2, membership(1, 2, 3, 4), 15);
      const req = installReq(2, m, { offset: 0, bytes: 10, done: true });
      core.step({ type: 'installSnapshot', reqId: 1, req });
      core.takeCommands();
      stepDurably(core, { type: 'snapshotChunkStored', reqId: 1, req });
      expect(core.status().membership).to.deep.equal(membership(1, 2, 3, 4));
      expect(core.status().membershipIndex).to.equal(15);
      expect(core.status().role).to.equal('Follower');
    });
  });

  describe('AppendEntries against a log that starts after a snapshot', () => {
    it('entries at or below the snapshot are committed here, so they match: they are skipped, the rest appended', () => {
      const core = makeCore({ id: 1, term: 3, snapshot: meta(50, 3), entries: after(51, 52, 3) });
      core.takeCommands();
      // The leader thinks we are at 45: it sends 46..54.
      const cmds = stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(2, 3, 45, 3, after(46, 54, 3), 54) });
      expect(replies(cmds)).to.deep.equal([{ type: 'appendEntriesResponse', term: 3, success: true, matchIndex: 54, conflict: null }]);
      expect(core.status()).to.include({ lastLogIndex: 54, commitIndex: 54 });
      // A heartbeat anchored below the snapshot succeeds without changing anything.
      const hb = stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(2, 3, 10, 1, [], 54) });
      expect(replies(hb)).to.deep.equal([{ type: 'appendEntriesResponse', term: 3, success: true, matchIndex: 10, conflict: null }]);
    });
  });
});
