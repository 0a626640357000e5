/**
 * `npm run bench`: committed writes per second and latency of a 3-node cluster in one process,
 * 100-byte payloads, for 1, 64 and 256 concurrent clients, under worker and local placement, on
 * MemoryStorage and on FileStorage (real files in a temp directory, every answer fdatasync'd; the
 * report adds the fsyncs per second the three nodes issued and the log entries each fsync covered).
 * Each configuration runs `--runs` times; the JSON reports the median of the runs.
 * Progress goes to stderr, the JSON to stdout (and to --out when given).
 *
 *   npm run bench
 *   npm run bench -- --runs 5 --seconds 5 --clients 256 --placement worker --storage file --out bench-result.json
 *   BENCH_DIR=/mnt/ssd npm run bench -- --storage file   # where FileStorage writes (default: the OS temp dir)
 *
 * `--suite` picks what runs: `write` (the default: the write path above), `snapshots` (only the
 * snapshot suite of bench/snapshots.ts: build and install time of a 100 MB and a 1M-key snapshot,
 * and the throughput cost of snapshotting under a write load; a few minutes, so opt-in), `reads`
 * (only the reads suite of bench/reads.ts: reads/s and latency at each consistency level, reads per
 * read-index round, reads and writes forwarded by a follower, a mixed load; about 2 minutes),
 * `network` (bench/network.ts: a 3-process TCP cluster's batched writes, and the actor-raft-kv
 * HTTP service under autocannon against a plain HTTP map server; about 2 minutes), or
 * `all` (the four; the JSON then holds each suite's report under `suites`). --runs, --seconds,
 * --clients, --placement, --storage and --payload apply to every suite; the snapshot suite's own
 * defaults are --clients 64 --placement local --storage file, the reads suite's --seconds 1
 * --placement worker --storage memory, the network suite's --storage file, and their own options
 * are described in their files.
 *
 *   npm run bench -- --suite snapshots --runs 3
 *   npm run bench -- --suite reads --runs 3
 *   npm run bench -- --suite network --runs 3
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster } from '../actors/local-cluster';
import { ForwardToLeaderError } from '../actors/raft/core/errors';
import type { NodeId } from '../actors/raft/core/types';
import type { NodePlacement } from '../actors/node';
import { COUNT_MODULE } from './count-state-machine';
import { createLogger } from '../runtime/logging';
import { fileStorageSpec, FileStorageStats } from '../storage/file-storage';
import { runSnapshotSuite, SNAPSHOT_OPTIONS } from './snapshots';
import { READS_OPTIONS, runReadsSuite } from './reads';
import { NETWORK_OPTIONS, runNetworkSuite } from './network';
import { median, percentile, round, type StorageKind } from './common';

const { values: argv } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    // No defaults here: each suite has its own (see below, bench/snapshots.ts and bench/reads.ts).
    seconds: { type: 'string' },
    clients: { type: 'string' },
    placement: { type: 'string' },
    storage: { type: 'string' },
    payload: { type: 'string', default: '100' },
    out: { type: 'string' },
    suite: { type: 'string', default: 'write' },
    ...SNAPSHOT_OPTIONS,
    ...READS_OPTIONS,
    ...NETWORK_OPTIONS,
  },
});
const suite = argv.suite!;
const SUITES = ['write', 'snapshots', 'reads', 'network', 'all'];
if (!SUITES.includes(suite)) throw new RangeError(`--suite: ${suite} (write, snapshots, reads, network or all)`);

function ints(name: string, v: string, max: number): number[] {
  const xs = v.split(',').map(Number);
  for (const x of xs) if (!Number.isInteger(x) || x < 1 || x > max) throw new RangeError(`--${name}: ${v} (each must be an integer in 1..${max})`);
  return xs;
}
const runs = ints('runs', argv.runs!, 50)[0];
const seconds = ints('seconds', argv.seconds ?? '3', 600)[0];
const clientCounts = ints('clients', argv.clients ?? '1,64,256', 4096);
const payloadBytes = ints('payload', argv.payload!, 1 << 20)[0];
const placementsOf = (v: string): NodePlacement[] => v.split(',').map((p) => {
  if (p !== 'worker' && p !== 'local') throw new RangeError(`--placement: ${p} (worker or local)`);
  return p as NodePlacement;
});
const placements = placementsOf(argv.placement ?? 'worker,local');
const storagesOf = (v: string): StorageKind[] => v.split(',').map((k) => {
  if (k !== 'memory' && k !== 'file') throw new RangeError(`--storage: ${k} (memory or file)`);
  return k as StorageKind;
});
const storages = storagesOf(argv.storage ?? 'memory,file');

// Raft's info lines would interleave with the progress lines; RAFT_LOG_LEVEL brings them back.
const logger = createLogger({ name: 'bench', level: process.env.RAFT_LOG_LEVEL ? undefined : 'warn' });

interface RunResult { opsPerSec: number; p50Ms: number; p99Ms: number; ops: number; errors: number; fsyncsPerSec?: number; entriesPerFsync?: number }


async function once(placement: NodePlacement, storage: StorageKind, clients: number): Promise<RunResult> {
  const dataDir = storage === 'file' ? mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'actor-raft-bench-')) : null;
  const stats = new Map<number, FileStorageStats>();
  const storageOf = dataDir === null ? undefined : (id: NodeId) => {
    const st = FileStorageStats.create();
    stats.set(id, st);
    return fileStorageSpec({ dir: join(dataDir, `n${id}`), stats: st.buffer });
  };
  const cluster = await LocalCluster.start({ size: 3, placement, logger, storage: storageOf, stateMachine: { module: COUNT_MODULE, export: 'createCount', args: {} } });
  const totals = () => [...stats.values()].map((s) => s.read()).reduce((a, r) => ({ fsyncs: a.fsyncs + r.fsyncs, entries: a.entries + r.entries }), { fsyncs: 0, entries: 0 });
  try {
    let leader: NodeId = await cluster.waitForLeader();
    const payload = new Uint8Array(payloadBytes).fill(7);
    const warmupEnd = performance.now() + 500;
    const end = warmupEnd + seconds * 1000;
    const latencies: number[] = [];
    let errors = 0;
    const client = async () => {
      for (;;) {
        const t = performance.now();
        if (t >= end) return;
        try {
          await cluster.node(leader).clientWrite(payload, { responseMode: 'committed', timeoutMs: 10_000 });
          const done = performance.now();
          if (t >= warmupEnd && done <= end) latencies.push(done - t);
        } catch (err) {
          errors++;
          if (err instanceof ForwardToLeaderError && err.leaderId !== null) leader = err.leaderId;
          else leader = await cluster.waitForLeader();
        }
      }
    };
    let atWarmupEnd = totals();
    const mark = setTimeout(() => { atWarmupEnd = totals(); }, Math.max(0, warmupEnd - performance.now()));
    await Promise.all(Array.from({ length: clients }, client));
    clearTimeout(mark);
    const sorted = Float64Array.from(latencies).sort();
    const result: RunResult = { opsPerSec: latencies.length / seconds, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), ops: latencies.length, errors };
    if (dataDir !== null) {
      const t = totals();
      const fsyncs = t.fsyncs - atWarmupEnd.fsyncs;
      result.fsyncsPerSec = fsyncs / seconds;
      result.entriesPerFsync = fsyncs === 0 ? 0 : (t.entries - atWarmupEnd.entries) / fsyncs;
    }
    return result;
  } finally {
    await cluster.shutdown();
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  }
}

async function writePathSuite(): Promise<Record<string, unknown>> {
  const results = [];
  for (const storage of storages) {
    for (const placement of placements) {
      for (const clients of clientCounts) {
        const rs: RunResult[] = [];
        for (let r = 0; r < runs; r++) {
          const res = await once(placement, storage, clients);
          rs.push(res);
          const disk = res.fsyncsPerSec === undefined ? '' : `, ${Math.round(res.fsyncsPerSec)} fsyncs/s, ${res.entriesPerFsync!.toFixed(1)} entries/fsync`;
          process.stderr.write(`${storage} ${placement} clients=${clients} run ${r + 1}/${runs}: ${Math.round(res.opsPerSec)} ops/s, p50 ${res.p50Ms.toFixed(2)} ms, p99 ${res.p99Ms.toFixed(2)} ms${disk}\n`);
        }
        results.push({
          workload: `3 nodes, ${storage === 'file' ? 'FileStorage' : 'MemoryStorage'}, ${payloadBytes}-byte payloads, ${clients} client${clients === 1 ? '' : 's'}`,
          storage, placement, clients, runs,
          committedOpsPerSec: { median: Math.round(median(rs.map((r) => r.opsPerSec))), runs: rs.map((r) => Math.round(r.opsPerSec)) },
          latencyMs: { p50: round(median(rs.map((r) => r.p50Ms))), p99: round(median(rs.map((r) => r.p99Ms))) },
          ...(storage === 'file' ? {
            fsyncsPerSec: { median: Math.round(median(rs.map((r) => r.fsyncsPerSec!))), runs: rs.map((r) => Math.round(r.fsyncsPerSec!)), note: 'all three nodes together, log and hard state' },
            entriesPerFsync: round(median(rs.map((r) => r.entriesPerFsync!)), 2),
          } : {}),
          errors: rs.reduce((a, r) => a + r.errors, 0),
        });
      }
    }
  }
  return { benchmark: 'actor-raft write path', secondsPerRun: seconds, warmupMs: 500, results };
}

async function main(): Promise<void> {
  const machine = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model };
  const optionsOf = <O extends object>(o: O): Record<string, string | undefined> => Object.fromEntries(Object.keys(o).map((k) => [k, (argv as Record<string, string | undefined>)[k]]));
  const write = suite === 'write' || suite === 'all' ? await writePathSuite() : null;
  const snapshots = suite !== 'snapshots' && suite !== 'all' ? null : await runSnapshotSuite({
    runs, seconds, payloadBytes, logger,
    clients: ints('clients', argv.clients ?? '64', 4096),
    placements: placementsOf(argv.placement ?? 'local'),
    storages: storagesOf(argv.storage ?? 'file'),
    argv: optionsOf(SNAPSHOT_OPTIONS),
  });
  const reads = suite !== 'reads' && suite !== 'all' ? null : await runReadsSuite({
    runs, payloadBytes, logger,
    seconds: ints('seconds', argv.seconds ?? '1', 600)[0],
    clients: ints('clients', argv.clients ?? '1,64,256', 4096),
    placements: placementsOf(argv.placement ?? 'worker'),
    storages: storagesOf(argv.storage ?? 'memory'),
    argv: optionsOf(READS_OPTIONS),
  });
  const network = suite !== 'network' && suite !== 'all' ? null : await runNetworkSuite({
    runs, payloadBytes, logger,
    seconds: ints('seconds', argv.seconds ?? '3', 600)[0],
    clients: ints('clients', argv.clients ?? '1,64,256', 4096),
    placements: placementsOf(argv.placement ?? 'worker'),
    storages: storagesOf(argv.storage ?? 'file'),
    argv: optionsOf(NETWORK_OPTIONS),
  });
  const ran = Object.entries({ write, snapshots, reads, network }).filter(([, r]) => r !== null) as [string, Record<string, unknown>][];
  const report = ran.length > 1
    ? { benchmark: 'actor-raft', ...machine, suites: Object.fromEntries(ran) }
    : { benchmark: ran[0][1].benchmark, ...machine, ...ran[0][1] };
  const json = JSON.stringify(report, null, 2);
  process.stdout.write(`${json}\n`);
  if (argv.out) writeFileSync(argv.out, `${json}\n`);
}

main().catch((err) => { process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`); process.exit(1); });
