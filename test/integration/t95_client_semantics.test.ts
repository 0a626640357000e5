/**
 * Client semantics and the Raft extensions (issue 7) on running clusters: linearizable reads
 * (read-index, batched; lease; through the log), manual triggers, leader transfer, check-quorum,
 * forwarding to the leader, and exactly-once client sessions, including a retried write under a
 * leader change.
 *
 * The tests of one describe share one 3-node cluster and run in order; those that move the leader
 * come after those that do not, and each finds the leader it needs.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import {
  ForwardToLeaderError, LeaderTransferError, LeaderTransferInProgressError, NodeNotLeaderError, NotAllowedError,
} from '../../actors/raft/core/errors';
import { decodeEnvelope, SessionExpiredError, SessionSerialError } from '../../actors/apply/sessions';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { PLACEMENTS, rejectsWith, startKvCluster, storedEntries, waitUntil } from './helpers';

const put = (key: string, value: string) => encodeKv({ op: 'put', key, value });
const append = (key: string, value: string) => encodeKv({ op: 'append', key, value });

for (const placement of PLACEMENTS) {
  describe(`t95 client semantics (${placement})`, function () {
    this.timeout(90_000);

    describe('reads, triggers, transfer and check-quorum', () => {
      let c: LocalCluster;
      // Election timeouts well above a loaded CI machine's pauses: these tests assert that nothing
      // but what they do moves the leader or the term.
      before(async () => { c = await startKvCluster({ size: 3, placement, config: { electionTimeoutMinMs: 500, electionTimeoutMaxMs: 1000, heartbeatIntervalMs: 50 } }); });
      after(async () => { await c?.shutdown(); });

      it('a linearizable read on the leader sees the latest acknowledged write; a follower refuses it, naming the leader; a stale read answers there at once', async () => {
        const leader = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader)!;
        await c.node(leader).clientWrite(put('r1', 'v1'));
        expect(await c.node(leader).clientRead({ q: 'get', key: 'r1' })).to.equal('v1');
        const e = await rejectsWith(c.node(follower).clientRead({ q: 'get', key: 'r1' }), ForwardToLeaderError, 'a read on a follower');
        expect(e.leaderId).to.equal(leader);
        const stale = await c.node(follower).clientRead<string | null>({ q: 'get', key: 'r1' }, { consistency: 'stale' });
        expect(stale === null || stale === 'v1').to.equal(true);
        const idx = await c.node(leader).ensureLinearizable();
        expect(idx.term).to.equal((await c.node(leader).currentMetrics()).currentTerm);
        expect(idx.readIndex).to.be.at.least((await c.node(leader).currentMetrics()).commitIndex - 0);
      });

      it('300 concurrent linearizable reads are confirmed by far fewer quorum rounds, and each sees every write acknowledged before it', async () => {
        const leader = await c.waitForLeader();
        const node = c.node(leader);
        await node.clientWrite(put('batch', 'before'));
        const before = (await node.currentMetrics()).readIndexRounds;
        const values = await Promise.all(Array.from({ length: 300 }, () => node.clientRead<string>({ q: 'get', key: 'batch' })));
        const rounds = (await node.currentMetrics()).readIndexRounds - before;
        expect(values.every((v) => v === 'before')).to.equal(true);
        expect(rounds, 'quorum rounds for 300 reads').to.be.within(1, 60);
      });

      it('lease and log reads see the latest write; a log read appends a blank entry', async () => {
        const leader = await c.waitForLeader();
        const node = c.node(leader);
        await node.clientWrite(put('lease', 'x'));
        expect(await node.clientRead({ q: 'get', key: 'lease' }, { consistency: 'lease' })).to.equal('x');
        await node.clientWrite(put('lease', 'y'));
        expect(await node.clientRead({ q: 'get', key: 'lease' }, { consistency: 'lease' })).to.equal('y');
        const last = (await node.currentMetrics()).lastLogIndex;
        expect(await node.clientRead({ q: 'get', key: 'lease' }, { consistency: 'log' })).to.equal('y');
        expect((await node.currentMetrics()).lastLogIndex).to.equal(last + 1);
        await rejectsWith(node.clientRead({ q: 'get', key: 'lease' }, { consistency: 'bogus' as never }), Error, 'an unknown consistency');
      });

      it('manual triggers: heartbeatNow confirms the leader; electNow is refused on the leader, and on a follower of a healthy leader it is a pre-vote round that changes nothing', async () => {
        const leader = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader)!;
        const term = (await c.node(leader).currentMetrics()).currentTerm;
        expect(await c.node(leader).heartbeatNow()).to.equal(term);
        await rejectsWith(c.node(follower).heartbeatNow(), ForwardToLeaderError, 'heartbeatNow on a follower');
        await rejectsWith(c.node(leader).electNow(), NotAllowedError, 'electNow on the leader');
        const rounds = (await c.node(follower).currentMetrics()).preVoteRounds;
        await c.node(follower).electNow();
        const m = await c.node(follower).currentMetrics();
        expect(m.preVoteRounds).to.be.at.least(rounds + 1);
        // The other voters hold the leader's lease: the pre-vote fails, nobody's term moves.
        expect(await c.node(leader).heartbeatNow()).to.equal(term);
        expect((await c.node(leader).currentMetrics()).state).to.equal('Leader');
        for (const id of c.ids) expect((await c.node(id).currentMetrics()).currentTerm, `term of node ${id}`).to.equal(term);
      });

      it('transferLeadership refuses misuse with typed errors', async () => {
        const leader = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader)!;
        const e = await rejectsWith(c.node(leader).transferLeadership(9), LeaderTransferError, 'a transfer to a stranger');
        expect(e.reason).to.equal('not-a-voter');
        await rejectsWith(c.node(follower).transferLeadership(leader), NodeNotLeaderError, 'a transfer asked of a follower');
        await rejectsWith(c.node(leader).transferLeadership(0), Error, 'a bad node id');
        await rejectsWith(c.node(leader).transferLeadership(follower, { timeoutMs: -1 }), Error, 'a bad timeout');
        expect(await c.node(leader).transferLeadership(leader)).to.deep.equal({ leader });
      });

      it('transferLeadership hands leadership to an up-to-date voter; writes during it are refused, then go to the new leader', async () => {
        const leader = await c.waitForLeader();
        const target = c.ids.find((id) => id !== leader)!;
        await c.node(leader).clientWrite(put('t', '1'));
        const transfer = c.node(leader).transferLeadership(target, { timeoutMs: 5_000 });
        // Asked right behind the transfer, on the same mailbox: refused, nothing appended.
        await rejectsWith(c.node(leader).clientWrite(put('t', 'during')), LeaderTransferInProgressError, 'a write during the transfer');
        expect(await transfer).to.deep.equal({ leader: target });
        await waitUntil(c.node(target), (m) => m.state === 'Leader', `node ${target} leads`);
        const res = await c.node(target).clientWrite(put('t', '2'));
        await c.waitForApplied(res.index);
        expect(await c.node(target).clientRead({ q: 'get', key: 't' })).to.equal('2');
        expect((await c.node(leader).currentMetrics()).state).to.equal('Follower');
      });

      it('a transfer to a voter that cannot catch up times out with LeaderTransferError, and the leader takes writes again', async () => {
        const leader = await c.waitForLeader();
        const target = c.ids.find((id) => id !== leader)!;
        c.isolate(target);
        try {
          await c.node(leader).clientWrite(put('behind', '1'));
          const e = await rejectsWith(c.node(leader).transferLeadership(target, { timeoutMs: 400 }), LeaderTransferError, 'a transfer to a cut-off node');
          expect(e.reason).to.equal('timeout');
          expect(e.caughtUp).to.equal(false);
          await c.node(leader).clientWrite(put('behind', '2'));
          expect((await c.node(leader).currentMetrics()).transferTarget).to.equal(null);
        } finally {
          c.restore(target);
        }
      });

      it('check-quorum: a leader cut off from every follower steps down, and the others elect a new one', async () => {
        const leader = await c.waitForLeader();
        const others = c.ids.filter((id) => id !== leader);
        c.isolate(leader);
        try {
          const before = (await c.node(leader).currentMetrics()).quorumLossStepDowns;
          const m = await waitUntil(c.node(leader), (x) => x.state !== 'Leader', `node ${leader} steps down`, 15_000);
          expect(m.currentLeader).to.equal(null);
          expect(m.quorumLossStepDowns).to.equal(before + 1);
          expect(m.leaseUntilMs).to.equal(null);
          const next = await c.waitForLeader({ among: others, timeoutMs: 15_000 });
          expect(next).to.not.equal(leader);
        } finally {
          c.restore(leader);
        }
        await c.waitForLeader({ timeoutMs: 15_000 });
      });
    });

    describe('forwarding and exactly-once sessions', () => {
      let c: LocalCluster;
      before(async () => { c = await startKvCluster({ size: 3, placement, forwardToLeader: true, sessions: true }); });
      after(async () => { await c?.shutdown(); });

      it('a follower forwards writes and linearizable reads to the leader; an applied write returns the leader state machine\'s result', async () => {
        const leader = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader)!;
        const res = await c.node(follower).clientWrite(put('f', '1'), { responseMode: 'applied' });
        expect(res.result).to.deep.equal({ ok: true, value: null });
        expect(await c.node(follower).clientRead({ q: 'get', key: 'f' })).to.equal('1');
        const cas = await c.node(follower).clientWrite(encodeKv({ op: 'cas', key: 'f', expected: 'nope', value: '2' }), { responseMode: 'applied' });
        expect(cas.result).to.have.property('ok', false);
        const idx = await c.node(follower).ensureLinearizable();
        expect((await c.node(follower).currentMetrics()).lastApplied).to.be.at.least(idx.readIndex);
      });

      it('a retried command of a session is applied once and answered with the first response; stale and unknown sessions are refused', async () => {
        const leader = await c.waitForLeader();
        const node = c.node(leader);
        const clientId = await node.registerSession();
        expect(clientId).to.be.a('number');
        const first = await node.clientWrite(append('s', 'a'), { session: { clientId, serial: 1 } });
        const again = await node.clientWrite(append('s', 'a'), { session: { clientId, serial: 1 } });
        expect(again.result).to.deep.equal(first.result);
        expect(again.index).to.be.above(first.index); // a second entry, not applied
        await node.clientWrite(append('s', 'b'), { session: { clientId, serial: 2 } });
        expect(await node.clientRead({ q: 'get', key: 's' })).to.equal('ab');
        const stale = await rejectsWith(node.clientWrite(append('s', 'a'), { session: { clientId, serial: 1 } }), SessionSerialError, 'a stale serial');
        expect(stale.serial).to.equal(1);
        const gone = await rejectsWith(node.clientWrite(append('s', 'z'), { session: { clientId: 987_654, serial: 1 } }), SessionExpiredError, 'an unknown session');
        expect(gone.clientId).to.equal(987_654);
        expect(await node.clientRead({ q: 'get', key: 's' })).to.equal('ab');
        await rejectsWith(node.clientWrite(append('s', 'z'), { session: { clientId, serial: 0 } }), Error, 'serial 0');
      });

      it('a session expires after its timeout of log time; its next command is refused and not applied', async () => {
        const leader = await c.waitForLeader();
        const node = c.node(leader);
        const clientId = await node.registerSession({ timeoutMs: 200 });
        await node.clientWrite(append('exp', 'a'), { session: { clientId, serial: 1 } });
        // Log time moves with the writes the leader stamps: write (without the session) until 300 ms have passed.
        const t0 = Date.now();
        for (let k = 0; Date.now() - t0 < 300 || k < 3; k++) await node.clientWrite(put('tick', String(k)));
        await rejectsWith(node.clientWrite(append('exp', 'b'), { session: { clientId, serial: 2 } }), SessionExpiredError, 'a command of an expired session');
        expect(await node.clientRead({ q: 'get', key: 'exp' })).to.equal('a');
      });

      it('a write retried under a leader change is applied exactly once: the retry on the new leader returns the original result', async () => {
        const leader = await c.waitForLeader();
        const node = c.node(leader);
        const clientId = await node.registerSession();
        await node.clientWrite(append('once', 'x'), { session: { clientId, serial: 1 } });
        // The first attempt of serial 2 is applied, but its answer never reaches the client (a
        // dropped connection, a client crash): to the client the outcome is unknown.
        const firstResult = (await node.clientWrite(append('once', 'y'), { session: { clientId, serial: 2 } })).result;
        // Leadership moves.
        const target = c.ids.find((id) => id !== leader)!;
        await node.transferLeadership(target, { timeoutMs: 5_000 });
        // The client retries serial 2, through any node: it is forwarded to the new leader.
        const retry = await c.node(leader).clientWrite(append('once', 'y'), { session: { clientId, serial: 2 } });
        expect(retry.result).to.deep.equal(firstResult);
        expect(retry.result).to.deep.equal({ ok: true, value: null });
        await c.waitForApplied(retry.index);
        for (const id of c.ids) expect(await c.node(id).clientRead({ q: 'get', key: 'once' }, { consistency: 'stale' }), `node ${id}`).to.equal('xy');
        // Both attempts are in the log; the state machine applied the second as a duplicate.
        const entries = await storedEntries(c, target, 1, retry.index + 1);
        const attempts = entries.filter((e) => {
          if (e.kind !== 'normal') return false;
          const env = decodeEnvelope(e.payload);
          return env.type === 'command' && env.clientId === clientId && env.serial === 2;
        });
        expect(attempts.length, 'entries of serial 2 in the log').to.equal(2);
      });

      it('a forwarded write waits for a leader to be known, and is answered ForwardToLeaderError (nothing appended) when none is by its deadline', async () => {
        const leader = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader)!;
        const before = (await c.node(follower).currentMetrics()).lastLogIndex;
        c.isolate(follower);
        try {
          // Its election timer fires: a pre-vote round forgets the leader, and no one answers.
          await waitUntil(c.node(follower), (m) => m.currentLeader === null, `node ${follower} forgets the leader`);
          const e = await rejectsWith(c.node(follower).clientWrite(put('lost', '1'), { timeoutMs: 3_000 }), ForwardToLeaderError, 'a forwarded write with no leader');
          expect(e.leaderId).to.equal(null);
          expect((await c.node(follower).currentMetrics()).lastLogIndex).to.equal(before);
        } finally {
          c.restore(follower);
        }
        await waitUntil(c.node(follower), (m) => m.currentLeader !== null, `node ${follower} hears the leader again`);
        const res = await c.node(follower).clientWrite(put('lost', '2'));
        await c.waitForApplied(res.index);
        expect(await c.node(follower).clientRead({ q: 'get', key: 'lost' })).to.equal('2');
      });

      it('a write sent through a follower while the leader it knows is cut off is carried to the next leader and applied once', async () => {
        const leader = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader)!;
        await waitUntil(c.node(follower), (m) => m.currentLeader === leader, `node ${follower} follows node ${leader}`);
        const value = `failover-${leader}-${follower}`;
        const termBefore = (await c.node(leader).currentMetrics()).currentTerm;
        c.isolate(leader);
        try {
          // The follower still believes in the old leader for an election timeout: its first send
          // never leaves (the link is down), and the write waits for the next leader instead of failing.
          const res = await c.node(follower).clientWrite(put('failover', value), { responseMode: 'applied', timeoutMs: 15_000 });
          const now = await c.waitForLeader({ among: c.ids.filter((id) => id !== leader), notIn: [leader] });
          expect(res.term, 'appended by a leader elected after the cut').to.be.above(termBefore);
          await c.waitForApplied(res.index, { among: c.ids.filter((id) => id !== leader) });
          expect(await c.node(follower).clientRead({ q: 'get', key: 'failover' }, { consistency: 'stale' })).to.equal(value);
          const entries = await storedEntries(c, now, 1, res.index + 1);
          const copies = entries.filter((e) => e.kind === 'normal' && Buffer.from(e.payload).includes(value));
          expect(copies.length, 'entries carrying the write').to.equal(1);
        } finally {
          c.restore(leader);
        }
        await waitUntil(c.node(leader), (m) => m.currentLeader !== null && m.currentLeader !== leader, `node ${leader} follows the new leader`);
      });

      it('session options are validated, and refused on a node without sessions', async () => {
        const leader = await c.waitForLeader();
        await rejectsWith(c.node(leader).clientWrite(put('v', '1'), { session: { clientId: 1.5, serial: 1 } }), Error, 'a fractional client id');
        await rejectsWith(c.node(leader).registerSession({ timeoutMs: 0 }), Error, 'a zero timeout');
      });
    });
  });
}

describe('t95 client semantics: options refused where they do not apply', function () {
  this.timeout(60_000);
  it('a write with a session on a node without sessions, and a lease read with checkQuorum off, are refused with NotAllowedError', async () => {
    const c = await startKvCluster({ size: 1, placement: 'local', config: { checkQuorum: false } });
    try {
      const leader = await c.waitForLeader();
      await rejectsWith(c.node(leader).clientWrite(put('k', 'v'), { session: { clientId: 1, serial: 1 } }), NotAllowedError, 'a session without the option');
      await rejectsWith(c.node(leader).registerSession(), NotAllowedError, 'registerSession without the option');
      await rejectsWith(c.node(leader).clientRead({ q: 'get', key: 'k' }, { consistency: 'lease' }), NotAllowedError, 'a lease read without check-quorum');
      expect(await c.node(leader).clientRead({ q: 'get', key: 'k' })).to.equal(null);
    } finally {
      await c.shutdown();
    }
  });
});
