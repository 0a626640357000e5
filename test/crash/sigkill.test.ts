/**
 * Crash tests (issue 5): real node processes on FileStorage, SIGKILLed while clients write.
 *
 * (a) A follower, then the leader, is SIGKILLed mid-load and restarted on its data dir; each
 *     rejoins and catches up while writes continue.
 * (b) All three are SIGKILLed at once mid-load and restarted; writes continue.
 *
 * Afterwards, in both: every node applied the same sequence; every acknowledged write exactly once
 * (at its acknowledged index), refused writes never, writes of unknown outcome at most once; and
 * the durable logs, read offline once the processes stopped, hold every acknowledged write on a
 * majority. Every wait is on a condition (metrics polled over IPC, acknowledgement counts), never
 * a fixed sleep.
 */
import { expect } from 'chai';
import { CrashCluster } from './harness/cluster';
import { Load } from './harness/load';
import { checkApplied, checkDurable } from './harness/checks';
import type { AppliedList } from './harness/applied-list';
import { readDurableLog, type DurableLog } from './harness/durable';
import type { StorageKind } from './harness/protocol';

/** MemoryStorage would forget everything with the process: these tests need FileStorage. */
const STORAGE: StorageKind = 'file';
const CLIENTS = 24;
/** Small segments: the log changes segment every few hundred entries, so kills hit that path too. */
const SEGMENT_BYTES = 32 * 1024;
/** Longer than the defaults: four processes share two noisy cores, and a stall is not a crash. */
const CONFIG = { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 600, heartbeatIntervalMs: 50 };

interface Figures { [k: string]: unknown }

/**
 * SIGKILLs `ids` together at a moment when clients have writes in flight and each victim holds
 * an RPC or a request it has not answered (it is working, not idle).
 */
async function killMidWrite(c: CrashCluster, load: Load, ids: readonly number[], role: string, kills: Figures[]): Promise<void> {
  const storage = await Promise.all(ids.map((id) => c.storageStats(id)));
  const busy = (id: number) => c.rpcsInFlightTo(id) + c.requestsInFlightTo(id) > 0;
  await c.when(() => load.inflight > 0 && ids.every(busy), `writes in flight and nodes ${ids.join(', ')} busy`);
  kills.push({
    nodes: ids, role, ackedBefore: load.acked.size, writesInFlight: load.inflight,
    victims: ids.map((id, i) => ({ id, rpcsInFlight: c.rpcsInFlightTo(id), requestsInFlight: c.requestsInFlightTo(id), segmentsCreated: storage[i]?.segmentsCreated, fsyncs: storage[i]?.fsyncs })),
  });
  await c.killMany(ids);
  // The victims' data dirs as the kill left them, read offline before any restart repairs them.
  const crashed = new Map<number, DurableLog>();
  for (const id of ids) crashed.set(id, await readDurableLog(c.dirOf(id)));
  const last = kills[kills.length - 1];
  last.crashedLogs = [...crashed].map(([id, d]) => ({ id, lastIndex: d.entries[d.entries.length - 1]?.index ?? 0, tornBytes: d.tornBytes, term: d.hardState.currentTerm }));
  if (ids.length === c.ids.length) {
    // Nobody runs, so no acknowledgement can come any more: everything acknowledged so far must
    // be on a majority of the logs exactly as the crash left them.
    last.durableOnAtCrash = checkDurable(new Map(load.acked), crashed, Math.floor(c.ids.length / 2) + 1);
  }
}
const report = (name: string, f: Figures) => { if (process.env.CRASH_REPORT) console.log(`      ${name}: ${JSON.stringify(f)}`); };

/** Stops the load, waits for convergence, and runs every check; returns the figures. */
async function finish(cluster: CrashCluster, load: Load): Promise<Figures> {
  await load.stop();
  const figures0: Figures = {};
  const { leader, index } = await cluster.waitConverged(30_000);
  figures0.storage = await Promise.all(cluster.ids.map((id) => cluster.storageStats(id)));
  const lists = new Map<number, AppliedList>();
  for (const id of cluster.ids) lists.set(id, await cluster.appliedList(id));
  const { applied, unknownApplied } = checkApplied(load, lists);
  await cluster.stopAll();
  expect(cluster.incidents, 'node processes did something unasked').to.deep.equal([]);
  const figures: Figures = { ...figures0, acked: load.acked.size, refused: load.refused.size, unknown: load.unknown.size, unknownApplied, unknownKinds: Object.fromEntries(load.unknownKinds), applied, lastIndex: index, leader };
  const logs = new Map<number, DurableLog>();
  for (const id of cluster.ids) logs.set(id, await readDurableLog(cluster.dirOf(id)));
  figures.tornBytes = [...logs.values()].map((d) => d.tornBytes);
  figures.durableOn = checkDurable(load.acked, logs, 2);
  return figures;
}

describe('crash: SIGKILLed node processes under load', function () {
  this.timeout(60_000);
  let cluster: CrashCluster | null = null;

  afterEach(async () => {
    const c = cluster;
    cluster = null;
    if (c) await c.destroy();
  });

  it('a follower, then the leader, killed mid-load, restart and rejoin; every acknowledged write is applied exactly once and durable on a majority', async () => {
    const t0 = Date.now();
    cluster = await CrashCluster.start({ size: 3, storage: STORAGE, segmentBytes: SEGMENT_BYTES, config: CONFIG, seed: 11 });
    const c = cluster;
    const first = await c.waitForLeader();
    const started = Date.now() - t0;
    const load = new Load(c);
    load.start(CLIENTS);
    const kills: Figures[] = [];

    // 1. A follower dies while writes are in flight (after enough writes that its log has changed
    //    segment); the other two carry on.
    await load.waitForAcked(1500);
    const follower = c.ids.find((id) => id !== first)!;
    await killMidWrite(c, load, [follower], 'follower', kills);
    await load.waitForAcked(load.acked.size + 1000);

    // It restarts on its data dir, rejoins and catches up while the writes go on.
    await c.restart(follower);
    const l1 = await c.waitForLeader();
    await c.waitApplied(follower, (await c.metrics(l1)).commitIndex);
    await load.waitForAcked(load.acked.size + 1000);

    // 2. The leader dies mid-load; a new one takes over.
    const leader = await c.waitForLeader();
    await killMidWrite(c, load, [leader], 'leader', kills);
    const l2 = await c.waitForLeader({ notIn: [leader] });
    await load.waitForAcked(load.acked.size + 1000);

    await c.restart(leader);
    const l3 = await c.waitForLeader();
    await c.waitApplied(leader, (await c.metrics(l3)).commitIndex);
    await load.waitForAcked(load.acked.size + 500);

    const figures = await finish(c, load);
    expect(load.acked.size).to.be.greaterThan(4000);
    report('follower+leader kill', { ...figures, kills, newLeader: l2, startMs: started, totalMs: Date.now() - t0, routing: c.stats });
  });

  it('all three killed at once mid-load restart, elect, and take writes again; nothing acknowledged is lost', async () => {
    const t0 = Date.now();
    cluster = await CrashCluster.start({ size: 3, storage: STORAGE, segmentBytes: SEGMENT_BYTES, config: CONFIG, seed: 23 });
    const c = cluster;
    await c.waitForLeader();
    const load = new Load(c);
    load.start(CLIENTS);

    // Two rounds: the second kills nodes whose logs the first round's recovery repaired.
    const kills: Figures[] = [];
    const rounds: Figures[] = [];
    for (const before of [1500, 1000]) {
      await load.waitForAcked(load.acked.size + before);
      await killMidWrite(c, load, c.ids, 'all', kills);
      const ackedBefore = load.acked.size;
      const r0 = Date.now();
      await Promise.all(c.ids.map((id) => c.restart(id)));
      const leader = await c.waitForLeader();
      const recoveredMs = Date.now() - r0;
      await load.waitForAcked(ackedBefore + 500);
      rounds.push({ leader, recoveredMs, ackedBefore });
    }

    const figures = await finish(c, load);
    for (const r of rounds) expect(load.acked.size - (r.ackedBefore as number), 'writes acknowledged after a restart of all').to.be.greaterThan(500);
    report('all killed at once', { ...figures, kills, rounds, totalMs: Date.now() - t0, routing: c.stats });
  });
});
