/**
 * Cluster formation (actix-raft's initialization test, openraft's t20; seeds 000 and 004): pristine
 * nodes wait as NonVoters; bad member lists are refused without changing anything; InitWithConfig
 * on every node in parallel forms one cluster with one leader whose first entry is the config.
 *
 * The tests of one describe share one 3-node cluster and run in order (a worker cluster costs
 * seconds to start); each states the state it starts from.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import { InoperableConfigError, MalformedMessageError, NotAllowedError } from '../../actors/raft/core/errors';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { PLACEMENTS, digests, rejectsWith, startKvCluster, storedEntries, waitUntil } from './helpers';

for (const placement of PLACEMENTS) {
  describe(`t20 initialization (${placement})`, function () {
    this.timeout(60_000);
    let cluster: LocalCluster;

    before(async () => { cluster = await startKvCluster({ size: 3, placement, init: false }); });
    after(async () => { await cluster?.shutdown(); });

    const expectPristine = async () => {
      for (const n of cluster.all()) {
        const m = await n.currentMetrics();
        expect(m, `node ${n.id}`).to.include({ state: 'NonVoter', currentTerm: 0, currentLeader: null, lastLogIndex: 0, commitIndex: 0 });
        expect(m.membership.members, `node ${n.id} membership`).to.deep.equal([n.id]);
      }
    };

    it('three pristine nodes are NonVoters in term 0 that know only themselves', async () => {
      await expectPristine();
      // Still no leader once every node has published its first metrics.
      const published = await Promise.all(cluster.all().map((n) => n.waitForMetrics(() => true, { what: 'first metrics' })));
      for (const m of published) expect(m.currentLeader).to.equal(null);
    });

    it('an empty member list is refused (MalformedMessageError) and changes nothing', async () => {
      for (const n of cluster.all()) {
        const err = await rejectsWith(n.initWithConfig([]), Error, `node ${n.id} initWithConfig([])`);
        // RaftNode refuses [] before it reaches the core (which would say InoperableConfigError).
        expect(err, err.message).to.satisfy((e: Error) => e instanceof MalformedMessageError || e instanceof InoperableConfigError);
      }
      await expectPristine();
    });

    it('a member list with a duplicate is refused with InoperableConfigError naming it, changing nothing', async () => {
      for (const n of cluster.all()) {
        const err = await rejectsWith(n.initWithConfig([1, 2, 3, n.id]), InoperableConfigError, `node ${n.id} initWithConfig with a duplicate`);
        expect(err.message).to.match(new RegExp(`node ${n.id} is listed twice`));
        expect(err.membership.members).to.deep.equal([1, 2, 3, n.id]);
      }
      await expectPristine();
    });

    it('a member list without the node itself is refused with InoperableConfigError, changing nothing', async () => {
      for (const n of cluster.all()) {
        const others = cluster.ids.filter((id) => id !== n.id);
        const err = await rejectsWith(n.initWithConfig(others), InoperableConfigError, `node ${n.id} initWithConfig(${others})`);
        expect(err.message).to.match(new RegExp(`this node \\(${n.id}\\) is not among the members`));
      }
      await expectPristine();
    });

    it('a member list with an id that is not a positive integer is refused, changing nothing', async () => {
      for (const bad of [[1, 2, 0], [1, 2.5, 3], [1, -3, 2]]) {
        const err = await rejectsWith(cluster.node(1).initWithConfig(bad), Error, `initWithConfig(${JSON.stringify(bad)})`);
        expect(err.message).to.match(/NodeId|node id/);
      }
      await expectPristine();
    });

    it('initWithConfig([1,2,3]) on all nodes in parallel forms one cluster with one agreed leader', async () => {
      await Promise.all(cluster.all().map((n) => n.initWithConfig([1, 2, 3])));
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const leaderMetrics = await cluster.node(leader).currentMetrics();
      // Every node agrees on the leader and the term, and knows all three members.
      for (const n of cluster.all()) {
        const m = await waitUntil(n, (x) => x.currentLeader === leader && x.commitIndex >= 1, `node ${n.id} follows ${leader} with the config committed`);
        expect(m.currentTerm, `node ${n.id} term`).to.equal(leaderMetrics.currentTerm);
        expect(m.state, `node ${n.id} role`).to.equal(n.id === leader ? 'Leader' : 'Follower');
        expect([...m.membership.members].sort(), `node ${n.id} members`).to.deep.equal([1, 2, 3]);
        expect(m.membership.membersAfterConsensus).to.equal(null);
      }
      const roles = await Promise.all(cluster.all().map(async (n) => (await n.currentMetrics()).state));
      expect(roles.filter((r) => r === 'Leader')).to.have.length(1);
      // The leader's first entry records the config it was elected under (seed 000), on every node.
      for (const id of cluster.ids) {
        const [first] = await storedEntries(cluster, id, 1, 2);
        expect(first, `node ${id} log index 1`).to.include({ kind: 'config', index: 1 });
        expect(first.kind === 'config' && [...first.membership.members].sort()).to.deep.equal([1, 2, 3]);
        expect(first.term).to.be.at.most(leaderMetrics.currentTerm);
      }
    });

    it('the formed cluster commits a write on every node; a second initWithConfig is NotAllowed anywhere', async () => {
      const leader = await cluster.waitForLeader();
      const res = await cluster.node(leader).clientWrite(encodeKv({ op: 'put', key: 'formed', value: 'yes' }), { responseMode: 'applied', timeoutMs: 15_000 });
      expect(res.result).to.deep.equal({ ok: true, value: null });
      await cluster.waitForApplied(res.index, { timeoutMs: 15_000 });
      for (const n of cluster.all()) expect(await n.query({ q: 'get', key: 'formed' })).to.equal('yes');
      const ds = await digests(cluster);
      expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
      for (const n of cluster.all()) {
        await rejectsWith(n.initWithConfig([1, 2, 3]), NotAllowedError, `node ${n.id} second initWithConfig`);
      }
      expect(await cluster.waitForLeader()).to.equal(leader);
    });
  });
}
