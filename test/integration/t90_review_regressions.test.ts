// Regressions for faults a review of the write path found (openraft's t90_ naming: one test per
// issue found). Each test fails on the code before the fix.
import { expect } from 'chai';
import { LocalCluster } from '../../actors/local-cluster';
import { MalformedMessageError, ProposalDroppedError } from '../../actors/raft/core/errors';
import { MAX_PAYLOAD_BYTES } from '../../actors/raft/codec';
import { encodeKv, KV_MODULE } from '../../examples/kv/kv-state-machine';

const KV = { module: KV_MODULE, export: 'createKv', args: {} } as const;

for (const placement of ['local', 'worker'] as const) {
  describe(`t90 review regressions (${placement})`, function () {
    this.timeout(60_000);
    let cluster: LocalCluster | null = null;
    afterEach(async () => { await cluster?.shutdown(); cluster = null; });

    it('a burst larger than a stream buffer plus one fetch span commits every write (stream used to stall after one span)', async () => {
      // Long election timeouts: the subject is the stream, and on a loaded machine a 6000-write burst
      // can delay heartbeats past the default 150-300 ms, depose the leader and drop writes (seen in CI).
      cluster = await LocalCluster.start({ size: 3, seed: 3, placement, stateMachine: KV, config: { electionTimeoutMinMs: 3000, electionTimeoutMaxMs: 6000 } });
      const leader = await cluster.waitForLeader();
      // 6000 writes queued in one turn: one propose, far beyond the default buffer (2400) + span (2400).
      const writes = Array.from({ length: 6000 }, (_, i) => cluster!.node(leader).clientWrite(encodeKv({ op: 'put', key: `k${i}`, value: 'v' }), { timeoutMs: 20_000 }));
      const results = await Promise.all(writes);
      const last = Math.max(...results.map((r) => r.index));
      await cluster.waitForApplied(last);
      for (const n of cluster.all()) expect(await n.query({ q: 'size' })).to.equal(6000);
    });

    it('a partitioned follower far behind catches up from storage once restored (lagging mode)', async () => {
      // A small buffer and payload make 300 entries several fetch spans of lagging reads.
      cluster = await LocalCluster.start({ size: 3, seed: 5, placement, stateMachine: KV, config: { maxPayloadEntries: 10, maxInflightAppends: 2, replicationLagThreshold: 20 } });
      const leader = await cluster.waitForLeader();
      const lagger = cluster.ids.find((id) => id !== leader)!;
      // Fully isolated: cutting one direction only would let its campaigns (no pre-vote yet) depose the leader mid-test.
      cluster.isolate(lagger);
      let last = 0;
      for (let i = 0; i < 300; i++) last = (await cluster.node(leader).clientWrite(encodeKv({ op: 'put', key: `k${i}`, value: 'v' }))).index;
      cluster.restore(lagger);
      await cluster.waitForApplied(last, { among: [lagger] });
      expect(await cluster.node(lagger).query({ q: 'size' })).to.equal(300);
    });

    it('writes accepted by a leader that lost its term fail with ProposalDroppedError once their slots are committed with other entries', async () => {
      cluster = await LocalCluster.start({ size: 3, seed: 7, placement, stateMachine: KV });
      const old = await cluster.waitForLeader();
      await cluster.waitForApplied(1);
      cluster.isolate(old);
      const stranded = Array.from({ length: 10 }, (_, i) => cluster!.node(old).clientWrite(encodeKv({ op: 'put', key: `s${i}`, value: 'v' }), { timeoutMs: 20_000 })
        .then(() => null, (e: Error) => e));
      const others = cluster.ids.filter((id) => id !== old);
      const next = await cluster.waitForLeader({ among: others, notIn: [old] });
      await cluster.node(next).clientWrite(encodeKv({ op: 'put', key: 'after', value: 'v' }));
      cluster.restore(old);
      // Their outcome is decided only when the new leader commits past every slot they were given.
      for (let i = 0; i < 12; i++) await cluster.node(next).clientWrite(encodeKv({ op: 'put', key: `after${i}`, value: 'v' }));
      const outcomes = await Promise.all(stranded);
      for (const e of outcomes) expect(e).to.be.instanceOf(ProposalDroppedError);
      for (const id of cluster.ids) expect(await cluster.node(id).query({ q: 'get', key: 's0' })).to.equal(null);
    });

    it('a malformed vote response is dropped and the node keeps running', async () => {
      cluster = await LocalCluster.start({ size: 3, seed: 9, placement, stateMachine: KV });
      const leader = await cluster.waitForLeader();
      const victim = cluster.ids.find((id) => id !== leader)!;
      cluster.system.ref(`n${victim}/raft`).tell({ type: 'voteResponse', from: leader, bytes: Uint8Array.of(42) });
      const { index } = await cluster.node(leader).clientWrite(encodeKv({ op: 'put', key: 'k', value: 'v' }));
      await cluster.waitForApplied(index);
      expect(cluster.node(victim).state).to.equal('running');
    });

    it('a payload over the codec limit is refused at the leader and nobody fails', async () => {
      cluster = await LocalCluster.start({ size: 3, seed: 11, placement, stateMachine: KV });
      const leader = await cluster.waitForLeader();
      const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
      const err = await cluster.node(leader).clientWrite(big).then(() => null, (e: Error) => e);
      expect(err).to.be.instanceOf(MalformedMessageError);
      if (placement === 'local') {
        // The Raft actor refuses it too, for callers that reach it without the handle (no copy on one thread).
        const direct = await cluster.system.ref(`n${leader}/raft`).ask({ type: 'clientWrite', payload: big, responseMode: 'committed' }).then(() => null, (e: Error) => e);
        expect(direct).to.be.instanceOf(MalformedMessageError);
      }
      const now = await cluster.waitForLeader();
      const { index } = await cluster.node(now).clientWrite(encodeKv({ op: 'put', key: 'k', value: 'v' }));
      await cluster.waitForApplied(index);
      for (const n of cluster.all()) expect(n.state).to.equal('running');
    });
  });
}
