/**
 * The parent side of the crash harness: N node processes (node-process.ts), one per data dir,
 * with the parent as their network. It routes every RPC between them, forwards client writes,
 * SIGKILLs one node or all of them at once, restarts a node on the same data dir, waits on
 * metrics it polls over IPC (never on fixed sleeps), collects the applied lists, and stops
 * everything. `destroy()` SIGKILLs whatever still runs and removes the data: call it in an
 * `after` hook so a failing test leaves no process behind.
 *
 * Routing: a node's network actor posts `rpcOut { reqId, target }`. The parent gives it its own
 * id, remembers (sender, sender's generation, sender's reqId, target, target's generation), and
 * posts `rpcIn` to the target. The target's `rpcRes` is mapped back and posted to the sender if
 * that process still lives. A target that is down or not yet ready is answered UnreachableError at
 * once; when a target exits, every request it held is answered UnreachableError at once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { reviveError, serializeError } from '../../../runtime/errors';
import { UnreachableError } from '../../../network/network';
import type { RaftConfig } from '../../../actors/raft/core/config';
import type { RaftMetrics } from '../../../actors/metrics/metrics';
import type { ClientWriteResponse } from '../../../actors/raft/raft-actor';
import '../../../actors/errors-registry';
import { encodeId, type AppliedList } from './applied-list';
import type { ChildToParent, ParentToChild, StorageKind } from './protocol';

const REPO = path.resolve(__dirname, '../../..');
const ENTRY = path.join(__dirname, 'node-process.ts');

/** A request to a node process whose process died before answering: its outcome is unknown. */
export class NodeDiedError extends Error {
  readonly code = 'NodeDied';
  constructor(readonly nodeId: number, what: string) {
    super(`node ${nodeId} died before answering ${what}`);
    this.name = 'NodeDiedError';
  }
}

export interface CrashClusterOptions {
  readonly size: number;
  readonly storage: StorageKind;
  /** FileStorage's segment size. */
  readonly segmentBytes?: number;
  readonly config?: Partial<RaftConfig>;
  /** Seed of the first process's actor system; each (re)start adds one. */
  readonly seed?: number;
  /** Deadline for a process to start (ms). */
  readonly startTimeoutMs?: number;
}

/** Something a node process did that the test did not ask for. */
export interface Incident { readonly node: number; readonly what: string }

interface PendingReq {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly what: string;
}

interface Route { readonly from: number; readonly fromGen: number; readonly fromReqId: number; readonly target: number; readonly targetGen: number }

class NodeProc {
  child: ChildProcess | null = null;
  gen = 0;
  ready = false;
  pid = 0;
  /** Set when the harness killed or stopped the process on purpose. */
  expectExit = false;
  exited: Promise<void> = Promise.resolve();
  readonly pending = new Map<number, PendingReq>();
  constructor(readonly id: number, readonly dir: string) {}
  get alive(): boolean { return this.child !== null; }
}

export class CrashCluster {
  readonly ids: readonly number[];
  readonly incidents: Incident[] = [];
  private readonly procs = new Map<number, NodeProc>();
  private readonly routes = new Map<number, Route>();
  private nextReqId = 1;
  private seed: number;
  /** Counters for the report. */
  readonly stats = { rpcsRouted: 0, rpcsRefused: 0, rpcsCutByExit: 0, starts: 0, kills: 0 };

  private constructor(readonly baseDir: string, private readonly opts: CrashClusterOptions) {
    this.ids = Array.from({ length: opts.size }, (_, i) => i + 1);
    this.seed = opts.seed ?? 1;
    for (const id of this.ids) {
      const dir = path.join(baseDir, `n${id}`);
      fs.mkdirSync(dir);
      this.procs.set(id, new NodeProc(id, dir));
    }
  }

  /** Starts `size` processes in fresh data dirs under one tmp dir, and forms the cluster. */
  static async start(opts: CrashClusterOptions): Promise<CrashCluster> {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'actor-raft-crash-'));
    const c = new CrashCluster(base, opts);
    try {
      await Promise.all(c.ids.map((id) => c.spawn(id, c.ids)));
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  dirOf(id: number): string { return this.proc(id).dir; }
  isAlive(id: number): boolean { return this.proc(id).alive && this.proc(id).ready; }
  aliveIds(): number[] { return this.ids.filter((id) => this.isAlive(id)); }
  pidOf(id: number): number { return this.proc(id).pid; }

  private proc(id: number): NodeProc {
    const p = this.procs.get(id);
    if (!p) throw new RangeError(`no node ${id} (ids: ${this.ids.join(', ')})`);
    return p;
  }

  /** Forks node `id` on its data dir; `initMembers` only on the first start. Resolves once it runs. */
  private spawn(id: number, initMembers: readonly number[] | null): Promise<void> {
    const p = this.proc(id);
    if (p.alive) throw new Error(`node ${id} is already running (pid ${p.pid})`);
    const gen = ++p.gen;
    this.stats.starts++;
    const child = fork(ENTRY, [], {
      cwd: REPO,
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, RAFT_LOG_LEVEL: process.env.RAFT_LOG_LEVEL ?? 'silent', TS_NODE_TRANSPILE_ONLY: 'true' },
    });
    p.child = child;
    p.ready = false;
    p.expectExit = false;
    p.pid = child.pid ?? 0;
    let exitedResolve!: () => void;
    p.exited = new Promise<void>((r) => { exitedResolve = r; });
    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err); else resolve();
      };
      const timer = setTimeout(() => {
        settle(new Error(`node ${id} did not start within ${timeoutMs} ms`));
        this.killNow(p);
      }, timeoutMs);
      child.on('error', (err) => { this.incidents.push({ node: id, what: `process error: ${err.message}` }); });
      child.on('message', (raw: unknown) => {
        if (p.gen !== gen) return;
        const m = raw as ChildToParent;
        if (m.t === 'ready') { p.ready = true; settle(); return; }
        if (m.t === 'startFailed') { settle(reviveError(m.err)); return; }
        this.onMessage(p, gen, m);
      });
      child.on('exit', (code, signal) => {
        if (p.gen === gen) this.onExit(p, gen, code, signal);
        settle(new Error(`node ${id} exited while starting (code ${code}, signal ${signal})`));
        exitedResolve();
      });
      this.post(p, { t: 'start', args: { id, dir: p.dir, storage: this.opts.storage, segmentBytes: this.opts.segmentBytes, initMembers, config: this.opts.config ?? {}, seed: this.seed++ } });
    });
  }

  private post(p: NodeProc, m: ParentToChild): boolean {
    const child = p.child;
    if (!child || !child.connected) return false;
    child.send(m, undefined, {}, () => undefined); // a channel closing under us reports here, not as a throw
    return true;
  }

  private onMessage(p: NodeProc, gen: number, m: ChildToParent): void {
    switch (m.t) {
      case 'rpcOut': {
        const target = this.procs.get(m.target);
        if (!target || !target.alive || !target.ready) {
          this.stats.rpcsRefused++;
          this.post(p, { t: 'rpcRes', reqId: m.reqId, err: serializeError(new UnreachableError(m.target, target ? 'node is down' : 'unknown node', { notSent: true })) });
          return;
        }
        const reqId = this.nextReqId++;
        this.routes.set(reqId, { from: p.id, fromGen: gen, fromReqId: m.reqId, target: target.id, targetGen: target.gen });
        this.stats.rpcsRouted++;
        this.post(target, { t: 'rpcIn', reqId, bytes: m.bytes, timeoutMs: m.timeoutMs });
        return;
      }
      case 'rpcRes': {
        const r = this.routes.get(m.reqId);
        if (!r) return;
        this.routes.delete(m.reqId);
        const from = this.procs.get(r.from)!;
        if (from.gen === r.fromGen) this.post(from, { t: 'rpcRes', reqId: r.fromReqId, bytes: m.bytes, err: m.err });
        return;
      }
      case 'res': {
        const q = p.pending.get(m.reqId);
        if (!q) return;
        p.pending.delete(m.reqId);
        clearTimeout(q.timer);
        if (m.err !== undefined) q.reject(reviveError(m.err)); else q.resolve(m.value);
        return;
      }
      case 'failed':
        this.incidents.push({ node: p.id, what: `node failed: ${m.err.name}: ${m.err.message}` });
        return;
      default:
        this.incidents.push({ node: p.id, what: `unexpected message ${JSON.stringify((m as { t?: unknown }).t)}` });
    }
  }

  private onExit(p: NodeProc, gen: number, code: number | null, signal: NodeJS.Signals | null): void {
    p.child = null;
    p.ready = false;
    if (!p.expectExit) this.incidents.push({ node: p.id, what: `exited unexpectedly (code ${code}, signal ${signal})` });
    for (const [reqId, q] of p.pending) {
      p.pending.delete(reqId);
      clearTimeout(q.timer);
      q.reject(new NodeDiedError(p.id, q.what));
    }
    for (const [reqId, r] of this.routes) {
      if (r.target === p.id && r.targetGen === gen) {
        // The request died with the target: answer the sender now, not by its timeout.
        this.routes.delete(reqId);
        this.stats.rpcsCutByExit++;
        const from = this.procs.get(r.from)!;
        if (from.gen === r.fromGen) this.post(from, { t: 'rpcRes', reqId: r.fromReqId, err: serializeError(new UnreachableError(p.id, 'node died')) });
      } else if (r.from === p.id && r.fromGen === gen) {
        this.routes.delete(reqId); // nobody waits for this answer any more
      }
    }
  }

  private request<T>(id: number, make: (reqId: number) => ParentToChild, what: string, timeoutMs: number): Promise<T> {
    const p = this.proc(id);
    if (!p.alive || !p.ready) return Promise.reject(new NodeDiedError(id, `${what} (node is down)`));
    const reqId = this.nextReqId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (p.pending.delete(reqId)) reject(new Error(`node ${id}: no answer to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      p.pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject, timer, what });
      if (!this.post(p, make(reqId))) {
        p.pending.delete(reqId);
        clearTimeout(timer);
        reject(new NodeDiedError(id, what));
      }
    });
  }

  /** A client write of the id `writeId` on node `id` ('committed' mode). Rejects with the node's typed error. */
  write(id: number, writeId: string, timeoutMs = 5_000): Promise<ClientWriteResponse> {
    // The child's own clientWrite timeout answers first; ours only covers a lost answer.
    return this.request(id, (reqId) => ({ t: 'write', reqId, payload: encodeId(writeId), timeoutMs }), `write ${writeId}`, timeoutMs + 2_000);
  }

  metrics(id: number, timeoutMs = 5_000): Promise<RaftMetrics> {
    return this.request(id, (reqId) => ({ t: 'metrics', reqId }), 'metrics', timeoutMs);
  }

  appliedList(id: number, timeoutMs = 10_000): Promise<AppliedList> {
    return this.request(id, (reqId) => ({ t: 'query', reqId, q: { q: 'applied' } }), 'query applied', timeoutMs);
  }

  /** FileStorage's counters of node `id`'s current process (null under MemoryStorage). */
  storageStats(id: number): Promise<Record<string, number> | null> {
    return this.request(id, (reqId) => ({ t: 'storageStats', reqId }), 'storage stats', 5_000);
  }

  /** Requests (client writes, metrics...) sent to node `id`'s current process and not answered yet. */
  requestsInFlightTo(id: number): number { return this.proc(id).pending.size; }

  /** RPCs the parent has handed to node `id` that it has not answered yet. */
  rpcsInFlightTo(id: number): number {
    const gen = this.proc(id).gen;
    let n = 0;
    for (const r of this.routes.values()) if (r.target === id && r.targetGen === gen) n++;
    return n;
  }

  /**
   * Resolves (checking every turn of the event loop) once `pred` holds, so that a kill right after
   * it happens in the state `pred` saw; rejects after `timeoutMs`.
   */
  async when(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setImmediate(r));
    }
  }

  /** The metrics of every running node (a node that dies meanwhile is left out). */
  async allMetrics(): Promise<RaftMetrics[]> {
    const got = await Promise.allSettled(this.aliveIds().map((id) => this.metrics(id)));
    return got.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /** SIGKILLs node `id` and resolves once it has exited. */
  async kill(id: number): Promise<void> { await this.killMany([id]); }

  /** SIGKILLs every node in `ids` in the same turn, and resolves once all have exited. */
  async killMany(ids: readonly number[]): Promise<void> {
    const ps = ids.map((id) => this.proc(id));
    for (const p of ps) if (!p.alive) throw new Error(`node ${p.id} is not running`);
    for (const p of ps) { this.stats.kills++; this.killNow(p); }
    await Promise.all(ps.map((p) => p.exited));
  }

  private killNow(p: NodeProc): void {
    p.expectExit = true;
    p.ready = false; // no new request goes to it from now on
    try { p.child?.kill('SIGKILL'); } catch { /* already gone */ }
  }

  /** Starts node `id` again on the same data dir (no initWithConfig: it recovers from its log). */
  async restart(id: number): Promise<void> { await this.spawn(id, null); }

  /**
   * Polls every running node's metrics until one of them leads and every running node in `among`
   * agrees on it in the same term; resolves with its id.
   */
  async waitForLeader(opts: { among?: readonly number[]; timeoutMs?: number; notIn?: readonly number[] } = {}): Promise<number> {
    const timeoutMs = opts.timeoutMs ?? 20_000;
    let last: RaftMetrics[] = [];
    return this.pollUntil(async () => {
      const among = opts.among ?? this.aliveIds();
      last = (await this.allMetrics()).filter((m) => among.includes(m.id));
      const leader = last.find((m) => m.state === 'Leader');
      if (!leader || (opts.notIn ?? []).includes(leader.id) || last.length !== among.length) return null;
      return last.every((m) => m.currentLeader === leader.id && m.currentTerm === leader.currentTerm) ? leader.id : null;
    }, timeoutMs, () => `an agreed leader; last ${JSON.stringify(last.map(summary))}`);
  }

  /** Any running node that says it leads (for clients looking for where to write). */
  async findLeader(timeoutMs = 20_000): Promise<number> {
    return this.pollUntil(async () => {
      const ms = await this.allMetrics();
      return ms.find((m) => m.state === 'Leader')?.id ?? null;
    }, timeoutMs, () => 'a node in state Leader');
  }

  /**
   * Waits until every node in `among` (default all) runs and has applied everything the agreed
   * leader has in its log, all at the same index: the cluster is quiet and converged.
   */
  async waitConverged(timeoutMs = 20_000): Promise<{ leader: number; index: number }> {
    let last: RaftMetrics[] = [];
    return this.pollUntil(async () => {
      if (this.aliveIds().length !== this.ids.length) return null;
      last = await this.allMetrics();
      const leader = last.find((m) => m.state === 'Leader');
      if (!leader || last.length !== this.ids.length) return null;
      const index = leader.lastLogIndex;
      const ok = last.every((m) => m.currentTerm === leader.currentTerm && m.currentLeader === leader.id
        && m.commitIndex === index && m.lastApplied === index && m.lastLogIndex === index);
      return ok ? { leader: leader.id, index } : null;
    }, timeoutMs, () => `convergence; last ${JSON.stringify(last.map(summary))}`);
  }

  /** Waits until node `id` has applied at least `index`. */
  async waitApplied(id: number, index: number, timeoutMs = 20_000): Promise<void> {
    let last: RaftMetrics | null = null;
    await this.pollUntil(async () => {
      last = await this.metrics(id);
      return last.lastApplied >= index ? true : null;
    }, timeoutMs, () => `node ${id} applying index ${index}; last ${JSON.stringify(last && summary(last))}`);
  }

  /** Calls `probe` every 25 ms (after each answer) until it returns non-null; rejects after `timeoutMs`. */
  private async pollUntil<T>(probe: () => Promise<T | null>, timeoutMs: number, what: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe().catch(() => null);
      if (v !== null) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stops every running node cleanly (node.stop, then exit); a node that does not exit in time is killed. */
  async stopAll(timeoutMs = 10_000): Promise<void> {
    await Promise.all(this.aliveIds().map(async (id) => {
      const p = this.proc(id);
      p.expectExit = true;
      const stopped = this.request(id, (reqId) => ({ t: 'stop', reqId }), 'stop', timeoutMs).catch((err: Error) => {
        this.incidents.push({ node: id, what: `clean stop failed: ${err.message}` });
      });
      await stopped;
      const timer = setTimeout(() => this.killNow(p), 2_000);
      await p.exited;
      clearTimeout(timer);
    }));
  }

  /** SIGKILLs every process still running and deletes the data dirs. Safe to call twice. */
  async destroy(): Promise<void> {
    const alive = [...this.procs.values()].filter((p) => p.alive);
    for (const p of alive) this.killNow(p);
    await Promise.all(alive.map((p) => p.exited));
    fs.rmSync(this.baseDir, { recursive: true, force: true });
  }
}

function summary(m: RaftMetrics): unknown {
  return { id: m.id, state: m.state, term: m.currentTerm, leader: m.currentLeader, last: m.lastLogIndex, commit: m.commitIndex, applied: m.lastApplied };
}
