/**
 * The snapshot suite of `npm run bench` (issue 6). Opt-in, because it takes a few minutes and a
 * few GB: `npm run bench` alone runs only the write-path suite.
 *
 *   npm run bench -- --suite snapshots                 # this suite only
 *   npm run bench -- --suite all                       # the write path, then this suite
 *   npm run bench -- --suite snapshots --runs 5 --cases keys --encodings binary --placement worker,local
 *   npm run bench -- --suite snapshots --snapshot-every 0,500 --load-keys 1000000 --seconds 5
 *   BENCH_DIR=/mnt/ssd npm run bench -- --suite snapshots   # where FileStorage writes (default: the OS temp dir)
 *
 * Part 1, build and install (`buildInstall` in the JSON). A 3-node cluster on FileStorage (each
 * node in its own temp directory) with the bench state machine (bench/snapshot-state-machine.ts)
 * is filled with either
 *   blob  `--blob-mb` (100) values of 1 MiB, one per log entry, or
 *   keys  `--keys` (1,000,000) keys of 10 bytes with 10-byte values, 10,000 per log entry;
 * the leader then takes `snapshotNow()`: the build time is that call's duration (state machine's
 * snapshot() + crc32 + chunked writes to storage + fdatasync, until durable), reported with the
 * snapshot's bytes and the part spent in snapshot() itself (`encodeMs`). A fresh node 4 is then
 * started and added (`proposeConfigChange({ add: [4] })`); the leader's log is purged behind the
 * snapshot (snapshotKeepEntries 8; 0 for a fill of under 16 entries) and its replication stream keeps only 32 entries in memory
 * (replicationLagThreshold 32, maxPayloadEntries 16, maxInflightAppends 2), so node 4 can only
 * catch up by InstallSnapshot, in chunks of the default snapshotMaxChunkBytes (3 MiB). The install
 * time runs from the config change's proposal until node 4's lastApplied reaches the snapshot's
 * index (polled every 5 ms), so it covers the transfer (leader reads each chunk back from its file,
 * sends it, node 4 writes it to a .tmp file and answers), the follower making it durable and current,
 * and the restore (Apply actor reads it back, checks crc32, the state machine decodes it; the part
 * in restore() itself is `decodeMs`). Under local placement the nodes' log lines also give the
 * transfer's own duration and the Apply actor's restore duration (`transferMs`, `restoreMs`);
 * worker threads log on their own, so those two are absent there. Both snapshot encodings of the
 * bench state machine are measured (`--encodings`): `binary` (length-prefixed, one buffer) and
 * `json` (exactly the KV example's JSON.stringify of the whole map).
 *
 * Part 2, throughput impact (`writeLoad`). The write-path workload of bench/run.ts (`--clients`,
 * default 64, each writing `--payload`-byte commands, default 100, responseMode 'committed', for
 * `--seconds` after a 500 ms warm-up) on the bench state machine (binary encoding), where each
 * write puts one new key (16-byte key, the rest value), after preloading `--load-keys` (100,000)
 * 10-byte keys so a snapshot is a few MB, as a real state would be. Compared: automatic snapshots
 * off (snapshotLogsSinceLast 0) and every N applied entries for each N of `--snapshot-every`
 * (default 5000 (the default config), 2000, 500), default config otherwise. Reported: committed ops/s,
 * p50/p99 latency, and the snapshots the three nodes took during the measured window.
 *
 * Every figure is the median of `--runs` runs, with each run's value alongside. Progress goes to
 * stderr, the JSON to stdout (and to --out). Memory: a 100 MB state is held by each of the four
 * nodes, plus the snapshot's bytes on the leader and on node 4 and the filled log on the followers:
 * about 1.5 GB at the peak for the blob case under local placement (one heap).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { LocalCluster } from '../actors/local-cluster';
import { median, percentile, round, type StorageKind, type SuiteOptions } from './common';
import { ForwardToLeaderError } from '../actors/raft/core/errors';
import type { RaftConfig } from '../actors/raft/core/config';
import type { NodeId, SnapshotMeta } from '../actors/raft/core/types';
import type { NodePlacement, RaftNode } from '../actors/node';
import { fileStorageSpec } from '../storage/file-storage';
import { encodePutMany, SNAP_BENCH_MODULE, type SnapBenchStats, type SnapshotEncoding } from './snapshot-state-machine';

/** This suite's own options, merged into bench/run.ts's parseArgs. */
export const SNAPSHOT_OPTIONS = {
  cases: { type: 'string', default: 'blob,keys' },
  encodings: { type: 'string', default: 'binary,json' },
  'blob-mb': { type: 'string', default: '100' },
  keys: { type: 'string', default: '1000000' },
  'snapshot-every': { type: 'string', default: '5000,2000,500' },
  'load-keys': { type: 'string', default: '100000' },
} as const;

type Case = 'blob' | 'keys';

export type SnapshotSuiteOptions = SuiteOptions<keyof typeof SNAPSHOT_OPTIONS & string>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const progress = (line: string): void => { process.stderr.write(`${line}\n`); };
/** `{ median, runs }` of a per-run figure, rounded; absent when no run has it. */
function stat(xs: (number | undefined)[], d = 1): { median: number; runs: number[] } | undefined {
  if (xs.some((x) => x === undefined || Number.isNaN(x))) return undefined;
  const ys = xs as number[];
  return { median: round(median(ys), d), runs: ys.map((x) => round(x, d)) };
}

function intList(name: string, v: string, min: number, max: number): number[] {
  const xs = v.split(',').map(Number);
  for (const x of xs) if (!Number.isInteger(x) || x < min || x > max) throw new RangeError(`--${name}: ${v} (each must be an integer in ${min}..${max})`);
  return xs;
}

function tempStorage(storage: StorageKind): { dir: string | null; spec: ((id: NodeId) => ReturnType<typeof fileStorageSpec>) | undefined; remove(): void } {
  if (storage === 'memory') return { dir: null, spec: undefined, remove() {} };
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'actor-raft-bench-snap-'));
  return { dir, spec: (id) => fileStorageSpec({ dir: join(dir, `n${id}`) }), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `payload` to the leader until it is committed, following leader changes. */
async function writeOnce(cluster: LocalCluster, at: { leader: NodeId }, payload: Uint8Array): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await cluster.node(at.leader).clientWrite(payload, { responseMode: 'committed', timeoutMs: 60_000 })).index;
    } catch (err) {
      if (attempt >= 20) throw err;
      if (err instanceof ForwardToLeaderError && err.leaderId !== null) at.leader = err.leaderId;
      else at.leader = await cluster.waitForLeader();
    }
  }
}

/** Writes `count` entries built by `entry(i)`, `inflight` at a time; resolves with the highest index written. */
async function fill(cluster: LocalCluster, at: { leader: NodeId }, count: number, entry: (i: number) => Uint8Array, inflight = 4): Promise<number> {
  let next = 0;
  let last = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      last = Math.max(last, await writeOnce(cluster, at, entry(i)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, worker));
  return last;
}

const KEY_BATCH = 10_000;
const key10 = (p: string, n: number): string => `${p}${String(n).padStart(9, '0')}`;
/** Entry `j` of a fill of `total` 10-byte keys with 10-byte values, 10,000 per entry. */
function keysEntry(prefix: string, total: number, j: number): Uint8Array {
  const pairs: [string, string][] = [];
  for (let k = j * KEY_BATCH; k < Math.min(total, (j + 1) * KEY_BATCH); k++) pairs.push([key10(prefix, k), key10('v', k)]);
  return encodePutMany(pairs);
}
const MIB = 1 << 20;
const blobEntry = (j: number): Uint8Array => encodePutMany([[`blob-${String(j).padStart(5, '0')}`, String.fromCharCode(97 + (j % 26)).repeat(MIB)]]);

async function stats(n: RaftNode): Promise<SnapBenchStats> { return n.query<SnapBenchStats>({ q: 'stats' }); }

/**
 * A logger that keeps the lines a snapshot measurement needs and forwards warnings (everything with
 * RAFT_LOG_LEVEL) to stderr. Worker threads log straight to stderr at this logger's level, so under
 * worker placement it is at 'warn' (nothing to capture there).
 */
function captureLogger(placement: NodePlacement): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const all = process.env.RAFT_LOG_LEVEL !== undefined;
  const keep = /^(snapshot transfer (started|finished)|state machine restored from a snapshot|snapshot created)$/;
  const level = process.env.RAFT_LOG_LEVEL?.trim().toLowerCase() || (placement === 'local' ? 'info' : 'warn');
  const logger = pino({ level, name: 'bench' }, {
    write(line: string) {
      const l = JSON.parse(line) as Record<string, unknown>;
      if (typeof l.msg === 'string' && keep.test(l.msg)) lines.push(l);
      if (all || (l.level as number) >= 40) process.stderr.write(line);
    },
  });
  return { logger, lines };
}

interface BuildInstallRun {
  fillMs: number; entries: number; stateBytes: number; keys: number;
  snapshotBytes: number; buildMs: number; encodeMs: number; createMs?: number;
  installMs: number; decodeMs: number; transferMs?: number; transferChunks?: number; transferRestarts?: number; restoreMs?: number;
  joinMs: number; leaderChanged: boolean;
}

const STREAM_SMALL: Partial<RaftConfig> = { replicationLagThreshold: 32, maxPayloadEntries: 16, maxInflightAppends: 2 };
/**
 * Election timeouts of part 1: under local placement every node shares one thread, and the
 * state machine's snapshot() and restore() run on it, so encoding 100 MB as JSON (about a second)
 * stalls every node's heartbeats, and with the default 150-300 ms the leader was deposed while
 * taking the very snapshot being measured.
 */
const PATIENT: Partial<RaftConfig> = { electionTimeoutMinMs: 3000, electionTimeoutMaxMs: 6000 };
/** Entries kept behind the snapshot: 8, or none for a fill of a few entries, so the log node 4 needs is always purged. */
const keepEntries = (fillEntries: number): number => (fillEntries < 16 ? 0 : 8);

async function buildInstallOnce(kind: Case, encoding: SnapshotEncoding, placement: NodePlacement, storage: StorageKind, blobMb: number, keys: number): Promise<BuildInstallRun> {
  const store = tempStorage(storage);
  const cap = captureLogger(placement);
  const entries = kind === 'blob' ? blobMb : Math.ceil(keys / KEY_BATCH);
  const cluster = await LocalCluster.start({
    size: 3, placement, logger: cap.logger, storage: store.spec,
    stateMachine: { module: SNAP_BENCH_MODULE, export: 'createSnapBench', args: { encoding } },
    config: { ...STREAM_SMALL, ...PATIENT, snapshotLogsSinceLast: 0, snapshotKeepEntries: keepEntries(entries), catchUpTimeoutMs: 120_000 },
  });
  try {
    const at = { leader: await cluster.waitForLeader() };
    const t0 = performance.now();
    const last = await fill(cluster, at, entries, kind === 'blob' ? blobEntry : (j) => keysEntry('k', keys, j));
    await cluster.waitForApplied(last, { timeoutMs: 300_000 });
    const fillMs = performance.now() - t0;
    const leader = cluster.node(at.leader);
    const filled = await stats(leader);

    const t1 = performance.now();
    const meta: SnapshotMeta = await leader.snapshotNow({ timeoutMs: 300_000 });
    const buildMs = performance.now() - t1;
    const built = await stats(leader);
    const created = cap.lines.find((l) => l.msg === 'snapshot created' && l.index === meta.lastIncludedIndex);
    // Should the leader have changed all the same, the new one must hold a snapshot too, or node 4
    // would catch up from its log and this would measure no install.
    const leaderChanged = (await cluster.waitForLeader()) !== at.leader;
    if (leaderChanged) for (const n of cluster.all()) if (n.id !== leader.id) await n.snapshotNow({ timeoutMs: 300_000 });

    const n4 = await cluster.addNode(4);
    const since = Date.now();
    const t2 = performance.now();
    const change = (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await cluster.node(await cluster.waitForLeader({ among: [1, 2, 3] })).proposeConfigChange({ add: [4] }, { timeoutMs: 300_000 });
        } catch (err) {
          if (attempt >= 10 || (err as Error).name !== 'NodeNotLeaderError') throw err;
        }
      }
    })();
    let failed: unknown = null;
    change.catch((err: unknown) => { failed = err; });
    // The state machine itself, not the Raft metrics: those count the snapshot applied as soon as
    // it is installed in storage, before the Apply actor has restored it.
    while ((await stats(n4)).applied < meta.lastIncludedIndex) {
      if (failed !== null) throw failed;
      if (performance.now() - t2 > 300_000) throw new Error(`node 4 did not install snapshot ${meta.id} within 300 s`);
      await sleep(5);
    }
    const installMs = performance.now() - t2;
    await change;
    const joinMs = performance.now() - t2;
    const installed = await stats(n4);
    if (installed.restores < 1 || installed.keys !== filled.keys) throw new Error(`node 4 holds ${installed.keys} keys after ${installed.restores} restores; the leader held ${filled.keys}`);
    const recent = (l: Record<string, unknown>) => typeof l.time === 'number' && l.time >= since;
    const finished = cap.lines.find((l) => l.msg === 'snapshot transfer finished' && l.snapshotId === meta.id && recent(l));
    const restored = cap.lines.find((l) => l.msg === 'state machine restored from a snapshot' && l.index === meta.lastIncludedIndex && recent(l));
    return {
      fillMs, entries, stateBytes: filled.dataBytes, keys: filled.keys,
      snapshotBytes: meta.byteLength, buildMs, encodeMs: built.lastEncodeMs, createMs: created?.ms as number | undefined,
      installMs, decodeMs: installed.lastDecodeMs,
      transferMs: finished?.durationMs as number | undefined, transferChunks: finished?.chunks as number | undefined, transferRestarts: finished?.restarts as number | undefined,
      restoreMs: restored?.ms as number | undefined,
      joinMs, leaderChanged,
    };
  } finally {
    await cluster.shutdown();
    store.remove();
  }
}

interface LoadRun { opsPerSec: number; p50Ms: number; p99Ms: number; ops: number; errors: number; snapshots: number; encodeMs: number; snapshotBytes: number }

async function writeLoadOnce(every: number, placement: NodePlacement, storage: StorageKind, clients: number, payloadBytes: number, seconds: number, loadKeys: number, logger: Logger): Promise<LoadRun> {
  const store = tempStorage(storage);
  const cluster = await LocalCluster.start({
    size: 3, placement, logger, storage: store.spec,
    stateMachine: { module: SNAP_BENCH_MODULE, export: 'createSnapBench', args: { encoding: 'binary' } },
    config: { snapshotLogsSinceLast: every },
  });
  try {
    const at = { leader: await cluster.waitForLeader() };
    if (loadKeys > 0) {
      const last = await fill(cluster, at, Math.ceil(loadKeys / KEY_BATCH), (j) => keysEntry('p', loadKeys, j));
      await cluster.waitForApplied(last, { timeoutMs: 120_000 });
    }
    const keyBytes = 16;
    const valueBytes = payloadBytes - 5 - 8 - keyBytes;
    if (valueBytes < 0) throw new RangeError(`--payload ${payloadBytes}: the snapshot suite's commands need at least ${5 + 8 + keyBytes} bytes`);
    const value = 'x'.repeat(valueBytes);
    const snapshotTotals = async () => {
      const ss = await Promise.all(cluster.all().map(stats));
      return { snapshots: ss.reduce((a, s) => a + s.snapshots, 0), encodeMs: ss.reduce((a, s) => a + s.totalEncodeMs, 0), bytes: Math.max(...ss.map((s) => s.lastEncodeBytes)) };
    };
    const warmupEnd = performance.now() + 500;
    const end = warmupEnd + seconds * 1000;
    const latencies: number[] = [];
    let errors = 0;
    const client = async (c: number) => {
      for (let seq = 0; ; seq++) {
        const t = performance.now();
        if (t >= end) return;
        const payload = encodePutMany([[`c${c}-${seq}`.padEnd(keyBytes, '.').slice(0, keyBytes), value]]);
        try {
          await cluster.node(at.leader).clientWrite(payload, { responseMode: 'committed', timeoutMs: 10_000 });
          const done = performance.now();
          if (t >= warmupEnd && done <= end) latencies.push(done - t);
        } catch (err) {
          errors++;
          if (err instanceof ForwardToLeaderError && err.leaderId !== null) at.leader = err.leaderId;
          else at.leader = await cluster.waitForLeader();
        }
      }
    };
    let atWarmupEnd: Promise<Awaited<ReturnType<typeof snapshotTotals>>> | null = null;
    const mark = setTimeout(() => { atWarmupEnd = snapshotTotals(); }, Math.max(0, warmupEnd - performance.now()));
    await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
    clearTimeout(mark);
    const before = (await (atWarmupEnd ?? snapshotTotals()));
    const after = await snapshotTotals();
    const sorted = Float64Array.from(latencies).sort();
    return {
      opsPerSec: latencies.length / seconds, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), ops: latencies.length, errors,
      snapshots: after.snapshots - before.snapshots, encodeMs: after.encodeMs - before.encodeMs, snapshotBytes: after.bytes,
    };
  } finally {
    await cluster.shutdown();
    store.remove();
  }
}

const mb = (b: number): string => `${(b / MIB).toFixed(1)} MiB`;

/** Runs both parts; resolves with the suite's report (the caller prints it). */
export async function runSnapshotSuite(o: SnapshotSuiteOptions): Promise<Record<string, unknown>> {
  const a = { ...Object.fromEntries(Object.entries(SNAPSHOT_OPTIONS).map(([k, v]) => [k, v.default])), ...o.argv } as Record<keyof typeof SNAPSHOT_OPTIONS, string>;
  const cases = a.cases.split(',').filter((c) => c !== '').map((c) => {
    if (c !== 'blob' && c !== 'keys') throw new RangeError(`--cases: ${c} (blob or keys)`);
    return c as Case;
  });
  const encodings = a.encodings.split(',').map((e) => {
    if (e !== 'binary' && e !== 'json') throw new RangeError(`--encodings: ${e} (binary or json)`);
    return e as SnapshotEncoding;
  });
  const blobMb = intList('blob-mb', a['blob-mb'], 1, 400)[0];
  const keys = intList('keys', a.keys, 1, 5_000_000)[0];
  const everies = a['snapshot-every'] === '' ? [] : intList('snapshot-every', a['snapshot-every'], 0, 1_000_000);
  const loadKeys = intList('load-keys', a['load-keys'], 0, 5_000_000)[0];

  const buildInstall = [];
  for (const storage of o.storages) {
    for (const placement of o.placements) {
      for (const kind of cases) {
        for (const encoding of encodings) {
          const rs: BuildInstallRun[] = [];
          for (let r = 0; r < o.runs; r++) {
            const x = await buildInstallOnce(kind, encoding, placement, storage, blobMb, keys);
            rs.push(x);
            const opt = (v: number | undefined, what: string) => (v === undefined ? '' : `, ${what} ${Math.round(v)} ms`);
            progress(`snapshot ${kind} ${encoding} ${storage} ${placement} run ${r + 1}/${o.runs}: fill ${Math.round(x.fillMs)} ms; ${mb(x.snapshotBytes)}, build ${Math.round(x.buildMs)} ms (encode ${Math.round(x.encodeMs)} ms${opt(x.createMs, 'apply actor')}); install ${Math.round(x.installMs)} ms (decode ${Math.round(x.decodeMs)} ms${opt(x.transferMs, 'transfer')}${opt(x.restoreMs, 'restore')}); joined ${Math.round(x.joinMs)} ms${x.leaderChanged ? ' (the leader changed during the build)' : ''}`);
          }
          const x0 = rs[0];
          buildInstall.push({
            workload: kind === 'blob'
              ? `3 nodes + 1 added, ${storage === 'file' ? 'FileStorage' : 'MemoryStorage'}, ${blobMb} values of 1 MiB (one per entry), ${encoding} snapshot`
              : `3 nodes + 1 added, ${storage === 'file' ? 'FileStorage' : 'MemoryStorage'}, ${keys} keys of 10 bytes with 10-byte values (10,000 per entry), ${encoding} snapshot`,
            case: kind, encoding, storage, placement, runs: o.runs,
            entries: x0.entries, keys: x0.keys, stateBytes: x0.stateBytes, snapshotBytes: x0.snapshotBytes,
            buildMs: stat(rs.map((r) => r.buildMs)),
            encodeMs: stat(rs.map((r) => r.encodeMs)),
            applyActorCreateMs: stat(rs.map((r) => r.createMs), 0),
            buildMBps: round(median(rs.map((r) => r.snapshotBytes / MIB / (r.buildMs / 1000))), 1),
            installMs: stat(rs.map((r) => r.installMs)),
            transferMs: stat(rs.map((r) => r.transferMs), 0),
            restoreMs: stat(rs.map((r) => r.restoreMs), 0),
            decodeMs: stat(rs.map((r) => r.decodeMs)),
            installMBps: round(median(rs.map((r) => r.snapshotBytes / MIB / (r.installMs / 1000))), 1),
            transferChunks: x0.transferChunks, transferRestarts: rs.map((r) => r.transferRestarts ?? null),
            joinMs: stat(rs.map((r) => r.joinMs), 0),
            leaderChanged: rs.map((r) => r.leaderChanged),
            fillMs: stat(rs.map((r) => r.fillMs), 0),
          });
        }
      }
    }
  }

  const writeLoad = [];
  if (everies.length > 0) {
    for (const storage of o.storages) {
      for (const placement of o.placements) {
        for (const clients of o.clients) {
          for (const every of [0, ...everies.filter((e) => e !== 0)]) {
            const rs: LoadRun[] = [];
            for (let r = 0; r < o.runs; r++) {
              const x = await writeLoadOnce(every, placement, storage, clients, o.payloadBytes, o.seconds, loadKeys, o.logger);
              rs.push(x);
              progress(`snapshot load every=${every} ${storage} ${placement} clients=${clients} run ${r + 1}/${o.runs}: ${Math.round(x.opsPerSec)} ops/s, p50 ${x.p50Ms.toFixed(2)} ms, p99 ${x.p99Ms.toFixed(2)} ms, ${x.snapshots} snapshots (${mb(x.snapshotBytes)}, encode ${Math.round(x.encodeMs)} ms in all)`);
            }
            writeLoad.push({
              workload: `3 nodes, ${storage === 'file' ? 'FileStorage' : 'MemoryStorage'}, ${o.payloadBytes}-byte puts of new keys after ${loadKeys} preloaded keys, ${clients} clients, ${every === 0 ? 'automatic snapshots off' : `a snapshot every ${every} entries`}`,
              snapshotLogsSinceLast: every, storage, placement, clients, runs: o.runs,
              committedOpsPerSec: { median: Math.round(median(rs.map((r) => r.opsPerSec))), runs: rs.map((r) => Math.round(r.opsPerSec)) },
              latencyMs: { p50: round(median(rs.map((r) => r.p50Ms))), p99: round(median(rs.map((r) => r.p99Ms))) },
              snapshotsTaken: { median: median(rs.map((r) => r.snapshots)), runs: rs.map((r) => r.snapshots), note: 'all three nodes together, in the measured window' },
              snapshotBytesAtEnd: Math.round(median(rs.map((r) => r.snapshotBytes))),
              encodeMsInWindow: stat(rs.map((r) => r.encodeMs), 0),
              errors: rs.reduce((s, r) => s + r.errors, 0),
            });
          }
        }
      }
    }
  }
  return {
    benchmark: 'actor-raft snapshots', runs: o.runs, secondsPerLoadRun: o.seconds, warmupMs: 500,
    config: {
      buildInstall: { ...STREAM_SMALL, ...PATIENT, snapshotLogsSinceLast: 0, snapshotKeepEntries: '8 (0 when the fill is under 16 entries)', snapshotMaxChunkBytes: '3 MiB (default)' },
      writeLoad: 'defaults (snapshotKeepEntries 1000, snapshotMaxChunkBytes 3 MiB) but snapshotLogsSinceLast',
    },
    buildInstall, writeLoad,
  };
}
