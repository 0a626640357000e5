/**
 * A single-node cluster (actix-raft's singlenode test, openraft's t10): a pristine node waits as a
 * NonVoter; InitWithConfig with itself alone makes it leader without any other vote; its first
 * entry is the config; writes commit and apply on it alone; and a node cannot be initialized twice.
 *
 * The tests of one describe share one node and run in order (a worker node costs seconds to
 * start); each states the state it starts from.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import type { RaftNode } from '../../actors/node';
import type { RaftMetrics } from '../../actors/metrics/metrics';
import { NotAllowedError } from '../../actors/raft/core/errors';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { PLACEMENTS, digests, rejectsWith, shutdownAndCheck, startKvCluster, storedEntries, waitUntil } from './helpers';

for (const placement of PLACEMENTS) {
  describe(`t10 single node (${placement})`, function () {
    this.timeout(60_000);
    let cluster: LocalCluster;

    before(async () => { cluster = await startKvCluster({ size: 1, placement, init: false }); });
    after(async () => { await cluster?.shutdown(); });

    it('a pristine node is a NonVoter in term 0 with no leader and an empty log', async () => {
      const m = await cluster.node(1).currentMetrics();
      expect(m).to.include({ id: 1, state: 'NonVoter', currentTerm: 0, currentLeader: null, lastLogIndex: 0, commitIndex: 0, lastApplied: 0 });
      // A NonVoter never campaigns. Two periodic metrics updates are a full metrics interval apart
      // (1 s), more than the longest election timeout (300 ms): still passive then.
      const later = await nthMetricsUpdate(cluster.node(1), 2);
      expect(later).to.include({ state: 'NonVoter', currentTerm: 0, currentLeader: null });
    });

    it('initWithConfig([1]) makes it leader of term 1 at once; its log index 1 is the config entry', async () => {
      const node = cluster.node(1);
      await node.initWithConfig([1]);
      const m = await waitUntil(node, (x) => x.state === 'Leader' && x.commitIndex >= 1, 'Leader with the config committed', 10_000);
      // Its own vote is a majority of one: no second election, so the term is 1.
      expect(m).to.include({ state: 'Leader', currentTerm: 1, currentLeader: 1 });
      expect(m.membership.members).to.deep.equal([1]);
      const [first] = await storedEntries(cluster, 1, 1, 2);
      expect(first).to.include({ kind: 'config', index: 1, term: 1 });
      expect(first.kind === 'config' && first.membership.members).to.deep.equal([1]);
      await waitUntil(node, (x) => x.lastApplied >= 1, 'config entry applied');
    });

    it('a write answered in applied mode carries the KV result; lastApplied reaches it', async () => {
      const node = cluster.node(1);
      const put = await node.clientWrite(encodeKv({ op: 'put', key: 'greeting', value: 'hello' }), { responseMode: 'applied', timeoutMs: 10_000 });
      expect(put).to.deep.include({ index: 2, term: 1, result: { ok: true, value: null } });
      const get = await node.clientWrite(encodeKv({ op: 'get', key: 'greeting' }), { responseMode: 'applied', timeoutMs: 10_000 });
      expect(get).to.deep.include({ index: 3, term: 1, result: { ok: true, value: 'hello' } });
      const m = await node.currentMetrics();
      expect(m.lastApplied).to.be.at.least(3);
      expect(m.commitIndex).to.be.at.least(3);
      expect(await node.query({ q: 'get', key: 'greeting' })).to.equal('hello');
    });

    it('a write in the default committed mode answers with its index and no result', async () => {
      const node = cluster.node(1);
      const before = await node.currentMetrics();
      const res = await node.clientWrite(encodeKv({ op: 'append', key: 'greeting', value: ', world' }), { timeoutMs: 10_000 });
      expect(res.index).to.equal(before.lastLogIndex + 1);
      expect(res.term).to.equal(1);
      expect(res).to.not.have.property('result');
      await waitUntil(node, (m) => m.lastApplied >= res.index, `index ${res.index} applied`);
      expect(await node.query({ q: 'get', key: 'greeting' })).to.equal('hello, world');
      const [d] = await digests(cluster);
      expect(d.keys).to.equal(1);
      expect(d.appliedIndex).to.be.at.least(res.index);
    });

    it('a second initWithConfig is refused with NotAllowedError and changes nothing', async () => {
      const node = cluster.node(1);
      const before = await node.currentMetrics();
      const err = await rejectsWith(node.initWithConfig([1]), NotAllowedError, 'second initWithConfig');
      expect(err.message).to.match(/not a pristine NonVoter|already formed/);
      const after = await node.currentMetrics();
      expect(after).to.include({ state: 'Leader', currentTerm: before.currentTerm, lastLogIndex: before.lastLogIndex });
      // Still serving writes.
      const res = await node.clientWrite(encodeKv({ op: 'put', key: 'after-reinit', value: 'ok' }), { responseMode: 'applied', timeoutMs: 10_000 });
      expect(res.index).to.equal(before.lastLogIndex + 1);
    });

    it('shutdown stops every actor and worker thread of the system', async () => {
      const before = await cluster.system.stats();
      expect(before.actors).to.be.greaterThan(0);
      // 'worker': the node's Raft, storage and Apply threads; 'local': none.
      expect(before.workers).to.equal(placement === 'worker' ? 3 : 0);
      expect(cluster.system.arbiterNames()).to.have.length(placement === 'worker' ? 3 : 0);
      await shutdownAndCheck(cluster);
      expect(cluster.node(1).state).to.equal('stopped');
    });
  });
}

/** The n-th metrics update published after now (the Raft actor publishes one every metricsIntervalMs). */
function nthMetricsUpdate(node: RaftNode, n: number, timeoutMs = 10_000): Promise<RaftMetrics> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => { off(); reject(new Error(`node ${node.id}: fewer than ${n} metrics updates in ${timeoutMs} ms`)); }, timeoutMs);
    const off = node.onMetrics((m) => {
      if (++seen < n) return;
      clearTimeout(timer);
      off();
      resolve(m);
    });
  });
}
