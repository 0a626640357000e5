/**
 * Real `actor-raft-kv` processes on loopback: free ports, one temporary data directory per node,
 * start / SIGKILL / SIGTERM / restart with the same flags, the last stderr lines of every
 * incarnation for failure reports, and no orphans: every child is killed and every directory
 * removed by `cleanup()` (call it from an after hook), and again, synchronously, when this
 * process exits.
 *
 * @example
 * const cluster = await KvCluster.create({ ids: [1, 2, 3, 4] });
 * await Promise.all([1, 2, 3].map((id) => cluster.start(id)));
 * await cluster.init([1, 2, 3]);
 * const leader = await cluster.waitForLeader([1, 2, 3]);
 * await cluster.cleanup();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from './http';
import { KvHttpClient } from './http';
import { pollUntil } from './wait';
import { freePorts } from '../../../network/free-ports';
export { freePorts };

export const REPO_ROOT = join(__dirname, '../../..');
/** The CLI under test; ACTOR_RAFT_KV_BIN points the harness at another build of it. */
export const CLI_BIN = process.env.ACTOR_RAFT_KV_BIN ?? join(REPO_ROOT, 'examples/kv-service/bin/actor-raft-kv.js');

/** The subset of RaftMetrics (GET /status) the tests read. */
export interface NodeStatus {
  id: number;
  state: string;
  currentTerm: number;
  currentLeader: number | null;
  lastLogIndex: number;
  lastApplied: number;
  commitIndex: number;
  membership: { members: number[]; nonVoters: number[]; membersAfterConsensus: number[] | null };
  membershipIndex: number;
  configChange: unknown;
}

export interface NodeAddresses { readonly id: number; readonly raft: Address; readonly http: Address; readonly dataDir: string }

// Every child and directory of this process, for the exit hook.
const allChildren = new Set<ChildProcess>();
const allDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of allChildren) { try { c.kill('SIGKILL'); } catch { /* already gone */ } }
    for (const d of allDirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
  });
}

/** Keeps the last `capacity` lines of a stream. */
export class RingBuffer {
  private lines: string[] = [];
  private partial = '';
  dropped = 0;
  constructor(private readonly capacity: number) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const l of parts) this.add(l);
  }
  private add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) { this.lines.shift(); this.dropped++; }
  }
  text(): string {
    const all = this.partial === '' ? this.lines : [...this.lines, this.partial];
    return (this.dropped > 0 ? `... ${this.dropped} earlier lines dropped\n` : '') + all.join('\n');
  }
}

/** One process of the CLI (one incarnation of a node). */
export class KvProcess {
  readonly stderr = new RingBuffer(400);
  readonly stdout = new RingBuffer(50);
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private listeningLine: Record<string, unknown> | null = null;
  private listeningWaiters: (() => void)[] = [];

  constructor(readonly id: number, readonly incarnation: number, readonly args: readonly string[], readonly child: ChildProcess) {
    allChildren.add(child);
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.stdout.push(chunk);
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (this.listeningLine !== null || !line.startsWith('{')) continue;
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.event === 'listening') { this.listeningLine = j; for (const w of this.listeningWaiters.splice(0)) w(); }
        } catch { /* not JSON */ }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => this.stderr.push(chunk));
    // A failed spawn emits 'error' (and maybe no 'exit'); unhandled, it would crash the test run.
    child.on('error', (err) => this.stderr.push(`[harness] spawn failed: ${err.message}\n`));
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exitStatus = { code, signal };
        allChildren.delete(child);
        for (const w of this.listeningWaiters.splice(0)) w();
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean { return this.exitStatus === null; }

  /** The `{"event":"listening",...}` line, once printed. Rejects if the process exits first or after `timeoutMs`. */
  async waitListening(timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.listeningLine === null && this.running) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.listeningWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    if (this.listeningLine !== null) return this.listeningLine;
    const why = this.running ? `no "listening" line within ${timeoutMs} ms` : `exited (${JSON.stringify(this.exitStatus)}) before listening`;
    throw new Error(`node ${this.id}: ${why}\nstdout:\n${this.stdout.text()}\nstderr:\n${this.stderr.text()}`);
  }
}

export type Placement = 'local' | 'worker';

export interface ClusterOptions {
  /** Every node that may ever be a member: the address book every process gets in --peers. */
  readonly ids: readonly number[];
  /** --placement of every node, or of each node by id (default 'worker', the CLI's own default). */
  readonly placement?: Placement | ((id: number) => Placement);
  readonly logLevel?: string;
  /** Deadline for a process to print its listening line (default 30 s). */
  readonly startTimeoutMs?: number;
}

export class KvCluster {
  readonly http = new KvHttpClient({ timeoutMs: 5_000, maxSockets: 4 });
  readonly nodes = new Map<number, NodeAddresses>();
  /** The current process of each started node. */
  readonly procs = new Map<number, KvProcess>();
  /** Every incarnation, in start order, for the logs. */
  readonly history: KvProcess[] = [];
  private readonly clusterId = `mp-test-${process.pid}`;

  private constructor(readonly root: string, private readonly o: ClusterOptions) {}

  static async create(o: ClusterOptions): Promise<KvCluster> {
    installExitHook();
    const root = mkdtempSync(join(tmpdir(), 'actor-raft-kv-mp-'));
    allDirs.add(root);
    const cluster = new KvCluster(root, o);
    const ports = await freePorts(o.ids.length * 2);
    o.ids.forEach((id, i) => {
      cluster.nodes.set(id, {
        id,
        raft: { host: '127.0.0.1', port: ports[2 * i] },
        http: { host: '127.0.0.1', port: ports[2 * i + 1] },
        dataDir: join(root, `n${id}`),
      });
    });
    return cluster;
  }

  node(id: number): NodeAddresses {
    const n = this.nodes.get(id);
    if (!n) throw new RangeError(`no node ${id} in this cluster`);
    return n;
  }

  /** The flags a node is started with, the same on every restart. */
  args(id: number): string[] {
    const n = this.node(id);
    const peers = [...this.nodes.values()].map((p) => `${p.id}=${p.raft.host}:${p.raft.port}`).join(',');
    return [
      '--id', String(id),
      '--raft', `${n.raft.host}:${n.raft.port}`,
      '--http', `${n.http.host}:${n.http.port}`,
      '--peers', peers,
      '--data', n.dataDir,
      '--cluster-id', this.clusterId,
      '--placement', typeof this.o.placement === 'function' ? this.o.placement(id) : this.o.placement ?? 'worker',
      '--log-level', this.o.logLevel ?? 'info',
    ];
  }

  /** Starts node `id` (or restarts it, with the same flags and data) and waits for its listening line. */
  async start(id: number): Promise<KvProcess> {
    const cur = this.procs.get(id);
    if (cur?.running) throw new Error(`node ${id} is already running (pid ${cur.child.pid})`);
    const args = this.args(id);
    const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    const proc = new KvProcess(id, this.history.filter((p) => p.id === id).length + 1, args, child);
    this.procs.set(id, proc);
    this.history.push(proc);
    const line = await proc.waitListening(this.o.startTimeoutMs ?? 30_000);
    if (line.id !== id) throw new Error(`node ${id}: listening line names id ${String(line.id)}: ${JSON.stringify(line)}`);
    return proc;
  }

  /** SIGKILL: no chance to flush or say goodbye. Resolves once the process is gone. */
  async kill9(id: number): Promise<void> {
    const p = this.procs.get(id);
    if (!p?.running) throw new Error(`node ${id} is not running`);
    p.child.kill('SIGKILL');
    await p.exited;
  }

  /** SIGTERM and wait; returns the exit status (the CLI promises exit code 0). */
  async stop(id: number, timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.procs.get(id);
    if (!p?.running) throw new Error(`node ${id} is not running`);
    p.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`node ${id} did not exit within ${timeoutMs} ms of SIGTERM`)), timeoutMs);
    });
    try {
      return await Promise.race([p.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  running(): number[] {
    return [...this.procs.values()].filter((p) => p.running).map((p) => p.id).sort((a, b) => a - b);
  }

  status(id: number, timeoutMs = 2_000): Promise<NodeStatus> {
    return this.http.json<NodeStatus>(this.node(id).http, 'GET', '/status', undefined, timeoutMs);
  }

  /** Status of every node in `ids`; a node that does not answer is null. */
  async statuses(ids: readonly number[]): Promise<Map<number, NodeStatus | null>> {
    const out = new Map<number, NodeStatus | null>();
    await Promise.all(ids.map(async (id) => { out.set(id, await this.status(id).catch(() => null)); }));
    return out;
  }

  /** POST /admin/init {members} to every node in `members`, in parallel. */
  async init(members: readonly number[]): Promise<void> {
    await Promise.all(members.map((id) => this.http.json(this.node(id).http, 'POST', '/admin/init', { members })));
  }

  /**
   * Waits until every node of `ids` answers /status and all agree on one leader among `ids`,
   * which says it leads. Returns its id.
   */
  async waitForLeader(ids: readonly number[], timeoutMs = 30_000): Promise<number> {
    return pollUntil(async () => {
      const s = await this.statuses(ids);
      const leaders = new Set([...s.values()].map((m) => m?.currentLeader ?? null));
      if (leaders.size !== 1) return undefined;
      const [leader] = leaders;
      if (leader === null || !ids.includes(leader) || s.get(leader)?.state !== 'Leader') return undefined;
      return leader;
    }, { timeoutMs, what: `one leader among nodes ${ids.join(',')}`, describe: async () => JSON.stringify(summarize(await this.statuses(ids))) });
  }

  /**
   * Waits until every node of `ids` has applied at least the leader's commit index as read now
   * (the leader must be one of `ids`). Returns that index.
   */
  async waitForApplied(ids: readonly number[], timeoutMs = 30_000): Promise<number> {
    const leader = await this.waitForLeader(ids, timeoutMs);
    const target = (await this.status(leader)).commitIndex;
    await pollUntil(async () => {
      const s = await this.statuses(ids);
      return [...s.values()].every((m) => m !== null && m.lastApplied >= target) ? true : undefined;
    }, { timeoutMs, what: `nodes ${ids.join(',')} applied index ${target}`, describe: async () => JSON.stringify(summarize(await this.statuses(ids))) });
    return target;
  }

  /** The last stderr lines of every incarnation, for a failure report. */
  logs(): string {
    return this.history.map((p) =>
      `===== node ${p.id} #${p.incarnation} (pid ${p.child.pid}, ${p.running ? 'running' : `exited ${JSON.stringify(p.exitStatus)}`}) =====\n` +
      `${p.args.join(' ')}\n--- stderr (last lines) ---\n${p.stderr.text()}`).join('\n');
  }

  /** Kills every process (SIGKILL), waits for them, removes the data directories, closes sockets. */
  async cleanup(): Promise<void> {
    const live = [...this.procs.values()].filter((p) => p.running);
    for (const p of live) { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }
    await Promise.all(live.map((p) => p.exited));
    this.http.close();
    rmSync(this.root, { recursive: true, force: true });
    allDirs.delete(this.root);
  }
}

/** A compact view of statuses for error messages. */
export function summarize(s: Map<number, NodeStatus | null>): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const [id, m] of s) {
    out[id] = m === null ? 'no answer' : {
      state: m.state, term: m.currentTerm, leader: m.currentLeader, commit: m.commitIndex, applied: m.lastApplied,
      members: m.membership.members, after: m.membership.membersAfterConsensus, nonVoters: m.membership.nonVoters,
    };
  }
  return out;
}

