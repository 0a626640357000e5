import { expect } from 'chai';
import { LocalCluster } from '../../actors/local-cluster';
import { encodeKv, KV_MODULE } from '../../examples/kv/kv-state-machine';

// DESIGN.md section 2: "A crashed storage or Raft actor fails the node stop-wise (it restarts from
// durable state, like a crashed process); a crashed replication stream or network actor is
// restarted with backoff."
for (const placement of ['local', 'worker'] as const) {
  describe(`t60 supervision (${placement})`, function () {
    this.timeout(60_000);
    let cluster: LocalCluster | null = null;
    afterEach(async () => { await cluster?.shutdown(); cluster = null; });

    const start = async () => {
      cluster = await LocalCluster.start({ size: 3, placement, stateMachine: { module: KV_MODULE, export: 'createKv', args: {} } });
      return cluster;
    };

    it('a crashed replication stream is restarted and replication carries on', async () => {
      const c = await start();
      const crashes: string[] = [];
      c.system.onCrash((id) => crashes.push(id));
      const leader = await c.waitForLeader();
      const follower = c.ids.find((id) => id !== leader)!;
      const streamId = `n${leader}/stream/${follower}`;
      await c.node(leader).clientWrite(encodeKv({ op: 'put', key: 'before', value: '1' }));
      // An unknown message makes the stream throw: a crash, as a bug in it would be.
      c.system.ref(streamId).tell({ type: 'not-a-stream-message' });
      const deadline = Date.now() + 10_000;
      while (!crashes.includes(streamId) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      expect(crashes).to.include(streamId);
      const { index } = await c.node(leader).clientWrite(encodeKv({ op: 'put', key: 'after', value: '2' }));
      await c.waitForApplied(index);
      expect(await c.node(follower).query({ q: 'get', key: 'after' })).to.equal('2');
      expect(c.node(leader).state).to.equal('running');
    });

    it('a crashed storage actor fails its node stop-wise; the rest of the cluster carries on', async () => {
      const c = await start();
      const leader = await c.waitForLeader();
      const failures: Error[] = [];
      const victim = c.node(leader);
      // Supervisor 'failed' fires after the node's actors and threads are stopped.
      const failed = new Promise<void>((resolve) => {
        const check = () => (victim.state === 'failed' ? resolve() : setTimeout(check, 5));
        check();
      });
      c.system.onCrash((id, err) => { if (id === `n${leader}/storage`) failures.push(err); });
      c.system.ref(`n${leader}/storage`).tell({ type: 'not-a-storage-message' });
      await failed;
      expect(failures).to.have.length(1);
      expect(failures[0].message).to.match(/unknown storage message/);
      expect(victim.state).to.equal('failed');
      expect(c.system.has(`n${leader}/raft`), 'the Raft actor of the failed node is stopped').to.equal(false);
      const others = c.ids.filter((id) => id !== leader);
      const next = await c.waitForLeader({ among: others, notIn: [leader] });
      const { index } = await c.node(next).clientWrite(encodeKv({ op: 'put', key: 'k', value: 'v' }));
      await c.waitForApplied(index, { among: others });
      for (const id of others) expect(await c.node(id).query({ q: 'get', key: 'k' })).to.equal('v');
    });
  });
}
