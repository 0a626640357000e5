/**
 * The reads suite of `npm run bench` (issue 7): client reads at each consistency level, reads and
 * writes forwarded by a follower (forwardToLeader), and a mixed read/write load, on a 3-node cluster
 * running the KV example state machine (examples/kv/kv-state-machine.ts).
 *
 *   npm run bench -- --suite reads                      # this suite only (about 2 minutes)
 *   npm run bench -- --suite all                        # write path, snapshots, then this suite
 *   npm run bench -- --suite reads --runs 5 --seconds 2 --clients 1,256 --placement worker,local
 *   npm run bench -- --suite reads --consistency linearizable,lease --read-parts levels,mixed --mix-writes 20
 *
 * One cluster per run (per storage and placement): `size: 3`, `forwardToLeader: true` on every node
 * (which changes nothing on the leader), default config; 1000 keys (`--read-keys`) are written
 * first, each with a value that makes a put command `--payload` (100) bytes. Then every phase of
 * the run measures in turn on that same cluster, each for a `--warmup-ms` (200) warm-up and
 * `--seconds` (1) of measurement, with `c` concurrent clients for each c of `--clients` (1, 64, 256);
 * each client issues its next operation as soon as its previous one is answered. Before the first
 * phase, `--run-warmup-ms` (3000) of every kind of operation below with 16 clients, untimed: with
 * 1.2 s the first phase (linearizable reads, 1 client) still ran 35-50% slower than the same phase
 * repeated later in the run (the threads' code not yet optimized); with 3 s or more it does not.
 * The phases (`--read-parts`):
 *
 *   levels    on the leader, `clientRead({ q: 'get', key })` of a random key at each consistency
 *             of `--consistency`: linearizable (read-index, batched into quorum rounds), lease,
 *             log (a blank entry through the log for each read) and stale.
 *   follower  on one follower, linearizable reads: the follower forwards each to the leader, which
 *             confirms a read index (batched into its quorum rounds), and serves it from its own
 *             state machine once applied that far.
 *   writes    puts (responseMode 'committed') on the leader and, alternating with it for each
 *             client count, on a follower that forwards them to the leader: what forwarding costs.
 *   mixed     on the leader, each client's operation is a put with probability `--mix-writes`
 *             percent (10) and a linearizable read otherwise (seeded, so every run draws alike).
 *
 * Figures per phase: operations per second (those started after the warm-up and answered within the
 * measured window), p50/p99 latency (one operation, from the call to its answer), errors, the
 * leader's read-index rounds (metrics `readIndexRounds`) over the whole phase and the reads those
 * rounds confirmed (reads per round: the batching), for 'log' the log entries appended per read,
 * and leader changes (by term; a healthy run has none). Every figure is the median of `--runs` runs
 * (3), each run's value alongside; the runs are interleaved (run 1 does every phase, then run 2...),
 * so a noisy stretch of a shared machine hits every phase alike. Progress goes to stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../actors/local-cluster';
import { median, ms, percentile, round, stat, type StorageKind, type SuiteOptions } from './common';
import { ForwardToLeaderError } from '../actors/raft/core/errors';
import type { NodeId } from '../actors/raft/core/types';
import type { NodePlacement, ReadConsistencyLevel } from '../actors/node';
import { encodeKv, KV_MODULE } from '../examples/kv/kv-state-machine';
import { fileStorageSpec } from '../storage/file-storage';
import { SeededRandom } from '../runtime/random';

/** This suite's own options, merged into bench/run.ts's parseArgs. */
export const READS_OPTIONS = {
  consistency: { type: 'string', default: 'linearizable,lease,log,stale' },
  'read-parts': { type: 'string', default: 'levels,follower,writes,mixed' },
  'mix-writes': { type: 'string', default: '10' },
  'read-keys': { type: 'string', default: '1000' },
  'warmup-ms': { type: 'string', default: '200' },
  'run-warmup-ms': { type: 'string', default: '3000' },
} as const;

type Part = 'levels' | 'follower' | 'writes' | 'mixed';
const PARTS: readonly Part[] = ['levels', 'follower', 'writes', 'mixed'];
const LEVELS: readonly ReadConsistencyLevel[] = ['linearizable', 'lease', 'log', 'stale'];

export type ReadsSuiteOptions = SuiteOptions<keyof typeof READS_OPTIONS & string>;

/** One measured phase of a run. */
interface Phase {
  readonly part: Part;
  /** Where the clients send their operations. */
  readonly on: 'leader' | 'follower';
  /** What each operation is: a read at this level, a put, or a mix. */
  readonly op: ReadConsistencyLevel | 'write' | 'mixed';
  readonly clients: number;
}

interface OpFigures { perSec: number; p50Ms: number; p99Ms: number; ops: number }
interface PhaseRun {
  all: OpFigures;
  reads: OpFigures | null;
  writes: OpFigures | null;
  errors: number;
  /** Reads answered over the whole phase (warm-up included), and the leader's read-index rounds meanwhile. */
  readsTotal: number;
  rounds: number;
  /** Log entries the leader appended over the whole phase (blank entries of 'log' reads, puts). */
  logEntries: number;
  leaderChanges: number;
}

const progress = (line: string): void => { process.stderr.write(`${line}\n`); };

function intList(name: string, v: string, min: number, max: number): number[] {
  const xs = v.split(',').map(Number);
  for (const x of xs) if (!Number.isInteger(x) || x < min || x > max) throw new RangeError(`--${name}: ${v} (each must be an integer in ${min}..${max})`);
  return xs;
}
function listOf<T extends string>(name: string, v: string, allowed: readonly T[]): T[] {
  return [...new Set(v.split(','))].map((x) => {
    if (!(allowed as readonly string[]).includes(x)) throw new RangeError(`--${name}: ${x} (one of ${allowed.join(', ')})`);
    return x as T;
  });
}


const keyOf = (i: number): string => `key-${String(i).padStart(6, '0')}`;
const puts = new Map<string, Uint8Array>();
/** A put of key `i` whose encoded command is `payloadBytes` long (or as short as it can be); made once per key (clientWrite copies it). */
function putOf(i: number, payloadBytes: number): Uint8Array {
  const id = `${i}/${payloadBytes}`;
  let p = puts.get(id);
  if (p === undefined) {
    const bare = encodeKv({ op: 'put', key: keyOf(i), value: '' }).length;
    p = encodeKv({ op: 'put', key: keyOf(i), value: 'v'.repeat(Math.max(0, payloadBytes - bare)) });
    puts.set(id, p);
  }
  return p;
}

function figures(latencies: number[], seconds: number): OpFigures {
  const sorted = Float64Array.from(latencies).sort();
  return { perSec: latencies.length / seconds, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), ops: latencies.length };
}

/** A leader every node agrees on, and a node that is not it. */
async function roles(cluster: LocalCluster): Promise<{ leader: NodeId; follower: NodeId }> {
  const leader = await cluster.waitForLeader();
  return { leader, follower: cluster.ids.find((id) => id !== leader)! };
}

/** Lets every node apply what the leader committed, so a phase's leftovers do not load the next one. */
async function settle(cluster: LocalCluster): Promise<void> {
  const leader = await cluster.waitForLeader();
  const m = await cluster.node(leader).currentMetrics();
  await cluster.waitForApplied(m.commitIndex, { timeoutMs: 30_000 });
}

async function measure(cluster: LocalCluster, phase: Phase, o: { seconds: number; warmupMs: number; keys: number; payloadBytes: number; mixWrites: number }): Promise<PhaseRun> {
  const r = await roles(cluster);
  let leader = r.leader;
  const target = phase.on === 'leader' ? () => cluster.node(leader) : () => cluster.node(r.follower);
  const leaderNode = cluster.node(r.leader);
  const before = await leaderNode.currentMetrics();
  const warmupEnd = performance.now() + o.warmupMs;
  const end = warmupEnd + o.seconds * 1000;
  const readLat: number[] = [];
  const writeLat: number[] = [];
  let errors = 0;
  let readsTotal = 0;
  const level: ReadConsistencyLevel = phase.op === 'write' || phase.op === 'mixed' ? 'linearizable' : phase.op;
  const writeShare = phase.op === 'write' ? 1 : phase.op === 'mixed' ? o.mixWrites / 100 : 0;
  const client = async (c: number) => {
    // Seeded, so every run draws the same keys and the same read/write mix (per client).
    const random = new SeededRandom(c * 7919 + 1);
    const draw = (): number => random.nextFloat();
    for (;;) {
      const t = performance.now();
      if (t >= end) return;
      const key = Math.floor(draw() * o.keys);
      const isWrite = writeShare > 0 && draw() < writeShare;
      try {
        if (isWrite) await target().clientWrite(putOf(key, o.payloadBytes), { responseMode: 'committed', timeoutMs: 10_000 });
        else { await target().clientRead({ q: 'get', key: keyOf(key) }, { consistency: level, timeoutMs: 10_000 }); readsTotal++; }
        const done = performance.now();
        if (t >= warmupEnd && done <= end) (isWrite ? writeLat : readLat).push(done - t);
      } catch (err) {
        errors++;
        if (phase.on === 'leader') {
          if (err instanceof ForwardToLeaderError && err.leaderId !== null) leader = err.leaderId;
          else leader = await cluster.waitForLeader();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: phase.clients }, (_, c) => client(c)));
  const after = await leaderNode.currentMetrics();
  return {
    all: figures([...readLat, ...writeLat], o.seconds),
    reads: phase.op === 'write' ? null : figures(readLat, o.seconds),
    writes: phase.op === 'write' || phase.op === 'mixed' ? figures(writeLat, o.seconds) : null,
    errors,
    readsTotal, rounds: after.readIndexRounds - before.readIndexRounds,
    logEntries: after.lastLogIndex - before.lastLogIndex,
    leaderChanges: after.currentTerm - before.currentTerm,
  };
}

function phasesOf(parts: readonly Part[], levels: readonly ReadConsistencyLevel[], clients: readonly number[]): Phase[] {
  const out: Phase[] = [];
  if (parts.includes('levels')) for (const op of levels) for (const c of clients) out.push({ part: 'levels', on: 'leader', op, clients: c });
  if (parts.includes('follower')) for (const c of clients) out.push({ part: 'follower', on: 'follower', op: 'linearizable', clients: c });
  // Leader and follower alternate, so both see the same stretch of a noisy machine.
  if (parts.includes('writes')) for (const c of clients) for (const on of ['leader', 'follower'] as const) out.push({ part: 'writes', on, op: 'write', clients: c });
  if (parts.includes('mixed')) for (const c of clients) out.push({ part: 'mixed', on: 'leader', op: 'mixed', clients: c });
  return out;
}

const label = (p: Phase): string => `${p.part} ${p.op} on ${p.on} clients=${p.clients}`;

function line(p: Phase, x: PhaseRun): string {
  const f = (what: string, y: OpFigures) => `${Math.round(y.perSec)} ${what}/s, p50 ${ms(y.p50Ms)}, p99 ${ms(y.p99Ms)}`;
  const parts: string[] = [];
  if (p.op === 'mixed') parts.push(f('ops', x.all), `reads ${f('reads', x.reads!)}`, `writes ${f('writes', x.writes!)}`);
  else if (p.op === 'write') parts.push(f('writes', x.writes!));
  else parts.push(f('reads', x.reads!));
  if (x.rounds > 0) parts.push(p.op === 'lease' ? `${x.rounds} read rounds (lease lapsed)` : `${x.rounds} read rounds, ${(x.readsTotal / x.rounds).toFixed(1)} reads/round`);
  if (p.op === 'log') parts.push(`${x.readsTotal > 0 ? (x.logEntries / x.readsTotal).toFixed(2) : '-'} log entries/read`);
  if (x.errors > 0) parts.push(`${x.errors} errors`);
  if (x.leaderChanges > 0) parts.push(`${x.leaderChanges} term changes`);
  return parts.join(', ');
}

function opsReport(rs: OpFigures[]): Record<string, unknown> {
  return {
    perSec: stat(rs.map((r) => r.perSec)),
    latencyMs: { p50: stat(rs.map((r) => r.p50Ms), 3).median, p99: stat(rs.map((r) => r.p99Ms), 3).median },
  };
}

function workloadOf(p: Phase, storage: StorageKind, payloadBytes: number, mixWrites: number): string {
  const where = `3 nodes, ${storage === 'file' ? 'FileStorage' : 'MemoryStorage'}, KV state machine, ${p.clients} client${p.clients === 1 ? '' : 's'}`;
  switch (p.part) {
    case 'levels': return `${where}, ${p.op} reads (get of a random key) on the leader`;
    case 'follower': return `${where}, linearizable reads on a follower that forwards them to the leader`;
    case 'writes': return `${where}, ${payloadBytes}-byte puts (committed) on the ${p.on}${p.on === 'follower' ? ', forwarded to the leader' : ''}`;
    case 'mixed': return `${where}, on the leader, ${100 - mixWrites}% linearizable reads and ${mixWrites}% ${payloadBytes}-byte puts (committed)`;
  }
}

function report(p: Phase, rs: PhaseRun[], storage: StorageKind, placement: NodePlacement, payloadBytes: number, mixWrites: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    workload: workloadOf(p, storage, payloadBytes, mixWrites),
    part: p.part, on: p.on, ...(p.op === 'write' || p.op === 'mixed' ? {} : { consistency: p.op }), clients: p.clients, storage, placement, runs: rs.length,
  };
  if (p.op === 'mixed') Object.assign(out, { ops: opsReport(rs.map((r) => r.all)), reads: opsReport(rs.map((r) => r.reads!)), writes: opsReport(rs.map((r) => r.writes!)) });
  else if (p.op === 'write') Object.assign(out, { writes: opsReport(rs.map((r) => r.writes!)) });
  else Object.assign(out, { reads: opsReport(rs.map((r) => r.reads!)) });
  if (p.op !== 'write') out.readIndexRounds = stat(rs.map((r) => r.rounds));
  // Lease reads start a round only when the lease has lapsed, and 'log' and 'stale' reads never do.
  if (p.op === 'linearizable' || p.op === 'mixed') out.readsPerRound = stat(rs.map((r) => (r.rounds === 0 ? NaN : r.readsTotal / r.rounds)), 1);
  if (p.op === 'log') out.logEntriesPerRead = stat(rs.map((r) => (r.readsTotal === 0 ? NaN : r.logEntries / r.readsTotal)), 3);
  out.errors = rs.reduce((a, r) => a + r.errors, 0);
  out.leaderChanges = rs.map((r) => r.leaderChanges);
  return out;
}

/** Runs every phase `runs` times; resolves with the suite's report (the caller prints it). */
export async function runReadsSuite(o: ReadsSuiteOptions): Promise<Record<string, unknown>> {
  const a = { ...Object.fromEntries(Object.entries(READS_OPTIONS).map(([k, v]) => [k, v.default])), ...Object.fromEntries(Object.entries(o.argv).filter(([, v]) => v !== undefined)) } as Record<keyof typeof READS_OPTIONS, string>;
  const levels = listOf('consistency', a.consistency, LEVELS);
  const parts = listOf('read-parts', a['read-parts'], PARTS);
  const mixWrites = intList('mix-writes', a['mix-writes'], 0, 100)[0];
  const keys = intList('read-keys', a['read-keys'], 1, 1_000_000)[0];
  const warmupMs = intList('warmup-ms', a['warmup-ms'], 0, 60_000)[0];
  // Each run's untimed warm-up, spread over the 8 kinds of operation (4 levels, follower reads, puts on leader and follower, mixed).
  const runWarmupMs = intList('run-warmup-ms', a['run-warmup-ms'], 0, 600_000)[0];
  const phases = phasesOf(parts, levels, o.clients);

  const results: Record<string, unknown>[] = [];
  const forwarding: Record<string, unknown>[] = [];
  const loadAverage: Record<string, unknown>[] = [];
  for (const storage of o.storages) {
    for (const placement of o.placements) {
      const runsOf = phases.map((): PhaseRun[] => []);
      const load: { start: number; end: number }[] = [];
      for (let run = 1; run <= o.runs; run++) {
        const loadAtStart = loadavg()[0];
        const dir = storage === 'file' ? mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'actor-raft-bench-reads-')) : null;
        const t0 = performance.now();
        const cluster = await LocalCluster.start({
          size: 3, placement, logger: o.logger, forwardToLeader: true,
          storage: dir === null ? undefined : (id) => fileStorageSpec({ dir: join(dir, `n${id}`) }),
          stateMachine: { module: KV_MODULE, export: 'createKv', args: {} },
        });
        try {
          // The keys every phase reads and writes, written 64 at a time.
          const { leader } = await roles(cluster);
          let next = 0;
          await Promise.all(Array.from({ length: Math.min(64, keys) }, async () => {
            while (next < keys) await cluster.node(leader).clientWrite(putOf(next++, o.payloadBytes), { timeoutMs: 30_000 });
          }));
          await settle(cluster);
          // Untimed: every kind of operation for a moment, so no phase pays for the threads' first compilations.
          // Without it the first phase (linearizable reads, 1 client) ran at half the speed the same reads had later in the run.
          for (const p of phasesOf(PARTS, LEVELS, [16])) {
            await measure(cluster, p, { seconds: runWarmupMs / 1000 / 8, warmupMs: 0, keys, payloadBytes: o.payloadBytes, mixWrites });
          }
          await settle(cluster);
          const m = await cluster.node(leader).currentMetrics();
          progress(`reads ${storage} ${placement} run ${run}/${o.runs}: cluster up, ${keys} keys written and warmed up in ${Math.round(performance.now() - t0)} ms (leader n${m.currentLeader}, log at ${m.lastLogIndex}, snapshot at ${m.snapshotIndex})`);
          for (let i = 0; i < phases.length; i++) {
            const x = await measure(cluster, phases[i], { seconds: o.seconds, warmupMs, keys, payloadBytes: o.payloadBytes, mixWrites });
            runsOf[i].push(x);
            progress(`reads ${storage} ${placement} ${label(phases[i])} run ${run}/${o.runs}: ${line(phases[i], x)}`);
            await settle(cluster);
          }
        } finally {
          await cluster.shutdown();
          if (dir !== null) rmSync(dir, { recursive: true, force: true });
        }
        load.push({ start: round(loadAtStart, 2), end: round(loadavg()[0], 2) });
      }
      phases.forEach((p, i) => results.push(report(p, runsOf[i], storage, placement, o.payloadBytes, mixWrites)));
      forwarding.push(...forwardingCost(phases, runsOf, storage, placement));
      loadAverage.push({ storage, placement, runs: load });
    }
  }
  return {
    benchmark: 'actor-raft reads', runs: o.runs, secondsPerPhase: o.seconds, warmupMs, runWarmupMs,
    config: {
      cluster: '3 nodes, forwardToLeader on every node, default RaftConfig (lease reads need checkQuorum, on by default)',
      keys, payloadBytes: o.payloadBytes, mixWritesPercent: mixWrites, readTimeoutMs: 10_000, writeResponseMode: 'committed',
      statistic: 'median of runs; p50/p99 are the medians of each run\'s p50/p99; readsPerRound counts every read of the phase (warm-up included) over the leader\'s readIndexRounds meanwhile',
    },
    // The 1-minute load average of the machine at each run's start and end: on a shared machine, how much else ran.
    loadAverage,
    forwardingCost: forwarding,
    results,
  };
}

/**
 * What forwarding costs, per client count: the follower's figures next to the leader's for the same
 * operation (puts; linearizable reads), from the medians of the runs.
 */
function forwardingCost(phases: Phase[], runsOf: PhaseRun[][], storage: StorageKind, placement: NodePlacement): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const find = (part: Part, on: Phase['on'], op: Phase['op'], clients: number) => {
    const i = phases.findIndex((p) => p.part === part && p.on === on && p.op === op && p.clients === clients);
    return i === -1 ? null : runsOf[i].map((r) => (op === 'write' ? r.writes! : r.reads!));
  };
  const med = (rs: OpFigures[], f: (x: OpFigures) => number) => median(rs.map(f).filter((x) => !Number.isNaN(x)));
  const clientCounts = [...new Set(phases.map((p) => p.clients))];
  for (const [what, leaderOf, followerOf] of [
    ['puts', (c: number) => find('writes', 'leader', 'write', c), (c: number) => find('writes', 'follower', 'write', c)],
    ['linearizable reads', (c: number) => find('levels', 'leader', 'linearizable', c), (c: number) => find('follower', 'follower', 'linearizable', c)],
  ] as const) {
    for (const c of clientCounts) {
      const l = leaderOf(c);
      const f = followerOf(c);
      if (l === null || f === null) continue;
      const lo = med(l, (x) => x.perSec);
      const fo = med(f, (x) => x.perSec);
      out.push({
        operation: what, clients: c, storage, placement,
        opsPerSec: { leader: Math.round(lo), follower: Math.round(fo), followerShare: round(fo / lo, 2) },
        p50Ms: { leader: round(med(l, (x) => x.p50Ms)), follower: round(med(f, (x) => x.p50Ms)) },
        p99Ms: { leader: round(med(l, (x) => x.p99Ms)), follower: round(med(f, (x) => x.p99Ms)) },
      });
    }
  }
  return out;
}
