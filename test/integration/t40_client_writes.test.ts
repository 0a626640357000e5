/**
 * Client writes (actix-raft's client_writes / client_reads, openraft's t40): many concurrent
 * writes are all acknowledged and applied identically everywhere; a follower refuses writes and
 * names the leader; and under a leader change no acknowledged write is lost or applied twice.
 *
 * The tests of one describe share one 3-node cluster and run in order (a worker cluster costs
 * seconds to start); the leader-change test comes last because it moves the leader.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import { ForwardToLeaderError, ProposalDroppedError } from '../../actors/raft/core/errors';
import type { ClientWriteResponse } from '../../actors/raft/raft-actor';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { PLACEMENTS, converge, digests, rejectsWith, startKvCluster, waitUntil } from './helpers';

for (const placement of PLACEMENTS) {
  describe(`t40 client writes (${placement})`, function () {
    this.timeout(90_000);
    let cluster: LocalCluster;

    before(async () => { cluster = await startKvCluster({ size: 3, placement }); });
    after(async () => { await cluster?.shutdown(); });

    it('2000 concurrent writes from 32 clients are all acknowledged and applied identically on every node', async () => {
      const TOTAL = 2000;
      const CLIENTS = 32;
      let leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const acks: ClientWriteResponse[] = [];
      let redirects = 0;
      let next = 0;
      const client = async () => {
        while (next < TOTAL) {
          const i = next++;
          const payload = encodeKv({ op: 'put', key: `key-${i}`, value: `value-${i}` });
          for (;;) {
            try {
              acks.push(await cluster.node(leader).clientWrite(payload, { timeoutMs: 20_000 }));
              break;
            } catch (err) {
              // Nothing is injected here, but a leader change under load is legal: follow it.
              // Any other error (a timeout: outcome unknown) fails the test.
              if (err instanceof ForwardToLeaderError) {
                redirects++;
                leader = err.leaderId ?? await cluster.waitForLeader({ timeoutMs: 15_000 });
                continue;
              }
              if (err instanceof ProposalDroppedError) continue;
              throw err;
            }
          }
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, client));

      expect(acks).to.have.length(TOTAL);
      const indexes = new Set(acks.map((a) => a.index));
      expect(indexes.size, 'every write got its own log index').to.equal(TOTAL);
      const maxIndex = Math.max(...indexes);
      await cluster.waitForApplied(maxIndex, { timeoutMs: 20_000 });
      const ds = await digests(cluster);
      for (const [k, d] of ds.entries()) {
        expect(d.keys, `node ${cluster.ids[k]} key count`).to.equal(TOTAL);
        expect(d.sha256, `node ${cluster.ids[k]} digest`).to.equal(ds[0].sha256);
        expect(d.appliedIndex).to.be.at.least(maxIndex);
      }
      for (const id of cluster.ids) {
        expect(await cluster.node(id).query({ q: 'get', key: 'key-0' })).to.equal('value-0');
        expect(await cluster.node(id).query({ q: 'get', key: `key-${TOTAL - 1}` })).to.equal(`value-${TOTAL - 1}`);
      }
      // Leader changes are legal under load (timing), so redirects are followed, not forbidden.
      expect(redirects).to.be.at.most(TOTAL);
    });

    it('a write on a follower is refused with ForwardToLeaderError naming the leader, and is not applied', async () => {
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      for (const id of cluster.ids.filter((x) => x !== leader)) {
        for (const responseMode of ['committed', 'applied'] as const) {
          const err = await rejectsWith(
            cluster.node(id).clientWrite(encodeKv({ op: 'put', key: `via-follower-${id}`, value: 'no' }), { responseMode, timeoutMs: 10_000 }),
            ForwardToLeaderError, `write on follower ${id} (${responseMode})`);
          expect(err.leaderId, `follower ${id} names the leader`).to.equal(leader);
        }
      }
      // Following the redirect works; and the refused writes were never proposed anywhere.
      const res = await cluster.node(leader).clientWrite(encodeKv({ op: 'put', key: 'via-leader', value: 'yes' }), { responseMode: 'applied', timeoutMs: 15_000 });
      await cluster.waitForApplied(res.index, { timeoutMs: 15_000 });
      for (const id of cluster.ids) {
        expect(await cluster.node(id).query({ q: 'get', key: 'via-leader' })).to.equal('yes');
        for (const f of cluster.ids) expect(await cluster.node(id).query({ q: 'get', key: `via-follower-${f}` })).to.equal(null);
      }
    });

    it('under a leader change, every acknowledged write is applied exactly once and unknown ones at most once', async function () {
      const CLIENTS = 8;
      const PER_CLIENT = 40;
      const KEYS = 4;
      const ISOLATE_AFTER_ACKS = 80;
      const RESTORE_AFTER_NEW_ACKS = 40;
      // Impatient clients give up on the isolated leader and find the new one; patient ones wait
      // at the isolated leader until it rejoins and reports their writes dropped. One more patient
      // client starts writing to the old leader only once it is cut off, so at least one write is
      // certainly never replicated and must come back as ProposalDroppedError.
      const LATE = CLIENTS;
      const timeoutOf = (c: number) => (c % 2 === 0 ? 2_000 : 30_000);
      let startLate!: () => void;
      const lateStart = new Promise<void>((resolve) => { startLate = resolve; });

      const firstLeader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const firstTerm = (await cluster.node(firstLeader).currentMetrics()).currentTerm;
      const attempted = new Set<string>();
      const acked = new Set<string>();
      const unknown = new Set<string>();
      let retriedAfterDrop = 0;
      let ackedAfterIsolation = 0;
      const ackersAfterIsolation = new Set<string>();
      let isolated = false;
      let restored = false;
      const others: number[] = cluster.ids.filter((id) => id !== firstLeader);
      const nextNode = (id: number) => cluster.ids[(cluster.ids.indexOf(id as never) + 1) % cluster.ids.length];

      const client = async (c: number) => {
        let target: number = firstLeader;
        for (let i = 0; i < PER_CLIENT; i++) {
          const token = `c${c}.${i}`;
          const payload = encodeKv({ op: 'append', key: `k${(c + i) % KEYS}`, value: `${token};` });
          attempted.add(token);
          for (;;) {
            try {
              const res = await cluster.node(target).clientWrite(payload, { timeoutMs: timeoutOf(c) });
              acked.add(token);
              if (isolated) { ackedAfterIsolation++; ackersAfterIsolation.add(`n${target}/t${res.term}`); }
              if (!isolated && acked.size >= ISOLATE_AFTER_ACKS) { isolated = true; cluster.isolate(firstLeader); startLate(); }
              if (isolated && !restored && ackedAfterIsolation >= RESTORE_AFTER_NEW_ACKS) { restored = true; cluster.restore(firstLeader); }
              break;
            } catch (err) {
              if (err instanceof ForwardToLeaderError) {
                // Definitely not applied: retry, at the leader named, or once this node knows one.
                if (err.leaderId !== null) target = err.leaderId;
                else await waitUntil(cluster.node(target), (m) => m.currentLeader !== null, `node ${target} learns a leader`, 15_000);
                continue;
              }
              if (err instanceof ProposalDroppedError) { retriedAfterDrop++; continue; } // never applied: safe to retry
              // A timeout, NodeStoppedError, anything else: the outcome is unknown. Never retry the
              // token (that could apply it twice); try another node for the next one.
              unknown.add(token);
              target = nextNode(target);
              break;
            }
          }
        }
      };
      await Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), lateStart.then(() => client(LATE))]);

      expect(isolated, 'the leader was isolated mid-way').to.equal(true);
      expect(acked.size + unknown.size).to.equal((CLIENTS + 1) * PER_CLIENT);
      expect(restored, 'the old leader was restored while clients were writing').to.equal(true);
      expect(ackedAfterIsolation, 'writes were acknowledged by the new leader').to.be.at.least(RESTORE_AFTER_NEW_ACKS);
      // The patient clients' writes waiting at the isolated leader were reported dropped and retried.
      expect(retriedAfterDrop, 'writes reported dropped by the rejoined leader').to.be.greaterThan(0);

      // After the cut, writes were acknowledged by one of the other nodes, in a higher term.
      const newAckers = [...ackersAfterIsolation].filter((a) => others.some((o) => a.startsWith(`n${o}/`)));
      expect(newAckers, `ackers after isolation: ${[...ackersAfterIsolation]}`).to.not.be.empty;
      for (const a of newAckers) expect(Number(a.split('/t')[1])).to.be.greaterThan(firstTerm);

      const { leader: finalLeader } = await converge(cluster);
      expect((await cluster.node(finalLeader).currentMetrics()).currentTerm).to.be.greaterThan(firstTerm);

      const ds = await digests(cluster);
      expect(new Set(ds.map((d) => d.sha256)).size, `replicas differ: ${JSON.stringify(ds)}`).to.equal(1);
      for (const id of cluster.ids) {
        const counts = new Map<string, number>();
        for (let k = 0; k < KEYS; k++) {
          const value = await cluster.node(id).query<string | null>({ q: 'get', key: `k${k}` });
          for (const t of (value ?? '').split(';').filter((x) => x.length > 0)) counts.set(t, (counts.get(t) ?? 0) + 1);
        }
        const twice = [...counts].filter(([, n]) => n > 1).map(([t]) => t);
        expect(twice, `node ${id}: tokens applied more than once`).to.deep.equal([]);
        const lost = [...acked].filter((t) => counts.get(t) !== 1);
        expect(lost, `node ${id}: acknowledged tokens missing`).to.deep.equal([]);
        const strangers = [...counts.keys()].filter((t) => !attempted.has(t));
        expect(strangers, `node ${id}: tokens never written`).to.deep.equal([]);
        const unexplained = [...counts.keys()].filter((t) => !acked.has(t) && !unknown.has(t));
        expect(unexplained, `node ${id}: tokens neither acknowledged nor of unknown outcome`).to.deep.equal([]);
      }
      // Keep the numbers visible when a run is investigated.
      this.test!.title += ` [acked ${acked.size}, unknown ${unknown.size}, retried after drop ${retriedAfterDrop}]`;
    });
  });
}
