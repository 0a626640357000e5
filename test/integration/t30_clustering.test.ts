/**
 * Leader failover and rejoin (actix-raft's clustering test, openraft's t30; paper 5.2-5.4): an
 * isolated leader is replaced by a leader of a strictly higher term elected by the other two, which
 * commit without it; once the old leader is back it follows the new one in the new term, drops what
 * it accepted alone, and catches up to the same state machine.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import { ProposalDroppedError } from '../../actors/raft/core/errors';
import type { ClientWriteResponse } from '../../actors/raft/raft-actor';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { PLACEMENTS, converge, digests, rejectsWith, startKvCluster, waitUntil } from './helpers';

for (const placement of PLACEMENTS) {
  describe(`t30 clustering (${placement})`, function () {
    this.timeout(90_000);
    let cluster: LocalCluster | null = null;
    afterEach(async () => { await cluster?.shutdown(); cluster = null; });

    it('an isolated leader is replaced in a higher term; on rejoining it follows, drops its lone write and catches up', async () => {
      const c = cluster = await startKvCluster({ size: 3, placement });
      const put = (key: string, value: string) => encodeKv({ op: 'put', key, value });

      // 1. A leader is elected and the cluster commits through it.
      const oldLeader = await c.waitForLeader({ timeoutMs: 15_000 });
      const oldTerm = (await c.node(oldLeader).currentMetrics()).currentTerm;
      let last: ClientWriteResponse | undefined;
      for (let i = 0; i < 20; i++) last = await c.node(oldLeader).clientWrite(put(`before-${i}`, `${i}`), { timeoutMs: 15_000 });
      await c.waitForApplied(last!.index, { timeoutMs: 15_000 });
      const lastBefore = last!.index;

      // 2. Isolate it. It still believes it leads (it cannot hear otherwise) and accepts a write
      // it can never commit alone.
      c.isolate(oldLeader);
      const lone = c.node(oldLeader).clientWrite(put('lone-write', 'must-not-survive'), { timeoutMs: 30_000 });
      lone.catch(() => undefined); // observed below

      // 3. The other two elect a new leader in a strictly higher term and commit without it.
      const others = c.ids.filter((id) => id !== oldLeader);
      const newLeader = await c.waitForLeader({ among: others, notIn: [oldLeader], timeoutMs: 15_000 });
      const newMetrics = await c.node(newLeader).currentMetrics();
      expect(newLeader).to.not.equal(oldLeader);
      expect(newMetrics.currentTerm).to.be.greaterThan(oldTerm);
      for (let i = 0; i < 20; i++) last = await c.node(newLeader).clientWrite(put(`during-${i}`, `${i}`), { timeoutMs: 15_000 });
      expect(last!.term).to.equal(newMetrics.currentTerm);
      await c.waitForApplied(last!.index, { among: others, timeoutMs: 15_000 });
      for (const id of others) expect(await c.node(id).query({ q: 'get', key: 'during-19' })).to.equal('19');
      // The isolated node has applied none of it.
      const cut = await c.node(oldLeader).currentMetrics();
      expect(cut.lastApplied).to.be.below(last!.index);
      expect(await c.node(oldLeader).query({ q: 'get', key: 'during-0' })).to.equal(null);

      // 4. Restore it: it becomes a Follower of the new leader in the new term...
      c.restore(oldLeader);
      const rejoined = await waitUntil(c.node(oldLeader), (m) => m.state === 'Follower' && m.currentLeader === newLeader,
        `node ${oldLeader} follows node ${newLeader}`, 15_000);
      expect(rejoined.currentTerm).to.equal(newMetrics.currentTerm);
      expect(await c.waitForLeader({ timeoutMs: 15_000 })).to.equal(newLeader);

      // 5. ...its lone write is reported as dropped (definitely not applied; safe to retry)...
      const dropped = await rejectsWith(lone, ProposalDroppedError, 'the write accepted by the isolated leader');
      // It had been given the slot after the last write of the old term, which the new leader reused.
      expect(dropped.index).to.equal(lastBefore + 1);

      // 6. ...and it catches up: applied through the leader's commit index, identical KV digest.
      const { commitIndex } = await converge(c);
      const m = await c.node(oldLeader).currentMetrics();
      expect(m.lastApplied).to.be.at.least(commitIndex);
      const ds = await digests(c);
      expect(ds.map((d) => d.sha256), 'digests of nodes 1..3').to.deep.equal([ds[0].sha256, ds[0].sha256, ds[0].sha256]);
      expect(ds.map((d) => d.keys)).to.deep.equal([40, 40, 40]);
      for (const id of c.ids) expect(await c.node(id).query({ q: 'get', key: 'lone-write' }), `node ${id}`).to.equal(null);

      // 7. The healed cluster still commits, on every node.
      const after = await c.node(newLeader).clientWrite(put('after', 'healed'), { responseMode: 'applied', timeoutMs: 15_000 });
      await c.waitForApplied(after.index, { timeoutMs: 15_000 });
      for (const id of c.ids) expect(await c.node(id).query({ q: 'get', key: 'after' })).to.equal('healed');
    });

    it('a minority partition cannot elect a leader or commit; the majority keeps going (pre-vote off: the cut-off node campaigns)', async () => {
      const c = cluster = await startKvCluster({ size: 3, placement, config: { preVote: false } });
      const leader = await c.waitForLeader({ timeoutMs: 15_000 });
      const follower = c.ids.find((id) => id !== leader)!;
      const startTerm = (await c.node(leader).currentMetrics()).currentTerm;

      // Cut a follower off: without pre-vote it times out and campaigns, but a vote of one is not a majority of three.
      c.isolate(follower);
      const campaigning = await waitUntil(c.node(follower), (m) => m.currentTerm > startTerm && m.state === 'Candidate',
        `node ${follower} campaigns`, 15_000);
      expect(campaigning.currentLeader).to.equal(null);

      // The majority (leader + the other follower) keeps its leader and commits.
      const majority = c.ids.filter((id) => id !== follower);
      const res = await c.node(leader).clientWrite(encodeKv({ op: 'put', key: 'majority', value: 'ok' }), { timeoutMs: 15_000 });
      await c.waitForApplied(res.index, { among: majority, timeoutMs: 15_000 });
      expect((await c.node(leader).currentMetrics()).state).to.equal('Leader');
      const cut = await c.node(follower).currentMetrics();
      expect(cut.state).to.not.equal('Leader');
      expect(cut.lastApplied).to.be.below(res.index);

      // Healed, everyone converges on one leader and the same data, whatever the terms became.
      c.restore(follower);
      const { leader: healedLeader } = await converge(c);
      const healedTerm = (await c.node(healedLeader).currentMetrics()).currentTerm;
      expect(healedTerm).to.be.at.least(startTerm);
      for (const id of c.ids) expect(await c.node(id).query({ q: 'get', key: 'majority' }), `node ${id}`).to.equal('ok');
      const ds = await digests(c);
      expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
    });

    it('pre-vote (the default): a cut-off follower never raises its term, and on its return the leader and term stay', async () => {
      const c = cluster = await startKvCluster({ size: 3, placement });
      const leader = await c.waitForLeader({ timeoutMs: 15_000 });
      const follower = c.ids.find((id) => id !== leader)!;
      const start = await c.node(leader).currentMetrics();
      const before = await c.node(follower).currentMetrics();

      c.isolate(follower);
      // Its election timer fires again and again; each time it asks for pre-votes, and nobody answers.
      const asked = await waitUntil(c.node(follower), (m) => m.preVoteRounds >= before.preVoteRounds + 3, `node ${follower} asks for pre-votes 3 times`, 15_000);
      expect(asked.currentTerm, 'the cut-off node kept its term').to.equal(start.currentTerm);
      expect(asked.state).to.equal('Follower');
      expect(asked.electionsStarted, 'no real election without a quorum of pre-votes').to.equal(before.electionsStarted);
      const res = await c.node(leader).clientWrite(encodeKv({ op: 'put', key: 'while-away', value: 'x' }), { timeoutMs: 15_000 });

      c.restore(follower);
      await c.waitForApplied(res.index, { timeoutMs: 15_000 });
      const after = await c.node(leader).currentMetrics();
      expect(after.state, 'the leader was not deposed').to.equal('Leader');
      expect(after.currentTerm, 'no election happened').to.equal(start.currentTerm);
      expect((await c.node(follower).currentMetrics()).currentLeader).to.equal(leader);
    });
  });
}
