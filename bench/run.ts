/**
 * `npm run bench`: committed writes per second and latency of a 3-node cluster in one process,
 * MemoryStorage, 100-byte payloads, for 1, 64 and 256 concurrent clients, under worker and local
 * placement. Each configuration runs `--runs` times; the JSON reports the median of the runs.
 * Progress goes to stderr, the JSON to stdout (and to --out when given).
 *
 *   npm run bench
 *   npm run bench -- --runs 5 --seconds 5 --clients 256 --placement worker --out bench-result.json
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { LocalCluster } from '../actors/local-cluster';
import { ForwardToLeaderError } from '../actors/raft/core/errors';
import type { NodeId } from '../actors/raft/core/types';
import type { NodePlacement } from '../actors/node';
import { COUNT_MODULE } from './count-state-machine';
import { createLogger } from '../runtime/logging';

const { values: argv } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '1,64,256' },
    placement: { type: 'string', default: 'worker,local' },
    payload: { type: 'string', default: '100' },
    out: { type: 'string' },
  },
});

function ints(name: string, v: string, max: number): number[] {
  const xs = v.split(',').map(Number);
  for (const x of xs) if (!Number.isInteger(x) || x < 1 || x > max) throw new RangeError(`--${name}: ${v} (each must be an integer in 1..${max})`);
  return xs;
}
const runs = ints('runs', argv.runs!, 50)[0];
const seconds = ints('seconds', argv.seconds!, 600)[0];
const clientCounts = ints('clients', argv.clients!, 4096);
const payloadBytes = ints('payload', argv.payload!, 1 << 20)[0];
const placements = argv.placement!.split(',').map((p) => {
  if (p !== 'worker' && p !== 'local') throw new RangeError(`--placement: ${p} (worker or local)`);
  return p as NodePlacement;
});

// Raft's info lines would interleave with the progress lines; RAFT_LOG_LEVEL brings them back.
const logger = createLogger({ name: 'bench', level: process.env.RAFT_LOG_LEVEL ? undefined : 'warn' });

interface RunResult { opsPerSec: number; p50Ms: number; p99Ms: number; ops: number; errors: number }

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pct = (sorted: Float64Array, p: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const round = (x: number, d = 3): number => Number(x.toFixed(d));

async function once(placement: NodePlacement, clients: number): Promise<RunResult> {
  const cluster = await LocalCluster.start({ size: 3, placement, logger, stateMachine: { module: COUNT_MODULE, export: 'createCount', args: {} } });
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
    await Promise.all(Array.from({ length: clients }, client));
    const sorted = Float64Array.from(latencies).sort();
    return { opsPerSec: latencies.length / seconds, p50Ms: pct(sorted, 0.5), p99Ms: pct(sorted, 0.99), ops: latencies.length, errors };
  } finally {
    await cluster.shutdown();
  }
}

async function main(): Promise<void> {
  const results = [];
  for (const placement of placements) {
    for (const clients of clientCounts) {
      const rs: RunResult[] = [];
      for (let r = 0; r < runs; r++) {
        const res = await once(placement, clients);
        rs.push(res);
        process.stderr.write(`${placement} clients=${clients} run ${r + 1}/${runs}: ${Math.round(res.opsPerSec)} ops/s, p50 ${res.p50Ms.toFixed(2)} ms, p99 ${res.p99Ms.toFixed(2)} ms\n`);
      }
      results.push({
        workload: `3 nodes, MemoryStorage, ${payloadBytes}-byte payloads, ${clients} client${clients === 1 ? '' : 's'}`,
        placement, clients, runs,
        committedOpsPerSec: { median: Math.round(median(rs.map((r) => r.opsPerSec))), runs: rs.map((r) => Math.round(r.opsPerSec)) },
        latencyMs: { p50: round(median(rs.map((r) => r.p50Ms))), p99: round(median(rs.map((r) => r.p99Ms))) },
        errors: rs.reduce((a, r) => a + r.errors, 0),
      });
    }
  }
  const report = {
    benchmark: 'actor-raft write path', date: new Date().toISOString(), node: process.version,
    cpus: cpus().length, cpuModel: cpus()[0]?.model, secondsPerRun: seconds, warmupMs: 500, results,
  };
  const json = JSON.stringify(report, null, 2);
  process.stdout.write(`${json}\n`);
  if (argv.out) writeFileSync(argv.out, `${json}\n`);
}

main().catch((err) => { process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`); process.exit(1); });
