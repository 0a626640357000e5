/**
 * Snapshots under faults in the simulator (issue 6): a follower cut off while the others compact
 * their logs catches up by InstallSnapshot in several chunks, also when it crashes mid-install and
 * when the leader changes mid-transfer. The checker follows every step: logs that start after a
 * purge, snapshots covering only committed entries, restored state hashes equal to the others'.
 */
import { expect } from 'chai';
import { encodeKv, type KvStateMachine } from '../../examples/kv/kv-state-machine';
import type { NodeId } from '../../actors/raft/core/types';
import type { Simulation } from '../../sim/simulation';
import { leaderOf, withSim } from './sim-helpers';
import { runChaos } from '../../sim/chaos';

/**
 * Snapshots every 10 applied entries, 2 kept behind, 64-byte chunks: a transfer of this workload's
 * state takes many chunks. A leader's stream keeps the entries it pushed in memory (up to
 * max(replicationLagThreshold, maxPayloadEntries x maxInflightAppends)); with pre-vote the leader
 * of the partition is still leading when the follower returns, so that buffer is kept small here,
 * or the follower would catch up from it without needing the purged entries.
 */
const SNAPSHOT_CONFIG = {
  snapshotLogsSinceLast: 10, snapshotKeepEntries: 2, snapshotMaxChunkBytes: 64,
  replicationLagThreshold: 4, maxPayloadEntries: 2, maxInflightAppends: 2,
};
const put = (i: number) => encodeKv({ op: 'put', key: `k${i % 8}`, value: `value-${i}-${'x'.repeat(24)}` });

/** `n` writes through whichever node leads, each retried across elections. */
async function writeMany(sim: Simulation, n: number, among: readonly number[] = sim.ids): Promise<void> {
  for (let i = 0; i < n; i++) {
    for (let attempt = 0; ; attempt++) {
      const l = await leaderOf(sim, among);
      try { await sim.write(l, put(i), { timeoutMs: 2_000 }); break; } catch (err) {
        if (attempt > 20) throw err;
        await sim.runFor(100);
      }
    }
  }
}

const digest = (sim: Simulation, id: number) => (sim.stateMachine<KvStateMachine>(id)!.query({ q: 'digest' }) as { sha256: string }).sha256;
const applied = (sim: Simulation, id: number) => sim.inspect(id)?.status.lastApplied ?? 0;

/** Isolates a follower, writes past several snapshots of the others, and reconnects it. */
async function leaveBehind(sim: Simulation, writes = 40): Promise<{ leader: NodeId; behind: NodeId }> {
  const leader = await leaderOf(sim);
  const behind = sim.ids.find((id) => id !== leader)!;
  sim.network.isolate(behind, sim.ids);
  await writeMany(sim, writes, sim.ids.filter((id) => id !== behind));
  await sim.runFor(200);
  const l = sim.leader()!;
  expect(sim.inspect(l)!.status.snapshotIndex, 'the leader compacted its log').to.be.above(applied(sim, behind) + 1);
  sim.network.heal();
  return { leader: l, behind };
}

async function caughtUp(sim: Simulation, id: number, timeoutMs = 5_000): Promise<void> {
  const l = await leaderOf(sim);
  const target = sim.inspect(l)!.status.commitIndex;
  await sim.runUntil(() => applied(sim, id) >= target, { timeoutMs, what: `node ${id} applying ${target}` });
  await sim.runUntil(() => applied(sim, l) >= target, { timeoutMs, what: `node ${l} applying ${target}` });
  expect(digest(sim, id)).to.equal(digest(sim, l));
}

describe('Simulation: snapshots', function () {
  this.timeout(60_000);

  it('a partitioned follower catches up by InstallSnapshot in several chunks, and its restored state matches', async () => {
    await withSim({ seed: 11, nodes: 3, config: SNAPSHOT_CONFIG }, async (sim) => {
      const { behind } = await leaveBehind(sim);
      await caughtUp(sim, behind);
      expect(sim.stats.snapshotsCreated).to.be.above(2);
      expect(sim.stats.snapshotInstalls).to.be.at.least(1);
      expect(sim.stats.snapshotChunks).to.be.above(sim.stats.snapshotInstalls * 2);
      expect(sim.stats.snapshotRestores).to.be.at.least(1);
      expect(sim.inspect(behind)!.status.snapshotIndex).to.be.above(0);
    });
  });

  it('a follower that crashes mid-install restarts and catches up', async () => {
    await withSim({ seed: 12, nodes: 3, config: SNAPSHOT_CONFIG }, async (sim) => {
      const { behind } = await leaveBehind(sim);
      await sim.runUntil(() => sim.stats.snapshotChunks > 0, { timeoutMs: 2_000, what: 'a first chunk stored' });
      expect(sim.stats.snapshotInstalls, 'crashed before the last chunk').to.equal(0);
      await sim.crash(behind);
      await sim.runFor(300);
      await sim.restart(behind);
      // The transfer in flight to the crashed node is noticed only when its chunk's RPC times out (10 s).
      await caughtUp(sim, behind, 15_000);
      expect(sim.stats.snapshotInstalls).to.be.at.least(1);
      expect(sim.stats.snapshotTransfers).to.be.at.least(2);
    });
  });

  it('a leader change mid-transfer: the new leader sends its own snapshot', async () => {
    await withSim({ seed: 13, nodes: 5, config: SNAPSHOT_CONFIG }, async (sim) => {
      const { leader, behind } = await leaveBehind(sim);
      await sim.runUntil(() => sim.stats.snapshotChunks > 0, { timeoutMs: 2_000, what: 'a first chunk stored' });
      expect(sim.stats.snapshotInstalls).to.equal(0);
      await sim.crash(leader);
      const next = await leaderOf(sim, sim.ids.filter((id) => id !== leader));
      expect(next).to.not.equal(leader);
      await writeMany(sim, 12, sim.ids.filter((id) => id !== leader));
      await caughtUp(sim, behind);
      expect(sim.stats.snapshotInstalls).to.be.at.least(1);
      await sim.restart(leader);
      await caughtUp(sim, leader);
    });
  });

  it('a snapshot replaced by a newer one while its last chunk was still syncing is not restored, and the node goes on (chaos seed 152)', async () => {
    // A slowed disk held the ack of snapshot A's last chunk while the leader sent a newer snapshot B,
    // which storage made current; the core then installed A and its restore found it gone, which
    // failed the node. Now the restore of A is skipped as superseded and B's follows.
    const r = await runChaos({ seed: 152, nodes: 3 });
    expect(r.violation, JSON.stringify(r.violation)).to.equal(null);
    expect(r.history.verdict).to.equal('ok');
  });

  it('a state machine that is not durable restarts from its snapshot (restore at start), not from index 1', async () => {
    await withSim({ seed: 14, nodes: 3, config: SNAPSHOT_CONFIG, durableStateMachine: false }, async (sim) => {
      await writeMany(sim, 30);
      const l = await leaderOf(sim);
      const victim = sim.ids.find((id) => id !== l)!;
      await sim.runUntil(() => (sim.inspect(victim)?.status.snapshotIndex ?? 0) > 0, { timeoutMs: 2_000, what: 'a snapshot on the victim' });
      const restores = sim.stats.snapshotRestores;
      await sim.crash(victim);
      await sim.restart(victim);
      await caughtUp(sim, victim);
      expect(sim.stats.snapshotRestores).to.be.above(restores);
    });
  });
});
