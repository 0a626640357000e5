/**
 * Bad input (openraft's t50): malformed RPCs, client writes and configs are refused with a typed
 * error at the boundary, change nothing, and never take a node down.
 *
 * The tests that need a running cluster share one 3-node cluster per describe and run in order
 * (a worker cluster costs seconds to start); each checks the cluster is unaffected afterwards.
 */
import { expect } from 'chai';
import { LocalCluster } from '../../actors/local-cluster';
import { RaftNode } from '../../actors/node';
import type { RaftMetrics } from '../../actors/metrics/metrics';
import { decodeResponse, encodeRequest } from '../../actors/raft/codec';
import { InvalidConfigError, MalformedMessageError } from '../../actors/raft/core/errors';
import type { Entry, LogIndex, NodeId, Term } from '../../actors/raft/core/types';
import type { RaftConfig } from '../../actors/raft/core/config';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { LocalNetwork } from '../../network/local-network';
import { raftActorId } from '../../network/network';
import { ActorSystem } from '../../runtime/system';
import { FAULTY_NETWORK_MODULE } from './fixtures/faulty-network';
import { KV_SPEC, PLACEMENTS, digests, rejectsWith, seededRandom, startKvCluster, waitUntil } from './helpers';

const enc = new TextEncoder();

for (const placement of PLACEMENTS) {
  describe(`t50 bad input (${placement})`, function () {
    this.timeout(60_000);

    describe('on a running cluster', () => {
      let cluster: LocalCluster;
      // These tests assert that role, term and leader do not change: wide election timeouts keep a
      // scheduling stall on a loaded 2-core CI machine from causing an election the input did not.
      before(async () => { cluster = await startKvCluster({ size: 3, placement, config: { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000, heartbeatIntervalMs: 100 } }); });
      after(async () => { await cluster?.shutdown(); });

      /** Every node's role, term and leader: what a bad input must not change. */
      const snapshot = async () => Promise.all(cluster.all().map(async (n) => {
        const m = await n.currentMetrics();
        return { id: m.id, state: m.state, term: m.currentTerm, leader: m.currentLeader };
      }));
      const rpc = (id: number, bytes: unknown) => cluster.system.ref<{ type: 'rpc'; bytes: unknown }>(raftActorId(id)).ask({ type: 'rpc', bytes }, 10_000);

      /** A write through the leader, applied on every node: the cluster still works. */
      const stillCommits = async (key: string) => {
        const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
        const res = await cluster.node(leader).clientWrite(encodeKv({ op: 'put', key, value: 'ok' }), { responseMode: 'applied', timeoutMs: 15_000 });
        expect(res.result).to.deep.equal({ ok: true, value: null });
        await cluster.waitForApplied(res.index, { timeoutMs: 15_000 });
        for (const n of cluster.all()) expect(await n.query({ q: 'get', key }), `node ${n.id}`).to.equal('ok');
        for (const n of cluster.all()) expect(n.state, `node ${n.id} supervisor`).to.equal('running');
      };

      it('random bytes sent as an RPC are refused with MalformedMessageError by every node, changing nothing', async () => {
        await cluster.waitForLeader({ timeoutMs: 15_000 });
        const before = await snapshot();
        const random = seededRandom(50);
        for (let k = 0; k < 60; k++) {
          const bytes = Uint8Array.from({ length: Math.floor(random() * 120) }, () => Math.floor(random() * 256));
          if (k % 4 === 0 && bytes.length > 0) bytes[0] = 1 + (k % 3); // a known type byte, so decoding gets past it
          for (const id of cluster.ids) await rejectsWith(rpc(id, bytes), MalformedMessageError, `node ${id}, random buffer ${k} (${bytes.length} bytes)`);
        }
        expect(await snapshot()).to.deep.equal(before);
        await stillCommits('after-random-bytes');
      });

      it("every truncation of an AppendEntries, and one with a trailing byte, is refused with MalformedMessageError; the whole one forged in the leader's term is refused", async () => {
        const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
        const lm = await cluster.node(leader).currentMetrics();
        const before = await snapshot();
        const term = lm.currentTerm as Term;
        const prev = lm.lastLogIndex;
        const entries: Entry[] = [0, 1, 2].map((i) => ({
          kind: 'normal', index: (prev + 1 + i) as LogIndex, term, payload: encodeKv({ op: 'put', key: `forged-${i}`, value: 'forged' }),
        }));
        const full = encodeRequest({
          type: 'appendEntries', term, leaderId: leader as NodeId, prevLogIndex: prev as LogIndex, prevLogTerm: term,
          entries, leaderCommit: lm.commitIndex,
        });
        for (const id of cluster.ids) {
          for (let len = 0; len < full.length; len++) {
            await rejectsWith(rpc(id, full.slice(0, len)), MalformedMessageError, `node ${id}, AppendEntries cut to ${len} of ${full.length} bytes`);
          }
          const longer = new Uint8Array(full.length + 1);
          longer.set(full);
          const err = await rejectsWith(rpc(id, longer), MalformedMessageError, `node ${id}, AppendEntries with a trailing byte`);
          expect(err.message).to.match(/trailing/);
        }
        // Whole, the forged request claims a second leader in the leader's own term: the leader
        // answers it with a refusal and keeps its log (paper 5.2: at most one leader per term).
        const forger = cluster.ids.find((id) => id !== leader)!;
        const forged = encodeRequest({
          type: 'appendEntries', term, leaderId: forger as NodeId, prevLogIndex: prev as LogIndex, prevLogTerm: term, entries, leaderCommit: lm.commitIndex,
        });
        const answer = decodeResponse(await rpc(leader, forged) as Uint8Array);
        expect(answer).to.include({ type: 'appendEntriesResponse', success: false });
        expect(await snapshot()).to.deep.equal(before);
        // None of the forged entries reached any log or state machine.
        const after = await cluster.node(leader).currentMetrics();
        expect(after.lastLogIndex).to.equal(prev);
        for (const n of cluster.all()) expect(await n.query({ q: 'get', key: 'forged-0' })).to.equal(null);
        await stillCommits('after-truncated-append');
      });

      it('an RPC whose bytes are not a Uint8Array, or an unknown message, is refused with MalformedMessageError', async () => {
        await cluster.waitForLeader({ timeoutMs: 15_000 });
        const before = await snapshot();
        for (const id of cluster.ids) {
          for (const bytes of ['not bytes', 42, null, undefined, [1, 2, 3], { 0: 1 }]) {
            await rejectsWith(rpc(id, bytes), MalformedMessageError, `node ${id}, rpc bytes ${JSON.stringify(bytes)}`);
          }
          await rejectsWith(cluster.system.ref(raftActorId(id)).ask({ type: 'no-such-message' }, 10_000), MalformedMessageError, `node ${id}, unknown message`);
          await rejectsWith(cluster.system.ref(raftActorId(id)).ask({ type: 'initWithConfig', members: 'all of them' }, 10_000), MalformedMessageError, `node ${id}, initWithConfig with a string`);
          // A vote request in term 0 is well-formed bytes but an impossible message.
          const vote0 = encodeRequest({ type: 'vote', term: 0 as Term, candidateId: 2 as NodeId, lastLogIndex: 0 as LogIndex, lastLogTerm: 0 as Term });
          await rejectsWith(rpc(id, vote0), MalformedMessageError, `node ${id}, vote in term 0`);
        }
        expect(await snapshot()).to.deep.equal(before);
        await stillCommits('after-odd-messages');
      });

      it('clientWrite with a payload that is not a Uint8Array is refused with MalformedMessageError', async () => {
        const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
        const node = cluster.node(leader);
        const before = await node.currentMetrics();
        for (const payload of ['put k v', 42, null, undefined, [1, 2, 3], { op: 'put', key: 'k', value: 'v' }, new ArrayBuffer(4)]) {
          await rejectsWith(node.clientWrite(payload as unknown as Uint8Array), MalformedMessageError, `payload ${String(payload)}`);
        }
        // The same, sent straight to the Raft actor past RaftNode's own check.
        await rejectsWith(cluster.system.ref(raftActorId(leader)).ask({ type: 'clientWrite', payload: 'put k v', responseMode: 'committed' }, 10_000),
          MalformedMessageError, 'raw clientWrite with a string payload');
        const after = await node.currentMetrics();
        expect(after.lastLogIndex, 'nothing was appended').to.equal(before.lastLogIndex);
        expect(after).to.include({ state: 'Leader', currentTerm: before.currentTerm });
        await stillCommits('after-bad-payload');
      });

      it("clientWrite with responseMode 'bogus' is refused with MalformedMessageError and appends nothing", async () => {
        const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
        const node = cluster.node(leader);
        const before = await node.currentMetrics();
        for (const responseMode of ['bogus', '', 'APPLIED', 42, true]) {
          const err = await rejectsWith(node.clientWrite(encodeKv({ op: 'put', key: 'bogus-mode', value: 'no' }), { responseMode: responseMode as never, timeoutMs: 10_000 }),
            MalformedMessageError, `responseMode ${JSON.stringify(responseMode)}`);
          expect(err.message).to.match(/responseMode/);
        }
        const after = await node.currentMetrics();
        expect(after.lastLogIndex, 'nothing was appended').to.equal(before.lastLogIndex);
        await stillCommits('after-bogus-mode');
        for (const n of cluster.all()) expect(await n.query({ q: 'get', key: 'bogus-mode' })).to.equal(null);
        // A payload the state machine cannot parse is a command like any other: committed, and answered with the KV's error.
        const res = await node.clientWrite(enc.encode('{not json'), { responseMode: 'applied', timeoutMs: 15_000 });
        expect(res.result).to.deep.equal({ ok: false, error: 'malformed command' });
        await cluster.waitForApplied(res.index, { timeoutMs: 15_000 });
        const ds = await digests(cluster);
        expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
      });
    });

    describe('invalid configuration', () => {
      const invalid: { name: string; config: Record<string, unknown>; field: string }[] = [
        { name: 'electionTimeoutMaxMs equal to the min', config: { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 300 }, field: 'electionTimeoutMaxMs' },
        { name: 'electionTimeoutMaxMs below the min', config: { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 200 }, field: 'electionTimeoutMaxMs' },
        { name: 'a heartbeat as long as the election timeout', config: { heartbeatIntervalMs: 150, electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300 }, field: 'heartbeatIntervalMs' },
        { name: 'an unknown field', config: { electionTimeoutMs: 200 }, field: 'electionTimeoutMs' },
        { name: 'a non-integer', config: { maxPayloadEntries: 2.5 }, field: 'maxPayloadEntries' },
        { name: 'a string number', config: { heartbeatIntervalMs: '50' }, field: 'heartbeatIntervalMs' },
        { name: 'zero', config: { metricsIntervalMs: 0 }, field: 'metricsIntervalMs' },
        { name: 'NaN', config: { maxInflightAppends: Number.NaN }, field: 'maxInflightAppends' },
        { name: 'preVote as a string', config: { preVote: 'yes' }, field: 'preVote' },
        { name: 'checkQuorum as a number', config: { checkQuorum: 1 }, field: 'checkQuorum' },
        { name: 'a lease margin as long as the minimum election timeout', config: { electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, leaseClockDriftMarginMs: 150 }, field: 'leaseClockDriftMarginMs' },
        { name: 'a negative lease margin', config: { leaseClockDriftMarginMs: -1 }, field: 'leaseClockDriftMarginMs' },
      ];

      for (const c of invalid) {
        it(`RaftNode.start refuses ${c.name} with InvalidConfigError naming ${c.field}, and starts nothing`, async () => {
          const system = ActorSystem.create({ seed: 1 });
          try {
            const before = await system.stats();
            const err = await rejectsWith(RaftNode.start({
              system, id: 1, network: new LocalNetwork().endpointSpec(1 as NodeId), stateMachine: KV_SPEC,
              placement, config: c.config as Partial<RaftConfig>,
            }), InvalidConfigError, `config ${JSON.stringify(c.config)}`);
            expect(err.field).to.equal(c.field);
            expect(err.message).to.include(c.field);
            const after = await system.stats();
            expect(after.actors, 'actors').to.equal(before.actors);
            expect(after.workers, 'worker threads').to.equal(0);
            expect(system.arbiterNames(), 'arbiters').to.deep.equal([]);
            expect(system.actorIds(), 'actors').to.deep.equal([]);
          } finally {
            await system.shutdown();
          }
        });
      }

      it('LocalCluster.start refuses an invalid config with InvalidConfigError', async () => {
        const err = await rejectsWith(LocalCluster.start({ size: 3, placement, stateMachine: KV_SPEC, config: { heartbeatIntervalMs: 500 } }),
          InvalidConfigError, 'LocalCluster.start with heartbeat 500 ms');
        expect(err.field).to.equal('heartbeatIntervalMs');
      });

      it('LocalCluster.start refuses a size outside 1..15 with RangeError', async () => {
        for (const size of [0, -1, 16, 2.5, Number.NaN]) {
          const err = await rejectsWith(LocalCluster.start({ size, placement, stateMachine: KV_SPEC }), RangeError, `size ${size}`);
          expect(err.message).to.match(/size must be an integer in 1\.\.15/);
        }
      });

      it('RaftNode.start refuses an unknown placement and a bad node id, starting nothing', async () => {
        const system = ActorSystem.create({ seed: 1 });
        try {
          await rejectsWith(RaftNode.start({ system, id: 1, network: new LocalNetwork().endpointSpec(1 as NodeId), stateMachine: KV_SPEC, placement: 'cloud' as never }),
            TypeError, 'placement cloud');
          for (const id of [0, -2, 1.5]) {
            await rejectsWith(RaftNode.start({ system, id, network: new LocalNetwork().endpointSpec(1 as NodeId), stateMachine: KV_SPEC, placement }), TypeError, `node id ${id}`);
          }
          expect(system.arbiterNames()).to.deep.equal([]);
          expect(system.actorIds()).to.deep.equal([]);
        } finally {
          await system.shutdown();
        }
      });
    });

    describe('garbage from the network', () => {
      // A transport carries bytes from another process: a corrupt vote response must be refused like a
      // corrupt request (codec.ts: "a malformed message throws MalformedMessageError and changes
      // nothing"), not crash the Raft actor and with it the node.
      it('a node whose vote requests are answered with garbage keeps campaigning instead of failing', async () => {
        const system = ActorSystem.create({ seed: 3 });
        const failures: Error[] = [];
        let node: RaftNode | null = null;
        try {
          node = await RaftNode.start({
            system, id: 1, stateMachine: KV_SPEC, placement,
            network: { module: FAULTY_NETWORK_MODULE, export: 'createGarbageNetwork', args: { reply: [0xff, 0, 1, 2] } },
            onFailed: (e) => failures.push(e),
          });
          await node.initWithConfig([1, 2, 3]);
          // Each election timeout starts a new pre-vote round (InitWithConfig's first campaign is a real
          // one, in term 1); no garbage answer can win one, none may end them, and the term stays.
          let last: RaftMetrics | null = null;
          try {
            last = await waitUntil(node, (m) => m.preVoteRounds >= 3, 'a third pre-vote round', 15_000);
          } catch (err) {
            throw new Error(`node did not keep campaigning (${(err as Error).message}); supervisor ${node.state}; failures: ${failures.map((f) => f.message).join('; ')}`);
          }
          expect(last.state).to.equal('Follower');
          expect(last.currentTerm).to.equal(1);
          expect(last.electionsStarted).to.equal(1);
          expect(last.currentLeader).to.equal(null);
          expect(node.state).to.equal('running');
          expect(failures).to.deep.equal([]);
        } finally {
          await node?.stop();
          await system.shutdown();
        }
      });

      it('a leader whose AppendEntries to one follower are answered with garbage does not crash its stream, and commits with the other', async () => {
        const system = ActorSystem.create({ seed: 5 });
        const crashes: string[] = [];
        system.onCrash((id, err) => crashes.push(`${id}: ${err.message}`));
        const failures: Error[] = [];
        const nodes: RaftNode[] = [];
        try {
          const network = { module: FAULTY_NETWORK_MODULE, export: 'createCorruptingNetwork', args: { corruptFrom: [3], requestType: 1, reply: [0xff] } };
          nodes.push(...await Promise.all([1, 2, 3].map((id) => RaftNode.start({ system, id, stateMachine: KV_SPEC, placement, network, onFailed: (e) => failures.push(e) }))));
          // Only nodes 1 and 2 form the cluster: node 3 stays a NonVoter until the config reaches
          // it (it grants no vote before), so the leader is 1 or 2 and its answers from 3 are garbage.
          await Promise.all([nodes[0], nodes[1]].map((n) => n.initWithConfig([1, 2, 3])));
          const { currentLeader } = await waitUntil(nodes[0], (m) => m.currentLeader !== null && m.state !== 'Candidate', 'a leader', 15_000);
          const leader = nodes[currentLeader! - 1];
          expect(leader.id).to.be.oneOf([1, 2]);
          let index = 0;
          for (let i = 0; i < 5; i++) {
            index = (await leader.clientWrite(encodeKv({ op: 'put', key: `k${i}`, value: 'v' }), { responseMode: 'applied', timeoutMs: 15_000 })).index;
          }
          // Node 3 receives (and answers) the appends: the garbage is only in what comes back.
          const reached = await waitUntil(nodes[2], (m) => m.lastLogIndex >= index, 'node 3 holds the writes', 15_000).catch((e: Error) => e);
          expect(crashes, 'actors crashed on a garbage AppendEntries response').to.deep.equal([]);
          expect(failures.map((f) => f.message)).to.deep.equal([]);
          if (reached instanceof Error) throw reached;
          for (const n of nodes) expect(n.state, `node ${n.id} supervisor`).to.equal('running');
          expect((await leader.currentMetrics()).state).to.equal('Leader');
        } finally {
          await Promise.allSettled(nodes.map((n) => n.stop()));
          await system.shutdown();
        }
      });
    });
  });
}
