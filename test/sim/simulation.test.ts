/**
 * The Simulation API (issue 3): determinism, each network and node fault doing what it says,
 * invariant violations reported with seed and step, user storage and state machines plugged in,
 * and bad options refused. Everything runs on virtual time.
 */
import { expect } from 'chai';
import { CorruptLogError } from '../../storage/record-log';
import { createMemoryStorage, MEMORY_STORAGE_MODULE } from '../../storage/memory-storage';
import { encodeKv, KvStateMachine } from '../../examples/kv/kv-state-machine';
import type { Entry, LogIndex, NodeId } from '../../actors/raft/core/types';
import type { StateMachine } from '../../actors/apply/state-machine';
import { runChaos } from '../../sim/chaos';
import { InvariantViolationError, NodeDownError, Simulation, SimulationError } from '../../sim/simulation';
import { RELIABLE_NETWORK, UNRELIABLE_NETWORK } from '../../sim/sim-network';
import { leaderOf, withSim } from './sim-helpers';

const SLOW_DISK_CONFIG = { electionTimeoutMinMs: 1_000, electionTimeoutMaxMs: 2_000, heartbeatIntervalMs: 100 };
const put = (key: string, value: string) => encodeKv({ op: 'put', key, value });


/** A write through whichever node leads, retried across elections. */
async function writeViaLeader(sim: Simulation, payload: Uint8Array, among: readonly number[] = sim.ids, leaderTimeoutMs = 5_000): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const l = await leaderOf(sim, among, leaderTimeoutMs);
    try { return (await sim.write(l, payload, { timeoutMs: 2_000 })).index; } catch { await sim.runFor(100); }
  }
  throw new Error('write never landed');
}

const kvGet = (sim: Simulation, id: number, key: string) => (sim.stateMachine<KvStateMachine>(id)!.query({ q: 'get', key }));

describe('Simulation', function () {
  this.timeout(60_000);

  describe('determinism', () => {
    it('one seed gives one history: two chaos runs hash their traces identically', async () => {
      const a = await runChaos({ seed: 42, nodes: 5, chaosMs: 2_000 });
      const b = await runChaos({ seed: 42, nodes: 5, chaosMs: 2_000 });
      expect(a.violation).to.equal(null);
      expect(a.traceHash).to.match(/^[0-9a-f]{64}$/);
      expect(b.traceHash).to.equal(a.traceHash);
      expect({ ...b, wallMs: 0 }).to.deep.equal({ ...a, wallMs: 0 });
      expect(a.steps).to.be.above(1_000);
    });

    it('another seed gives another history', async () => {
      const a = await runChaos({ seed: 42, nodes: 5, chaosMs: 1_000 });
      const c = await runChaos({ seed: 43, nodes: 5, chaosMs: 1_000 });
      expect(c.traceHash).to.not.equal(a.traceHash);
    });

    it('keepTrace gives the lines the hash is made of', async () => {
      await withSim({ seed: 5, nodes: 3, keepTrace: true }, async (sim) => {
        await leaderOf(sim);
        const lines = sim.traceLines();
        expect(lines[0]).to.equal('sim seed=5 nodes=3');
        expect(lines.some((l) => l.startsWith('run n'))).to.equal(true);
        expect(lines.some((l) => l.startsWith('deliver req'))).to.equal(true);
        const { createHash } = await import('node:crypto');
        const h = createHash('sha256');
        for (const l of lines) h.update(l).update('\n');
        expect(h.digest('hex')).to.equal(sim.traceHash());
      });
    });
  });

  describe('network faults', () => {
    it('loss: with every packet lost nobody is elected; with none lost a leader emerges', async () => {
      await withSim({ seed: 1, nodes: 3, network: { lossProbability: 1 } }, async (sim) => {
        await sim.runFor(3_000);
        expect(sim.leader()).to.equal(null);
        expect(sim.network.stats.lost).to.be.above(10);
        expect(sim.network.stats.delivered).to.equal(0);
        sim.network.faults = RELIABLE_NETWORK;
        await leaderOf(sim);
      });
    });

    it('duplication: every packet delivered twice, yet each write applies once', async () => {
      await withSim({ seed: 2, nodes: 3, network: { duplicateProbability: 1 } }, async (sim) => {
        for (const v of ['a', 'b', 'c']) await writeViaLeader(sim, encodeKv({ op: 'append', key: 'k', value: v }));
        await sim.runFor(500);
        for (const id of sim.ids) expect(kvGet(sim, id, 'k')).to.equal('abc');
        expect(sim.network.stats.duplicated).to.be.above(10);
      });
    });

    it('delay and reordering: packets overtake each other and the cluster still agrees', async () => {
      await withSim({ seed: 3, nodes: 5, network: { meanExtraDelayMs: 20, reorderProbability: 0.5, reorderWindowMs: 80 } }, async (sim) => {
        for (let i = 0; i < 10; i++) await writeViaLeader(sim, encodeKv({ op: 'append', key: 'k', value: String(i) }));
        await sim.runFor(1_000);
        for (const id of sim.ids) expect(kvGet(sim, id, 'k')).to.equal('0123456789');
        expect(sim.network.stats.reordered).to.be.above(10);
      });
    });

    it('full partition: the majority side elects and commits; the minority side commits nothing', async () => {
      await withSim({ seed: 4, nodes: 5 }, async (sim) => {
        const first = await leaderOf(sim);
        const minority = [first, sim.ids.find((id) => id !== first)!];
        const majority = sim.ids.filter((id) => !minority.includes(id));
        sim.network.partition([minority, majority], sim.ids);
        const lone = sim.node(first).clientWrite(put('minority', 'x'), { timeoutMs: 3_000 }).then(() => 'committed', (e: Error) => e.name);
        await writeViaLeader(sim, put('majority', 'y'), majority);
        expect(await sim.settle(lone, 5_000)).to.not.equal('committed');
        for (const id of sim.ids) expect(kvGet(sim, id, 'minority')).to.equal(null);
        expect(sim.network.stats.partitionDrops).to.be.above(0);
        sim.network.heal();
        await sim.runUntil(() => sim.ids.every((id) => kvGet(sim, id, 'majority') === 'y'), { timeoutMs: 5_000, what: 'every node applying the majority write' });
      });
    });

    it('one-way partition: followers that stop hearing the leader elect another, in a higher term', async () => {
      await withSim({ seed: 5, nodes: 3 }, async (sim) => {
        const first = await leaderOf(sim);
        const term = sim.inspect(first)!.status.currentTerm;
        for (const id of sim.ids) if (id !== first) sim.network.cut(first, id);
        const others = sim.ids.filter((id) => id !== first);
        const next = await leaderOf(sim, others);
        expect(sim.inspect(next)!.status.currentTerm).to.be.above(term);
        expect(sim.network.isCut(first, others[0])).to.equal(true);
        expect(sim.network.isCut(others[0], first)).to.equal(false);
      });
    });

    it('partial connectivity: two sides that reach only a bridge node; packets across are dropped, the bridge reaches both', async () => {
      await withSim({ seed: 6, nodes: 5 }, async (sim) => {
        await leaderOf(sim);
        const [bridge, a1, a2, b1, b2] = sim.ids;
        sim.network.partition([[a1, a2], [b1, b2]], sim.ids);
        sim.network.reconnect(bridge, sim.ids);
        expect(sim.network.isCut(a1, b1)).to.equal(true);
        expect(sim.network.isCut(b2, a2)).to.equal(true);
        expect(sim.network.isCut(a1, bridge) || sim.network.isCut(bridge, b1)).to.equal(false);
        // Each side plus the bridge is a majority: the cluster keeps committing (invariants checked each step).
        await writeViaLeader(sim, put('bridged', '1'));
        await sim.runFor(2_000);
        sim.network.heal();
        await sim.runUntil(() => sim.ids.every((id) => kvGet(sim, id, 'bridged') === '1'), { timeoutMs: 10_000, what: 'convergence after the bridge' });
      });
    });

    it('clogging: packets on a clogged link are held, neither lost nor delivered, and leave when it is unclogged', async () => {
      await withSim({ seed: 7, nodes: 3 }, async (sim) => {
        const l = await leaderOf(sim);
        const f = sim.ids.find((id) => id !== l)!;
        sim.network.clog(l, f);
        const applied = sim.inspect(f)!.status.lastApplied;
        await writeViaLeader(sim, put('c', '1'));
        await sim.runFor(100);
        expect(sim.inspect(f)!.status.lastApplied).to.equal(applied);
        expect(sim.network.stats.clogged).to.be.above(0);
        expect(sim.network.isClogged(l, f)).to.equal(true);
        sim.network.unclog(l, f);
        await sim.runUntil(() => kvGet(sim, f, 'c') === '1', { timeoutMs: 2_000, what: 'the follower catching up' });
      });
    });
  });

  describe('node faults', () => {
    it('crash and restart: a node comes back with its log and term from its disk', async () => {
      await withSim({ seed: 8, nodes: 3 }, async (sim) => {
        let last = 0;
        for (let i = 0; i < 10; i++) last = await writeViaLeader(sim, put(`k${i}`, 'v'));
        const l = sim.leader()!;
        const f = sim.ids.find((id) => id !== l)!;
        await sim.runUntil(() => sim.inspect(f)!.status.lastLogIndex >= last, { timeoutMs: 2_000, what: 'replication' });
        await sim.runFor(50); // its disk syncs
        const before = sim.inspect(f)!.status;
        await sim.crash(f);
        expect(sim.isUp(f)).to.equal(false);
        expect(() => sim.node(f)).to.throw(NodeDownError);
        await sim.restart(f);
        const after = sim.inspect(f)!.status;
        expect(after.lastLogIndex).to.equal(before.lastLogIndex);
        expect(after.currentTerm).to.equal(before.currentTerm);
        expect(sim.stats).to.include({ crashes: 1, restarts: 1 });
      });
    });

    it('a crash drops writes the disk has not synced, and the node recovers without them', async () => {
      // Syncs take 200 ms; elections wait longer than the two syncs a vote needs (a disk slower than
      // that would keep every election from finishing: election timeouts must exceed 2 syncs).
      await withSim({ seed: 9, nodes: 3, config: SLOW_DISK_CONFIG, disk: { syncMinMs: 200, syncJitterMs: 0, tornWriteProbability: 0 } }, async (sim) => {
        const l = await leaderOf(sim, sim.ids, 30_000);
        const f = sim.ids.find((id) => id !== l)!;
        void sim.node(l).clientWrite(put('lost', 'x'), { timeoutMs: 60_000 }).catch(() => undefined);
        await sim.runUntil(() => sim.disk(f).hasUnsynced(), { timeoutMs: 5_000, what: 'an unsynced write on the follower' });
        const durableBefore = sim.disk(f).durableBytes().byteLength;
        await sim.crash(f);
        expect(sim.stats.unsyncedBytesLost).to.be.above(0);
        expect(sim.disk(f).durableBytes().byteLength).to.equal(durableBefore);
        await sim.restart(f);
        expect(sim.inspect(f)).to.not.equal(null);
      });
    });

    it('a torn write: the crash leaves part of an unsynced record; recovery cuts it off and the node rejoins', async () => {
      await withSim({ seed: 10, nodes: 3, config: SLOW_DISK_CONFIG, disk: { syncMinMs: 200, syncJitterMs: 0, tornWriteProbability: 1 } }, async (sim) => {
        const l = await leaderOf(sim, sim.ids, 30_000);
        const f = sim.ids.find((id) => id !== l)!;
        void sim.node(l).clientWrite(put('torn', 'x'.repeat(200)), { timeoutMs: 60_000 }).catch(() => undefined);
        await sim.runUntil(() => sim.disk(f).hasUnsynced(), { timeoutMs: 5_000, what: 'an unsynced write on the follower' });
        // Keep crashing until the tear falls inside a record (a cut exactly between records tears nothing).
        for (let i = 0; i < 20 && sim.stats.tornWrites === 0; i++) {
          await sim.crash(f);
          await sim.restart(f);
          await sim.runUntil(() => sim.disk(f).hasUnsynced(), { timeoutMs: 10_000, what: 'another unsynced write' });
        }
        expect(sim.stats.tornWrites).to.be.above(0);
        await sim.crash(f);
        await sim.restart(f);
        // Elections are slow here (1-2 s timeouts, 200 ms syncs), and a node that restarts pristine re-runs InitWithConfig.
        await writeViaLeader(sim, put('after', '1'), sim.ids, 30_000);
        await sim.runUntil(() => kvGet(sim, f, 'after') === '1', { timeoutMs: 30_000, what: 'the torn node catching up' });
      });
    });

    it('damage in the middle of a log refuses to start with CorruptLogError naming file and offset', async () => {
      await withSim({ seed: 11, nodes: 3 }, async (sim) => {
        for (let i = 0; i < 3; i++) await writeViaLeader(sim, put(`k${i}`, 'v'));
        const f = sim.ids.find((id) => id !== sim.leader())!;
        await sim.runFor(50);
        await sim.crash(f);
        sim.disk(f).corrupt(10); // inside the first record's body
        const err = await sim.restart(f).then(() => null, (e: Error) => e);
        expect(err).to.be.instanceOf(CorruptLogError);
        expect((err as CorruptLogError).file).to.equal(`n${f}/raft.log`);
        expect((err as CorruptLogError).offset).to.equal(0);
        expect(sim.isUp(f)).to.equal(false);
        // The rest of the cluster carries on.
        await writeViaLeader(sim, put('still', 'up'), sim.ids.filter((id) => id !== f));
      });
    });

    it('a slow disk slows the commits that wait for it (in virtual time)', async () => {
      const commitTime = async (slow: boolean) => withSim({ seed: 12, nodes: 3 }, async (sim) => {
        const l = await leaderOf(sim);
        await writeViaLeader(sim, put('warm', 'up'));
        if (slow) for (const id of sim.ids) sim.disk(id).slowFactor = 50;
        const t0 = sim.now();
        await sim.write(l, put('timed', 'x'));
        return sim.now() - t0;
      });
      const [fast, slow] = [await commitTime(false), await commitTime(true)];
      expect(slow).to.be.above(fast * 5);
    });
  });

  describe('replication under loss (regressions found by the 6.824 port)', () => {
    it('a lost AppendEntries is resent within a few heartbeats, not after the RPC timeout', async () => {
      for (const seed of [1, 2, 3]) {
        await withSim({ seed, nodes: 3 }, async (sim) => {
          await writeViaLeader(sim, put('first', '1'));
          const l = sim.leader()!;
          const f = sim.ids.find((id) => id !== l)!;
          await sim.runUntil(() => kvGet(sim, f, 'first') === '1', { timeoutMs: 2_000, what: 'the first write everywhere' });
          sim.network.cut(l, f);
          void sim.node(l).clientWrite(put('lost', 'x')).catch(() => undefined);
          await sim.runFor(5);
          sim.network.uncut(l, f);
          const t0 = sim.now();
          await sim.runUntil(() => kvGet(sim, f, 'lost') === 'x', { timeoutMs: 5_000, what: 'the follower receiving the lost append' });
          // Heartbeats every 50 ms reveal the gap; the RPC timeout (1.2 s) is not waited for.
          expect(sim.now() - t0, `seed ${seed}`).to.be.below(400);
        });
      }
    });
  });

  describe('client outcomes', () => {
    // A write whose slot is cut from the deposed leader's log can still commit from another node's
    // copy. It used to be failed with ProposalDroppedError ("never applied, safe to retry") at the
    // cut; a retry would then apply it twice. It must wait for a commit at its index to decide.
    it('a write cut from the old leader\'s log but committed from a follower\'s copy succeeds', async () => {
      await withSim({ seed: 16, nodes: 5 }, async (sim) => {
        const all = sim.ids;
        const L = await leaderOf(sim);
        await writeViaLeader(sim, put('warm', 'up'));
        const [F, ...others] = all.filter((id) => id !== L);
        // 1. Only F hears L: the write reaches L and F, two of five, so it cannot commit.
        for (const o of others) sim.network.cut(L, o);
        const before = sim.inspect(L)!.status.lastLogIndex;
        const term = sim.inspect(L)!.status.currentTerm;
        const x = sim.node(L).clientWrite(encodeKv({ op: 'append', key: 'x', value: 'once' }), { timeoutMs: 60_000 }).then((r) => r, (e: Error) => e);
        await sim.runUntil(() => sim.inspect(L)!.status.lastLogIndex > before, { timeoutMs: 1_000, what: 'the write proposed' });
        const k = sim.inspect(L)!.status.lastLogIndex;
        await sim.runUntil(() => sim.inspect(F)!.status.lastLogIndex >= k, { timeoutMs: 1_000, what: 'F holding the write' });
        // L stays leader while isolated (no check-quorum), so its term stays put.
        sim.network.isolate(L, all);
        sim.network.isolate(F, all);
        // 2. The other three elect c; its appends to the other two are held, so its blank at k reaches only L.
        const votedFor = (c: number) => others.filter((o) => o !== c).every((o) => sim.inspect(o)!.status.votedFor === c && sim.inspect(o)!.status.currentTerm === sim.inspect(c)!.status.currentTerm);
        await sim.runUntil(() => others.some(votedFor), { timeoutMs: 5_000, what: 'a candidate with both votes' });
        const c = others.find(votedFor)!;
        const rest = others.filter((o) => o !== c);
        for (const o of rest) sim.network.clog(c, o);
        await sim.runUntil(() => sim.inspect(c)!.status.role === 'Leader', { timeoutMs: 1_000, what: `node ${c} leading` });
        sim.network.uncut(c, L);
        sim.network.uncut(L, c);
        await sim.runUntil(() => sim.inspect(L)!.termAt(k as LogIndex) !== term, { timeoutMs: 2_000, what: 'the old leader\'s slot cut and overwritten' });
        // 3. F and the two nodes without c's blank elect F, whose copy of the write commits.
        sim.network.isolate(c, all);
        sim.network.isolate(L, all);
        for (const o of rest) { sim.network.uncut(F, o); sim.network.uncut(o, F); }
        await sim.runUntil(() => sim.inspect(F)!.status.role === 'Leader' && sim.inspect(F)!.status.commitIndex > k, { timeoutMs: 10_000, what: 'F leading and committing past the write' });
        expect(sim.inspect(F)!.termAt(k as LogIndex)).to.equal(term);
        // 4. Heal: the old leader learns the commit, and its client hears the truth.
        sim.network.heal();
        const outcome = await sim.settle(x, 30_000);
        expect(outcome).to.not.be.instanceOf(Error);
        expect(outcome).to.deep.include({ index: k, term });
        await sim.runUntil(() => all.every((id) => kvGet(sim, id, 'x') === 'once'), { timeoutMs: 10_000, what: 'every node applying the write once' });
      });
    });
  });

  describe('checking', () => {
    it('a state machine that diverges between nodes is caught, naming the invariant, seed and step', async () => {
      // Nondeterministic application: each node stores its own id with every put.
      const divergent = {
        create: (id: NodeId): StateMachine => {
          let applied = 0;
          let state = '';
          return {
            lastApplied: () => applied as LogIndex,
            apply: (entries: readonly Entry[]) => { for (const e of entries) { applied = e.index; if (e.kind === 'normal') state += `${id}`; } return entries.map(() => null); },
            query: () => state,
          };
        },
        stateHash: (sm: StateMachine) => String(sm.query!(null)),
      };
      const sim = await Simulation.create({ seed: 13, nodes: 3, application: divergent });
      try {
        const err = await writeViaLeader(sim, put('a', 'b')).then(() => sim.runFor(1_000)).then(() => null, (e: Error) => e);
        expect(err).to.be.instanceOf(InvariantViolationError);
        const v = err as InvariantViolationError;
        expect(v.invariant).to.equal('state machine safety');
        expect(v.seed).to.equal(13);
        expect(v.step).to.be.above(0);
        expect(v.message).to.match(/seed 13, step \d+/);
      } finally {
        await sim.shutdown();
      }
    });

    it('a liveness failure is reported with the command that replays it', async () => {
      const r = await runChaos({ seed: 3, nodes: 3, chaosMs: 500, healMs: 1 });
      expect(r.ok).to.equal(false);
      expect(r.violation?.kind).to.equal('liveness');
      expect(r.violation?.message).to.match(/no write committed within 1 virtual ms after healing; nodes: n1 /);
      expect(r.replay).to.equal('npm run sim -- --seed 3 --nodes 3 --chaos-ms 500 --heal-ms 1 --trace sim-trace-3.txt');
    });

    it('a chaos run reports faults by kind, invariant checks and a checked history', async () => {
      const r = await runChaos({ seed: 21, nodes: 5, packetFaults: UNRELIABLE_NETWORK });
      expect(r.ok, JSON.stringify(r.violation)).to.equal(true);
      expect(r.history.verdict).to.equal('ok');
      expect(r.history.ops).to.be.above(20);
      expect(r.invariantChecks).to.be.above(r.steps);
      expect(r.faults['packet-loss']).to.be.above(0);
    });
  });

  describe('plugging in your own parts', () => {
    it('runs with your storage actor (MemoryStorage here) and your state machine', async () => {
      let built = 0;
      await withSim({
        seed: 14, nodes: 3,
        storage: () => ({ module: MEMORY_STORAGE_MODULE, export: createMemoryStorage.name, args: {} }),
        application: { create: () => { built++; return new KvStateMachine(); } },
      }, async (sim) => {
        await writeViaLeader(sim, put('mine', 'yes'));
        await sim.runUntil(() => sim.ids.every((id) => kvGet(sim, id, 'mine') === 'yes'), { timeoutMs: 2_000, what: 'replication' });
        expect(built).to.equal(3);
      });
    });
  });

  describe('bad input', () => {
    it('refuses bad options with a RangeError naming the option', async () => {
      await expectReject(Simulation.create({ seed: 1, nodes: 0 }), /nodes must be an integer in 1..15/);
      await expectReject(Simulation.create({ seed: -1, nodes: 3 }), /seed must be a non-negative safe integer/);
      await expectReject(Simulation.create({ seed: 1, nodes: 3, disk: { tornWriteProbability: 2 } }), /tornWriteProbability must be in \[0, 1\]/);
      await expectReject(Simulation.create({ seed: 1, nodes: 3, network: { lossProbability: -0.1 } }), /lossProbability must be a number in \[0, 1\]/);
      await expectReject(Simulation.create({ seed: 1, nodes: 3, config: { heartbeatIntervalMs: 500 } }), /heartbeatIntervalMs/);
    });

    it('refuses misuse: crashing a down node, restarting a running one, unknown node ids', async () => {
      await withSim({ seed: 15, nodes: 3 }, async (sim) => {
        await expectReject(sim.restart(1), /restart\(1\): node is running/);
        await sim.crash(1);
        await expectReject(sim.crash(1), /crash\(1\): node is already down/);
        expect(() => sim.node(9)).to.throw(RangeError, /no node 9/);
        await sim.restart(1);
      });
    });

    it('refuses unknown fault kinds in a chaos run', async () => {
      await expectReject(runChaos({ seed: 1, faults: ['meteor' as never] }), /unknown fault kind 'meteor'/);
    });
  });
});

async function expectReject(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: Error) => e);
  expect(err, `expected a rejection matching ${pattern}`).to.be.instanceOf(Error);
  expect((err as Error).message).to.match(pattern);
  if (err instanceof SimulationError) expect(err.seed).to.be.a('number');
}
