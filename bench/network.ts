/**
 * The network suite of `npm run bench` (issue 8): Raft between processes, over TCP on loopback.
 *
 *   npm run bench -- --suite network                  # both parts (about 2 minutes with --runs 3)
 *   npm run bench -- --suite network --net-parts tcp --clients 64 --seconds 2 --runs 1
 *   npm run bench -- --suite network --net-parts http --net-connections 128 --placement local
 *
 * Part `tcp`: a 3-process cluster over TcpNetwork (network/tcp-network.ts). Each process is a
 * bench/network-node.ts child, forked with ts-node and controlled over IPC, running one RaftNode
 * (`--placement`, default worker; `--storage`, default file: FileStorage in a temp dir, fdatasync'd)
 * with the count state machine (`--net-state-machine kv`: the KV example's, puts cycling over
 * `--net-keys` keys). The leader's process runs c concurrent clients (for each c of `--clients`,
 * default 1, 64, 256), each calling clientWrite (committed) with a `--payload` (100) byte payload
 * as soon as its last write is answered; the Raft actor batches what is in flight. Per client
 * count: committed writes/s and p50/p99 latency, and from the nodes' counters over the measured
 * window: TCP frames and bytes per second (all three nodes' outbound), the leader's append RPCs/s,
 * writes per append RPC, append RPC latency (mean, and p50/p99 interpolated in the TcpNetworkStats
 * histogram), fsyncs/s of the three nodes, and each process's CPU (Linux /proc; 100% = one core).
 *
 * Part `http`: three real actor-raft-kv processes (examples/kv-service/bin/actor-raft-kv.js, data
 * in a temp dir, `/admin/init` to each, a leader seen by all through GET /status), loaded by
 * autocannon (programmatic API, in this process) with `--net-connections` (64) connections for
 * `--seconds`, each request a PUT /kv/{key} of a `--payload`-byte value, keys cycling over
 * `--net-keys`: once at the leader, once at a follower (which forwards to the leader), and once at
 * bench/plain-kv-server.ts, a non-replicated node:http server over a Map in its own process. Per
 * target: req/s, p50/p99 latency (autocannon's), non-2xx answers, errors and timeouts, CPU of every
 * process; and the ratios replicated/plain. The KV service always runs FileStorage; `--storage` does
 * not apply to this part.
 *
 * Every run starts fresh processes, warms them up untimed (`--net-run-warmup-ms`, 1000), then
 * measures each phase after a `--net-warmup-ms` (500) warm-up (tcp; autocannon measures from its
 * first request). Figures are the medians of `--runs` (3) runs, each run's value alongside; the
 * runs are interleaved (run 1 does every phase of both parts, then run 2...). `--seconds` default 3.
 * Every child and temp dir is removed at the end, on an error, and on SIGINT/SIGTERM.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { reviveError, type SerializedError } from '../runtime/errors';
import type { NodePlacement } from '../actors/node';
import type { RpcKind } from '../actors/raft/codec';
import type { TcpNetworkStatsSnapshot } from '../network/tcp-network';
import type { LoadArgs, LoadResult, NetStateMachine, NodeCounters, NodeStartArgs, NodeToParent, ParentToNode } from './network-node';
import { ms, round, stat, type StorageKind, type SuiteOptions } from './common';
import { freePorts } from '../network/free-ports';

/** This suite's own options, merged into bench/run.ts's parseArgs. */
export const NETWORK_OPTIONS = {
  'net-parts': { type: 'string', default: 'tcp,http' },
  'net-state-machine': { type: 'string', default: 'count' },
  'net-connections': { type: 'string', default: '64' },
  'net-keys': { type: 'string', default: '10000' },
  'net-warmup-ms': { type: 'string', default: '500' },
  'net-run-warmup-ms': { type: 'string', default: '1000' },
} as const;
export type NetworkSuiteOptions = SuiteOptions<keyof typeof NETWORK_OPTIONS & string>;

type Part = 'tcp' | 'http';
type HttpTarget = 'leader' | 'follower' | 'plain';
const REPO = resolve(__dirname, '..');
const NODE_ENTRY = join(__dirname, 'network-node.ts');
const PLAIN_ENTRY = join(__dirname, 'plain-kv-server.ts');
const KV_BIN = join(REPO, 'examples/kv-service/bin/actor-raft-kv.js');
const HOST = '127.0.0.1';
const IDS = [1, 2, 3] as const;
const START_TIMEOUT_MS = 60_000;

const progress = (line: string): void => { process.stderr.write(`${line}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function intOf(name: string, v: string, min: number, max: number): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min || x > max) throw new RangeError(`--${name}: ${v} (an integer in ${min}..${max})`);
  return x;
}
function listOf<T extends string>(name: string, v: string, allowed: readonly T[]): T[] {
  return [...new Set(v.split(','))].map((x) => {
    if (!(allowed as readonly string[]).includes(x)) throw new RangeError(`--${name}: ${x} (one of ${allowed.join(', ')})`);
    return x as T;
  });
}

// ---------------------------------------------------------------------------------------------
// Processes and temp dirs: every one is tracked here, so an error or a Ctrl-C leaves none behind.

class Reaper {
  private readonly procs = new Set<ChildProcess>();
  private readonly dirs = new Set<string>();

  track<C extends ChildProcess>(child: C): C {
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }
  tempDir(prefix: string): string {
    const d = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), prefix));
    this.dirs.add(d);
    return d;
  }
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once every tracked child has exited. */
  async stop(children: readonly ChildProcess[] = [...this.procs], graceMs = 5000): Promise<void> {
    await Promise.all(children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }));
  }
  removeDir(d: string): void { rmSync(d, { recursive: true, force: true }); this.dirs.delete(d); }
  async cleanup(): Promise<void> {
    await this.stop();
    for (const d of [...this.dirs]) this.removeDir(d);
  }
}

const exitedAlready = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;

/** CPU time (user + system, ms) a process has used, every thread; null off Linux or once it is gone. */
function cpuMsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in USER_HZ ticks (100 on Linux)
  } catch {
    return null;
  }
}
/** CPU of each named process over a window, in percent of one core. */
function cpuMeter(pids: Record<string, number>): () => Record<string, number | null> {
  const t0 = performance.now();
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMsOf(pid)]));
  return () => {
    const ms = performance.now() - t0;
    return Object.fromEntries(Object.entries(pids).map(([k, pid]) => {
      const a = before[k];
      const b = cpuMsOf(pid);
      return [k, a === null || b === null ? null : Math.round((100 * (b - a)) / ms)];
    }));
  };
}
/** Pids by role (leader, follower1, follower2), so that runs with different leaders line up. */
function rolePids(leader: number, pidOf: (id: number) => number): Record<string, number> {
  const followers = IDS.filter((id) => id !== leader);
  return { leader: pidOf(leader), follower1: pidOf(followers[0]), follower2: pidOf(followers[1]) };
}
const selfCpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

// ---------------------------------------------------------------------------------------------
// Part tcp: the bench/network-node.ts children.

class NodeProc {
  private nextReqId = 1;
  private readonly pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();
  private failure: Error | null = null;
  onMark: ((at: 'start' | 'end') => void) | null = null;

  private constructor(readonly id: number, readonly child: ChildProcess) {
    child.on('message', (raw: unknown) => this.onMessage(raw as NodeToParent));
    child.once('exit', (code, signal) => this.failAll(new Error(`node ${id} exited (code ${code}, signal ${signal})`)));
  }

  /** Forks node `args.id` and resolves once its RaftNode has started. */
  static start(args: NodeStartArgs, reaper: Reaper): Promise<NodeProc> {
    const child = reaper.track(fork(NODE_ENTRY, [], {
      cwd: REPO, execArgv: ['-r', 'ts-node/register/transpile-only'], serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    }));
    const p = new NodeProc(args.id, child);
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`node ${args.id} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onMessage = (m: NodeToParent) => {
        if (m.t !== 'ready' && m.t !== 'startFailed') return;
        clearTimeout(timer);
        child.off('message', onMessage);
        if (m.t === 'ready') ok(p); else fail(reviveError(m.err as SerializedError));
      };
      child.on('message', onMessage);
      child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`node ${args.id} exited while starting (code ${code})`)); });
      child.send({ t: 'start', args } satisfies ParentToNode);
    });
  }

  private onMessage(m: NodeToParent): void {
    switch (m.t) {
      case 'res': {
        const w = this.pending.get(m.reqId);
        if (!w) return;
        this.pending.delete(m.reqId);
        if (m.err !== undefined) w.fail(reviveError(m.err as SerializedError)); else w.ok(m.value);
        return;
      }
      case 'mark': this.onMark?.(m.at); return;
      case 'failed': this.failAll(new Error(`node ${this.id} failed: ${reviveError(m.err as SerializedError).message}`)); return;
      default: return;
    }
  }
  private failAll(err: Error): void {
    this.failure ??= err;
    for (const w of this.pending.values()) w.fail(err);
    this.pending.clear();
  }

  ask<T>(make: (reqId: number) => ParentToNode, timeoutMs = 30_000): Promise<T> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const reqId = this.nextReqId++;
    return new Promise<T>((ok, fail) => {
      const timer = setTimeout(() => { this.pending.delete(reqId); fail(new Error(`node ${this.id}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
      this.pending.set(reqId, { ok: (v) => { clearTimeout(timer); ok(v as T); }, fail: (e) => { clearTimeout(timer); fail(e); } });
      this.child.send(make(reqId), undefined, {}, () => undefined);
    });
  }
  counters(): Promise<NodeCounters> { return this.ask((reqId) => ({ t: 'counters', reqId })); }

  /** Stops the node cleanly (bounded), then makes sure the process is gone. */
  async stop(reaper: Reaper): Promise<void> {
    if (!exitedAlready(this.child)) await this.ask((reqId) => ({ t: 'stop', reqId }), 10_000).catch(() => undefined);
    await reaper.stop([this.child], 3000);
  }
}

/** Polls until one node leads and every node knows it; resolves with its id. */
async function waitForLeader(ask: (id: number) => Promise<{ state: string; currentLeader: number | null }>, timeoutMs = 30_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ms = await Promise.all(IDS.map((id) => ask(id).catch(() => null)));
    const leader = ms.find((m) => m?.state === 'Leader')?.currentLeader ?? null;
    if (leader !== null && ms.every((m) => m?.currentLeader === leader)) return leader;
    if (performance.now() > deadline) throw new Error(`no leader known to all three nodes within ${timeoutMs} ms: ${JSON.stringify(ms)}`);
    await sleep(50);
  }
}

interface TcpWindow { before: NodeCounters[]; after: NodeCounters[]; cpu: Record<string, number | null> }
interface TcpRun extends LoadResult {
  framesPerSec: number; bytesPerSec: number; appendRpcsPerSec: number; writesPerAppend: number;
  appendMeanMs: number; appendP50Ms: number; appendP99Ms: number; fsyncsPerSec: number | null;
  cpuPercent: Record<string, number | null>;
}

/** The q-quantile of a bucketed histogram, interpolated linearly inside its bucket (as Prometheus' histogram_quantile). */
function histogramQuantile(bounds: readonly number[], counts: readonly number[], q: number): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (seen + counts[i] >= rank && counts[i] > 0) {
      if (i === bounds.length) return bounds[bounds.length - 1]; // the +Inf bucket: at least the last bound
      const lo = i === 0 ? 0 : bounds[i - 1];
      return lo + ((bounds[i] - lo) * (rank - seen)) / counts[i];
    }
    seen += counts[i];
  }
  return bounds[bounds.length - 1];
}

function tcpFigures(load: LoadResult, w: TcpWindow, leaderIdx: number, seconds: number): TcpRun {
  const sum = (f: (c: NodeCounters) => number) => w.after.reduce((a, c, i) => a + f(c) - f(w.before[i]), 0);
  const append = (c: NodeCounters) => c.tcp.sent['append' satisfies RpcKind];
  const la = append(w.after[leaderIdx]);
  const lb = append(w.before[leaderIdx]);
  const buckets = la.buckets.map((n, i) => n - lb.buckets[i]);
  const answered = buckets.reduce((a, b) => a + b, 0);
  const appends = la.requests - lb.requests;
  const bounds = (w.after[leaderIdx].tcp as TcpNetworkStatsSnapshot).latencyBoundsMs;
  return {
    ...load,
    framesPerSec: sum((c) => c.tcp.framesOut) / seconds,
    bytesPerSec: sum((c) => c.tcp.bytesOut) / seconds,
    appendRpcsPerSec: appends / seconds,
    // Each write goes to both followers; heartbeats (empty appends) count among the RPCs.
    writesPerAppend: appends === 0 ? NaN : (load.ops * (IDS.length - 1)) / appends,
    appendMeanMs: answered === 0 ? NaN : (la.latencySumMs - lb.latencySumMs) / answered,
    appendP50Ms: histogramQuantile(bounds, buckets, 0.5),
    appendP99Ms: histogramQuantile(bounds, buckets, 0.99),
    fsyncsPerSec: w.after[0].fsyncs === null ? null : sum((c) => c.fsyncs ?? 0) / seconds,
    cpuPercent: w.cpu,
  };
}

interface TcpParams { storage: StorageKind; placement: NodePlacement; sm: NetStateMachine; clients: readonly number[]; load: Omit<LoadArgs, 'clients'>; runWarmupMs: number }

/** One run of the tcp part: a fresh 3-process cluster, every client count measured on it in turn. */
async function tcpRun(p: TcpParams, reaper: Reaper, label: string): Promise<TcpRun[]> {
  const t0 = performance.now();
  const dir = reaper.tempDir('actor-raft-bench-net-');
  const ports = await freePorts(IDS.length);
  const peers = Object.fromEntries(IDS.map((id, i) => [id, { host: HOST, port: ports[i] }]));
  const nodes: NodeProc[] = [];
  try {
    const started = await Promise.allSettled(IDS.map((id) => NodeProc.start({
      id, clusterId: 'bench-net', peers, placement: p.placement, storage: p.storage, dir: join(dir, `n${id}`), stateMachine: p.sm,
    }, reaper)));
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    await Promise.all(nodes.map((n) => n.ask((reqId) => ({ t: 'init', reqId, members: [...IDS] }))));
    const byId = (id: number) => nodes.find((n) => n.id === id)!;
    const metricsOf = async (id: number) => (await byId(id).counters()).metrics;
    let leader = await waitForLeader(metricsOf);
    const settle = async () => {
      const commit = (await metricsOf(leader)).commitIndex;
      const deadline = performance.now() + 30_000;
      while (!(await Promise.all(nodes.map((n) => n.counters()))).every((c) => c.metrics.lastApplied >= commit)) {
        if (performance.now() > deadline) throw new Error(`the nodes did not apply up to ${commit} within 30 s`);
        await sleep(20);
      }
    };
    const loadOn = (clients: number, a: Omit<LoadArgs, 'clients'>) => byId(leader).ask<LoadResult>((reqId) => ({ t: 'load', reqId, args: { ...a, clients } }), (a.warmupMs + a.seconds * 1000) * 2 + 30_000);
    // Untimed: every node's code compiled and its files created before the first measured phase.
    await loadOn(64, { ...p.load, warmupMs: 0, seconds: p.runWarmupMs / 1000 });
    await settle();
    progress(`${label}: cluster up and warmed up in ${Math.round(performance.now() - t0)} ms (leader n${leader}, pids ${nodes.map((n) => n.child.pid).join(' ')})`);
    const out: TcpRun[] = [];
    for (const clients of p.clients) {
      leader = await waitForLeader(metricsOf);
      const leaderIdx = nodes.findIndex((n) => n.id === leader);
      const pids = rolePids(leader, (id) => byId(id).child.pid!);
      // Counters of every node at the leader's marks: the end of the warm-up and of the measured window.
      const win: { start?: Promise<{ counters: NodeCounters[]; cpu: () => Record<string, number | null> }>; end?: Promise<TcpWindow> } = {};
      const leaderProc = byId(leader);
      leaderProc.onMark = (at) => {
        const all = () => Promise.all(nodes.map((n) => n.counters()));
        if (at === 'start') win.start = all().then((counters) => ({ counters, cpu: cpuMeter(pids) }));
        else if (win.start) win.end = win.start.then(async (s) => { const cpu = s.cpu(); return { before: s.counters, after: await all(), cpu }; });
      };
      const load = await loadOn(clients, p.load);
      leaderProc.onMark = null;
      if (win.end === undefined) throw new Error('the leader did not mark its measured window');
      const r = tcpFigures(load, await win.end, leaderIdx, p.load.seconds);
      out.push(r);
      progress(`${label} clients=${clients}: ${tcpLine(r)}`);
      await settle();
    }
    return out;
  } finally {
    await Promise.all(nodes.map((n) => n.stop(reaper)));
    await reaper.stop();
    reaper.removeDir(dir);
  }
}

const cpuText = (c: Record<string, number | null>): string => Object.entries(c).map(([k, v]) => `${k} ${v ?? '-'}%`).join(', ');
function tcpLine(r: TcpRun): string {
  return [
    `${Math.round(r.opsPerSec)} ops/s, p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}`,
    `${Math.round(r.framesPerSec)} frames/s, ${(r.bytesPerSec / 1e6).toFixed(2)} MB/s`,
    `${Math.round(r.appendRpcsPerSec)} appends/s (${r.writesPerAppend.toFixed(1)} writes each), append p50 ${ms(r.appendP50Ms)}`,
    ...(r.fsyncsPerSec === null ? [] : [`${Math.round(r.fsyncsPerSec)} fsyncs/s`]),
    `cpu ${cpuText(r.cpuPercent)}`,
    ...(r.errors > 0 ? [`${r.errors} errors`] : []), ...(r.termChanges > 0 ? [`${r.termChanges} term changes`] : []),
  ].join(', ');
}

// ---------------------------------------------------------------------------------------------
// Part http: actor-raft-kv processes and the plain server, loaded by autocannon.

interface CannonResult {
  duration: number; errors: number; timeouts: number; non2xx: number; '2xx': number;
  latency: { p50: number; p99: number; average: number };
  requests: { average: number; total: number };
  statusCodeStats: Record<string, { count: number }>;
}
// autocannon ships no types; this is the part of its programmatic API used here (the instance it returns is thenable).
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => PromiseLike<CannonResult>;

/** `connections` connections for `seconds`, each request a PUT /kv/{key} of a `payloadBytes` value, keys cycling over `keys`. */
function cannon(url: string, o: { connections: number; seconds: number; payloadBytes: number; keys: number; tag: string }): PromiseLike<CannonResult> {
  let next = 0;
  return autocannon({
    url, connections: o.connections, duration: o.seconds, timeout: 15,
    requests: [{
      method: 'PUT', body: 'v'.repeat(o.payloadBytes), headers: { 'content-type': 'text/plain' },
      setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/kv/${o.tag}-${String(next++ % o.keys).padStart(6, '0')}` }),
    }],
  });
}

function httpJson(method: string, url: string, body?: unknown, timeoutMs = 5000): Promise<{ status: number; json: unknown }> {
  return new Promise((ok, fail) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(url, { method, timeout: timeoutMs, headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let json: unknown = raw;
        try { json = JSON.parse(raw); } catch { /* not JSON: kept as text */ }
        ok({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end(text);
  });
}

interface KvProc { readonly id: number; readonly child: ChildProcess; readonly http: string; readonly stderrTail: () => string }

/** Starts one actor-raft-kv and resolves once it prints its "listening" line. */
function startKv(id: number, raftPort: number, httpPort: number, peers: string, dir: string, placement: NodePlacement, reaper: Reaper): Promise<KvProc> {
  const child = reaper.track(spawn(process.execPath, [
    KV_BIN, '--id', String(id), '--raft', `${HOST}:${raftPort}`, '--http', `${HOST}:${httpPort}`, '--peers', peers,
    '--data', dir, '--cluster-id', 'bench-net-http', '--placement', placement, '--log-level', process.env.RAFT_LOG_LEVEL ?? 'warn',
  // Its own process group: a Ctrl-C reaches only this bench, whose handler sends each one SIGTERM (the CLI exits at once on a second signal).
  ], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  let tail = '';
  child.stderr!.on('data', (c: Buffer) => { tail = (tail + c.toString('utf8')).slice(-4000); });
  const proc: KvProc = { id, child, http: `http://${HOST}:${httpPort}`, stderrTail: () => tail };
  return new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`actor-raft-kv ${id} did not listen within ${START_TIMEOUT_MS} ms; stderr: ${tail}`)), START_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      for (let nl = out.indexOf('\n'); nl !== -1; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        try {
          if ((JSON.parse(line) as { event?: string }).event === 'listening') { clearTimeout(timer); ok(proc); }
        } catch { /* another line */ }
      }
    });
    child.once('exit', (code, signal) => { clearTimeout(timer); fail(new Error(`actor-raft-kv ${id} exited (code ${code}, signal ${signal}); stderr: ${tail}`)); });
  });
}

/** Forks the plain server and resolves with its base URL. */
function startPlain(reaper: Reaper): Promise<{ child: ChildProcess; url: string }> {
  const child = reaper.track(fork(PLAIN_ENTRY, [`${HOST}:0`], {
    cwd: REPO, execArgv: ['-r', 'ts-node/register/transpile-only'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
  }));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the plain server did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once('message', (m: { event?: string; http?: string }) => { clearTimeout(timer); if (m.event === 'listening') ok({ child, url: `http://${m.http}` }); else fail(new Error(`plain server: ${JSON.stringify(m)}`)); });
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`the plain server exited (code ${code})`)); });
  });
}

/** The service's Prometheus counters (`/metrics`), by series (`name{labels}`). */
async function scrape(base: string): Promise<Map<string, number>> {
  const r = await httpJson('GET', `${base}/metrics`);
  const out = new Map<string, number>();
  if (r.status !== 200 || typeof r.json !== 'string') return out;
  for (const line of r.json.split('\n')) {
    if (line.startsWith('#') || line.length === 0) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}
const APPENDS_SENT = 'actor_raft_rpc_sent_total{kind="append"}';
const FSYNCS = 'actor_raft_storage_fsyncs_total';
const FRAMES_SENT = 'actor_raft_tcp_frames_sent_total';
const APPEND_LATENCY_SUM = 'actor_raft_rpc_latency_seconds_sum{kind="append"}';
const APPEND_LATENCY_COUNT = 'actor_raft_rpc_latency_seconds_count{kind="append"}';

interface HttpRun {
  /** From the nodes' /metrics over the phase (null for the plain server). */
  appendRpcsPerSec: number | null; writesPerAppend: number | null; appendMeanMs: number | null; fsyncsPerSec: number | null; framesPerSec: number | null;
  reqPerSec: number; okPerSec: number; p50Ms: number; p99Ms: number; meanMs: number;
  non2xx: number; errors: number; timeouts: number; statusCodes: Record<string, number>;
  cpuPercent: Record<string, number | null>;
}
interface HttpParams { placement: NodePlacement; connections: number; seconds: number; payloadBytes: number; keys: number; runWarmupMs: number }

/** One run of the http part: fresh processes, each target loaded in turn (`order`). */
async function httpRun(p: HttpParams, order: readonly HttpTarget[], reaper: Reaper, label: string): Promise<Partial<Record<HttpTarget, HttpRun>>> {
  if (!existsSync(KV_BIN)) throw new Error(`${KV_BIN} is missing: the http part needs the actor-raft-kv CLI (or run --net-parts tcp)`);
  const t0 = performance.now();
  const dir = reaper.tempDir('actor-raft-bench-net-http-');
  const ports = await freePorts(IDS.length * 2);
  const peers = IDS.map((id, i) => `${id}=${HOST}:${ports[i]}`).join(',');
  const kvs: KvProc[] = [];
  const children: ChildProcess[] = [];
  try {
    const started = await Promise.allSettled(IDS.map((id, i) => startKv(id, ports[i], ports[IDS.length + i], peers, join(dir, `n${id}`), p.placement, reaper)));
    for (const s of started) if (s.status === 'fulfilled') { kvs.push(s.value); children.push(s.value.child); }
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const byId = (id: number) => kvs.find((k) => k.id === id)!;
    await Promise.all(kvs.map(async (k) => {
      const r = await httpJson('POST', `${k.http}/admin/init`, { members: [...IDS] });
      // 409: already initialised (a retried init): done as well.
      if (r.status !== 200 && r.status !== 409) throw new Error(`POST /admin/init on node ${k.id}: ${r.status} ${JSON.stringify(r.json)}`);
    }));
    const statusOf = async (id: number) => {
      const r = await httpJson('GET', `${byId(id).http}/status`);
      if (r.status !== 200) throw new Error(`GET /status on node ${id}: ${r.status}`);
      return r.json as { state: string; currentLeader: number | null; commitIndex: number; lastApplied: number };
    };
    const plain = await startPlain(reaper);
    children.push(plain.child);
    let leader = await waitForLeader(statusOf);
    const urlOf = (t: HttpTarget) => (t === 'plain' ? plain.url : byId(t === 'leader' ? leader : IDS.find((id) => id !== leader)!).http);
    const settle = async () => {
      const commit = (await statusOf(leader)).commitIndex;
      const deadline = performance.now() + 30_000;
      while (!(await Promise.all(IDS.map(statusOf))).every((m) => m.lastApplied >= commit)) {
        if (performance.now() > deadline) throw new Error(`the nodes did not apply up to ${commit} within 30 s`);
        await sleep(20);
      }
    };
    // Untimed: the servers' code compiled and the files created before the first measured phase.
    for (const t of ['leader', 'follower', 'plain'] as const) {
      await cannon(urlOf(t), { ...p, seconds: Math.max(1, Math.round(p.runWarmupMs / 1000)), tag: `warm-${t}` });
    }
    await settle();
    progress(`${label}: services up and warmed up in ${Math.round(performance.now() - t0)} ms (leader n${leader}, plain server pid ${plain.child.pid})`);
    const out: Partial<Record<HttpTarget, HttpRun>> = {};
    for (const t of order) {
      leader = await waitForLeader(statusOf);
      const meter = cpuMeter({ ...rolePids(leader, (id) => byId(id).child.pid!), plain: plain.child.pid! });
      const scrapeAll = () => Promise.all(IDS.map((id) => scrape(byId(id).http)));
      const before = await scrapeAll();
      const self0 = selfCpuMs();
      const s0 = performance.now();
      const r = await cannon(urlOf(t), { ...p, tag: t });
      const cpu = { ...meter(), autocannon: Math.round((100 * (selfCpuMs() - self0)) / (performance.now() - s0)) };
      const after = await scrapeAll();
      const windowSec = (performance.now() - s0) / 1000;
      const delta = (k: number, series: string) => (after[k].get(series) ?? NaN) - (before[k].get(series) ?? NaN);
      const total = (series: string) => IDS.reduce((a, _, k) => a + delta(k, series), 0) / windowSec;
      const leaderIdx = IDS.findIndex((id) => id === leader);
      const appends = delta(leaderIdx, APPENDS_SENT);
      const raft = t === 'plain' ? null : {
        appendRpcsPerSec: appends / windowSec,
        writesPerAppend: (r['2xx'] * (IDS.length - 1)) / appends,
        appendMeanMs: (1000 * delta(leaderIdx, APPEND_LATENCY_SUM)) / delta(leaderIdx, APPEND_LATENCY_COUNT),
        fsyncsPerSec: total(FSYNCS),
        framesPerSec: total(FRAMES_SENT),
      };
      const codes = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, v]) => [code, v.count]));
      out[t] = {
        reqPerSec: r.requests.average, okPerSec: r['2xx'] / r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99, meanMs: r.latency.average,
        non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, statusCodes: codes, cpuPercent: cpu,
        appendRpcsPerSec: raft?.appendRpcsPerSec ?? null, writesPerAppend: raft?.writesPerAppend ?? null, appendMeanMs: raft?.appendMeanMs ?? null,
        fsyncsPerSec: raft?.fsyncsPerSec ?? null, framesPerSec: raft?.framesPerSec ?? null,
      };
      progress(`${label} ${t}: ${httpLine(out[t]!)}`);
      if (t !== 'plain') await settle();
    }
    return out;
  } catch (err) {
    for (const k of kvs) if (exitedAlready(k.child)) progress(`actor-raft-kv ${k.id} had exited; its stderr ended with: ${k.stderrTail()}`);
    throw err;
  } finally {
    // SIGTERM: the CLI stops its node cleanly and exits 0.
    await reaper.stop(children, 10_000);
    reaper.removeDir(dir);
  }
}

function httpLine(r: HttpRun): string {
  return [
    `${Math.round(r.reqPerSec)} req/s, p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}`,
    ...(r.non2xx > 0 ? [`${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)})`] : []),
    ...(r.errors > 0 ? [`${r.errors} errors (${r.timeouts} timeouts)`] : []),
    ...(r.appendRpcsPerSec === null ? [] : [`${Math.round(r.appendRpcsPerSec)} appends/s (${r.writesPerAppend!.toFixed(1)} writes each, mean ${ms(r.appendMeanMs!)}), ${Math.round(r.fsyncsPerSec!)} fsyncs/s, ${Math.round(r.framesPerSec!)} frames/s`]),
    `cpu ${cpuText(r.cpuPercent)}`,
  ].join(', ');
}

// ---------------------------------------------------------------------------------------------
// The report.

const medianOf = (xs: (number | null)[], d = 3): number | null => stat(xs, d).median;
function cpuReport(rs: Record<string, number | null>[]): Record<string, number | null> {
  const keys = [...new Set(rs.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(keys.map((k) => [k, medianOf(rs.map((r) => r[k] ?? null), 0)]));
}

function tcpReport(p: TcpParams, clients: number, rs: TcpRun[]): Record<string, unknown> {
  return {
    workload: `3 processes over TcpNetwork on loopback, ${p.storage === 'file' ? 'FileStorage' : 'MemoryStorage'}, ${p.sm} state machine, ${p.load.payloadBytes}-byte writes, ${clients} client${clients === 1 ? '' : 's'} in the leader's process`,
    storage: p.storage, placement: p.placement, stateMachine: p.sm, clients, runs: rs.length,
    committedOpsPerSec: stat(rs.map((r) => r.opsPerSec)),
    latencyMs: { p50: medianOf(rs.map((r) => r.p50Ms)), p99: medianOf(rs.map((r) => r.p99Ms)) },
    network: {
      framesPerSec: stat(rs.map((r) => r.framesPerSec)),
      bytesPerSec: stat(rs.map((r) => r.bytesPerSec)),
      appendRpcsPerSec: stat(rs.map((r) => r.appendRpcsPerSec)),
      writesPerAppendRpc: stat(rs.map((r) => r.writesPerAppend), 1),
      appendLatencyMs: { mean: medianOf(rs.map((r) => r.appendMeanMs)), p50: medianOf(rs.map((r) => r.appendP50Ms)), p99: medianOf(rs.map((r) => r.appendP99Ms)) },
    },
    ...(p.storage === 'file' ? { fsyncsPerSec: stat(rs.map((r) => r.fsyncsPerSec)) } : {}),
    cpuPercent: cpuReport(rs.map((r) => r.cpuPercent)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    termChanges: rs.map((r) => r.termChanges),
  };
}

function httpReport(p: HttpParams, t: HttpTarget, rs: HttpRun[]): Record<string, unknown> {
  const what = t === 'plain'
    ? 'plain node:http server over an in-memory Map (bench/plain-kv-server.ts), no replication'
    : `3 actor-raft-kv processes (FileStorage, ${p.placement} placement), requests to the ${t}${t === 'follower' ? ', which forwards them to the leader' : ''}`;
  return {
    workload: `${what}; autocannon, ${p.connections} connections, PUT /kv/{key} with ${p.payloadBytes}-byte values over ${p.keys} keys`,
    target: t, placement: t === 'plain' ? null : p.placement, connections: p.connections, runs: rs.length,
    requestsPerSec: stat(rs.map((r) => r.reqPerSec)),
    okPerSec: stat(rs.map((r) => r.okPerSec)),
    latencyMs: { p50: medianOf(rs.map((r) => r.p50Ms)), p99: medianOf(rs.map((r) => r.p99Ms)), mean: medianOf(rs.map((r) => r.meanMs)) },
    non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    timeouts: rs.reduce((a, r) => a + r.timeouts, 0),
    statusCodes: rs.map((r) => r.statusCodes),
    ...(t === 'plain' ? {} : {
      raft: {
        appendRpcsPerSec: stat(rs.map((r) => r.appendRpcsPerSec)),
        writesPerAppendRpc: stat(rs.map((r) => r.writesPerAppend), 1),
        appendLatencyMeanMs: stat(rs.map((r) => r.appendMeanMs), 3),
        fsyncsPerSec: stat(rs.map((r) => r.fsyncsPerSec)),
        framesPerSec: stat(rs.map((r) => r.framesPerSec)),
        note: 'from the nodes\' /metrics before and after the phase: the leader\'s append RPCs, 2xx answers x 2 followers per append RPC, the mean append RPC latency (its histogram sum over count), all three nodes\' fsyncs and TCP frames sent',
      },
    }),
    cpuPercent: cpuReport(rs.map((r) => r.cpuPercent)),
  };
}

/** What replication costs: the replicated service's req/s over the plain server's, from each run's pair and from the medians. */
function replicationCost(p: HttpParams, runs: Partial<Record<HttpTarget, HttpRun>>[]): Record<string, unknown> {
  const ratio = (t: HttpTarget) => {
    const per = runs.map((r) => (r[t] && r.plain ? r[t]!.reqPerSec / r.plain.reqPerSec : null));
    const a = medianOf(runs.map((r) => r[t]?.reqPerSec ?? null));
    const b = medianOf(runs.map((r) => r.plain?.reqPerSec ?? null));
    return { ofMedians: a === null || b === null ? null : round(a / b, 3), perRun: per.map((x) => (x === null ? null : round(x, 3))) };
  };
  return { placement: p.placement, leaderOverPlain: ratio('leader'), followerOverPlain: ratio('follower') };
}

// ---------------------------------------------------------------------------------------------

/** Runs the parts `runs` times; resolves with the suite's report (the caller prints it). */
export async function runNetworkSuite(o: NetworkSuiteOptions): Promise<Record<string, unknown>> {
  const a = { ...Object.fromEntries(Object.entries(NETWORK_OPTIONS).map(([k, v]) => [k, v.default])), ...Object.fromEntries(Object.entries(o.argv).filter(([, v]) => v !== undefined)) } as Record<keyof typeof NETWORK_OPTIONS, string>;
  const parts = listOf<Part>('net-parts', a['net-parts'], ['tcp', 'http']);
  const sm = listOf<NetStateMachine>('net-state-machine', a['net-state-machine'], ['count', 'kv'])[0];
  const connections = intOf('net-connections', a['net-connections'], 1, 10_000);
  const keys = intOf('net-keys', a['net-keys'], 1, 10_000_000);
  const warmupMs = intOf('net-warmup-ms', a['net-warmup-ms'], 0, 60_000);
  const runWarmupMs = intOf('net-run-warmup-ms', a['net-run-warmup-ms'], 0, 600_000);

  const reaper = new Reaper();
  const onSignal = (sig: NodeJS.Signals) => {
    progress(`network suite: ${sig}, stopping every child and removing the temp dirs`);
    void reaper.cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const tcpParams: TcpParams[] = o.storages.flatMap((storage) => o.placements.map((placement) => ({
    storage, placement, sm, clients: o.clients, runWarmupMs, load: { warmupMs, seconds: o.seconds, payloadBytes: o.payloadBytes, keys },
  })));
  const httpParams: HttpParams[] = o.placements.map((placement) => ({ placement, connections, seconds: o.seconds, payloadBytes: o.payloadBytes, keys, runWarmupMs }));
  const tcpRuns = tcpParams.map((): TcpRun[][] => []);
  const httpRuns = httpParams.map((): Partial<Record<HttpTarget, HttpRun>>[] => []);
  const loadAverage: { run: number; start: number; end: number }[] = [];
  const targets: HttpTarget[] = ['leader', 'follower', 'plain'];
  try {
    for (let run = 1; run <= o.runs; run++) {
      const load0 = loadavg()[0];
      if (parts.includes('tcp')) {
        for (const [i, p] of tcpParams.entries()) tcpRuns[i].push(await tcpRun(p, reaper, `network tcp ${p.storage} ${p.placement} run ${run}/${o.runs}`));
      }
      if (parts.includes('http')) {
        // The targets' order turns with each run, so no target always gets the same stretch of a noisy machine.
        const order = targets.map((_, k) => targets[(k + run - 1) % targets.length]);
        for (const [i, p] of httpParams.entries()) httpRuns[i].push(await httpRun(p, order, reaper, `network http ${p.placement} run ${run}/${o.runs}`));
      }
      loadAverage.push({ run, start: round(load0, 2), end: round(loadavg()[0], 2) });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await reaper.cleanup();
  }

  return {
    benchmark: 'actor-raft network', runs: o.runs, secondsPerPhase: o.seconds, warmupMs, runWarmupMs,
    config: {
      tcp: parts.includes('tcp') ? { cluster: '3 processes (bench/network-node.ts), one RaftNode each over TcpNetwork on 127.0.0.1, default RaftConfig', clientApi: 'clientWrite, responseMode committed, clients in the leader\'s process', payloadBytes: o.payloadBytes, stateMachine: sm } : null,
      http: parts.includes('http') ? { cluster: '3 actor-raft-kv processes (FileStorage), /admin/init to each', load: `autocannon ${connections} connections, PUT /kv/{key}, ${o.payloadBytes}-byte values, keys cycling over ${keys}`, baseline: 'bench/plain-kv-server.ts in its own process' } : null,
      statistic: 'median of runs; latency p50/p99 are the medians of each run\'s p50/p99; network and fsync figures are over the measured window; append latency p50/p99 are interpolated in the TcpNetworkStats histogram buckets; cpuPercent is 100 per core (Linux /proc)',
    },
    // The 1-minute load average at each run's start and end: on a shared machine, how much else ran.
    loadAverage,
    tcp: tcpParams.flatMap((p, i) => (tcpRuns[i].length === 0 ? [] : p.clients.map((c, k) => tcpReport(p, c, tcpRuns[i].map((r) => r[k]))))),
    http: httpParams.flatMap((p, i) => (httpRuns[i].length === 0 ? [] : targets.map((t) => httpReport(p, t, httpRuns[i].map((r) => r[t]!))))),
    replicationCost: httpParams.flatMap((p, i) => (httpRuns[i].length === 0 ? [] : [replicationCost(p, httpRuns[i])])),
  };
}
