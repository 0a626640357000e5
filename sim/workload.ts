/**
 * A key-value client workload for the simulator: concurrent clients issuing get, put, append and
 * compare-and-set against the cluster's KV state machine (examples/kv), each recording when it
 * invoked and when it heard back, and how the call ended:
 * - ok: the state machine's answer (a get's value, a cas's success);
 * - fail: the write certainly never took effect (the node was not the leader, the proposal was
 *   dropped, the node was down): left out of the history, as Porcupine does;
 * - unknown: anything else (a timeout, the node crashed while holding it): it may or may not have
 *   taken effect, so the checker may place it anywhere after its call, or nowhere.
 * A get is a read at one of four levels, each recorded in the history the checker verifies (so a
 * stale read is caught): 'command', a get command through the log as a write ('applied' mode);
 * and RaftNode.clientRead at 'linearizable' (read-index), 'lease' (the leader's lease, else
 * read-index) or 'log' (a blank entry through the log first). A read that fails or times out had no
 * effect and is left out.
 *
 * With sessions (the simulation's `sessions` option), each client registers a session and numbers
 * its writes; a write whose outcome is unknown is retried with the same serial (up to
 * `maxAttempts`), and the history records it once, from the first call to the answer. Whether or
 * not sessions are on, every state machine must apply each client command (each carries a unique
 * value) at most once: invariant 'applied at most once'.
 *
 * @example
 * const w = new KvWorkload(sim, { clients: 4, keys: 3 });
 * w.start();
 * await sim.runFor(5_000);
 * await w.stop();
 * const verdict = w.check({ timeoutMs: 10_000 }).verdict; // 'ok' | 'illegal' | 'unknown'
 */
import type { SeededRandom } from '../runtime/random';
import type { Entry } from '../actors/raft/core/types';
import type { StateMachine } from '../actors/apply/state-machine';
import { SessionExpiredError, SessionSerialError } from '../actors/apply/sessions';
import type { ReadConsistencyLevel } from '../actors/node';
import { ForwardToLeaderError, LeaderTransferInProgressError, MalformedMessageError, ProposalDroppedError } from '../actors/raft/core/errors';
import { encodeKv, type KvCommand, type KvResult } from '../examples/kv/kv-state-machine';
import { checkOperations, kvModel, UNKNOWN, type CheckResult, type KvInput, type KvOutput, type Operation } from './linearizability';
import { NodeDownError, type Simulation } from './simulation';

export interface WorkloadOptions {
  /** Concurrent clients (default 4). */
  readonly clients?: number;
  /** Keys the clients share (default 3): few keys make clients collide, which is the point. */
  readonly keys?: number;
  /** Pause between a client's operations, uniform in [0, thinkMs) virtual ms (default 20). */
  readonly thinkMs?: number;
  /** A client gives up on a call after this long; its outcome is then unknown (default 2,000). */
  readonly timeoutMs?: number;
  /** The levels gets are read at, drawn uniformly (default: all of READ_LEVELS). */
  readonly readLevels?: readonly ReadLevel[];
  /** With sessions: attempts of one write, the first included, while its outcome is unknown (default 5). */
  readonly maxAttempts?: number;
}

/**
 * How a get is read: 'command' is a get command written through the log; the others are
 * RaftNode.clientRead consistency levels ('linearizable' is read-index).
 */
export const READ_LEVELS = ['command', 'linearizable', 'lease', 'log'] as const;
export type ReadLevel = (typeof READ_LEVELS)[number];

/** Reads by level: answered (recorded in the history), and failed or timed out (left out: a read has no effect). */
export type ReadCounts = Record<ReadLevel, { ok: number; fail: number }>;

/** Client sessions: registered, write attempts retried with the same serial, and writes that a retry settled. */
export interface SessionCounts { registered: number; retries: number; recovered: number }

export function emptyReadCounts(): ReadCounts {
  return { command: { ok: 0, fail: 0 }, linearizable: { ok: 0, fail: 0 }, lease: { ok: 0, fail: 0 }, log: { ok: 0, fail: 0 } };
}

export function emptySessionCounts(): SessionCounts { return { registered: 0, retries: 0, recovered: 0 }; }

/** Outcome counters. */
export interface WorkloadStats {
  invoked: number;
  ok: number;
  fail: number;
  unknown: number;
  reads: ReadCounts;
  sessions: SessionCounts;
}

interface ClientSession { readonly clientId: number; serial: number }

type KvOp = Operation<KvInput, KvOutput>;

export class KvWorkload {
  readonly stats: WorkloadStats = { invoked: 0, ok: 0, fail: 0, unknown: 0, reads: emptyReadCounts(), sessions: emptySessionCounts() };
  private readonly ops: KvOp[] = [];
  private readonly random: SeededRandom;
  private readonly clients: number;
  private readonly keys: number;
  private readonly thinkMs: number;
  private readonly timeoutMs: number;
  private readonly readLevels: readonly ReadLevel[];
  private readonly maxAttempts: number;
  private readonly sessions: boolean;
  /** Per state machine: how many times it applied each client command (by its unique value). */
  private readonly appliedValues = new WeakMap<StateMachine, Map<string, number>>();
  private readonly unsubscribe: () => void;
  private running = false;
  private loops: Promise<void>[] = [];
  /** Per client: the node it believes leads. */
  private readonly leaderHint: (number | null)[];
  private seq = 0;

  constructor(private readonly sim: Simulation, opts: WorkloadOptions = {}) {
    this.clients = positiveInt(opts.clients ?? 4, 'clients');
    this.keys = positiveInt(opts.keys ?? 3, 'keys');
    this.thinkMs = nonNegative(opts.thinkMs ?? 20, 'thinkMs');
    this.timeoutMs = nonNegative(opts.timeoutMs ?? 2_000, 'timeoutMs');
    this.readLevels = opts.readLevels ?? READ_LEVELS;
    if (this.readLevels.length === 0 || this.readLevels.some((l) => !(READ_LEVELS as readonly string[]).includes(l))) {
      throw new RangeError(`readLevels must be a non-empty list of ${READ_LEVELS.join(', ')}, got ${JSON.stringify(this.readLevels)}`);
    }
    this.maxAttempts = positiveInt(opts.maxAttempts ?? 5, 'maxAttempts');
    this.sessions = sim.sessions;
    this.random = sim.random.fork('workload');
    this.leaderHint = new Array<number | null>(this.clients).fill(null);
    this.unsubscribe = sim.onApplied((id, sm, entries) => this.countApplied(id, sm, entries));
  }

  /**
   * Invariant 'applied at most once': every command of this workload carries a unique value (a
   * retry with a session serial carries the same one), so a state machine that applies one twice
   * applied a write twice.
   */
  private countApplied(id: number, sm: StateMachine, entries: readonly Entry[]): void {
    let counts = this.appliedValues.get(sm);
    if (counts === undefined) { counts = new Map(); this.appliedValues.set(sm, counts); }
    for (const e of entries) {
      if (e.kind !== 'normal') continue;
      let cmd: { op?: unknown; value?: unknown };
      try { cmd = JSON.parse(DECODER.decode(e.payload)) as typeof cmd; } catch { continue; }
      if (typeof cmd?.value !== 'string') continue;
      const n = (counts.get(cmd.value) ?? 0) + 1;
      counts.set(cmd.value, n);
      if (n > 1) this.sim.checker.fail('applied at most once', `node ${id} applied the command ${JSON.stringify(cmd)} a second time, at index ${e.index} (term ${e.term})`);
    }
  }

  /** Starts every client's loop; the simulation must be stepping for them to progress. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (let c = 0; c < this.clients; c++) this.loops.push(this.client(c));
  }

  /** Stops issuing operations and steps the simulation until every call in flight has ended. */
  async stop(): Promise<void> {
    this.running = false;
    await this.sim.settle(Promise.all(this.loops), this.timeoutMs + 2 * this.thinkMs + 1_100);
    this.loops = [];
  }

  /** Stops counting applied commands (the simulation keeps the listener otherwise). */
  detach(): void { this.unsubscribe(); }

  /** The history recorded so far (failed calls left out). */
  history(): readonly KvOp[] { return this.ops; }

  /** Checks the history for linearizability against the KV model. */
  check(opts: { timeoutMs: number }): CheckResult<KvInput, KvOutput> {
    return checkOperations(kvModel, [...this.ops], { timeoutMs: opts.timeoutMs });
  }

  /**
   * One write that must succeed: retried against the leader each client would pick, until it
   * lands or `withinMs` of virtual time passes. Resolves with whether it landed. For the heal
   * phase's liveness check.
   */
  async probe(withinMs: number): Promise<boolean> {
    const deadline = this.sim.now() + withinMs;
    let hint: number | null = null;
    while (this.sim.now() < deadline) {
      const target = hint ?? this.sim.leader() ?? this.pickNode();
      hint = null;
      const cmd: KvCommand = { op: 'put', key: 'probe', value: `p${++this.seq}` };
      try {
        await this.sim.node(target).clientWrite(encodeKv(cmd), { responseMode: 'applied', timeoutMs: Math.max(1, Math.min(this.timeoutMs, deadline - this.sim.now())) });
        return true;
      } catch (err) {
        if (err instanceof ForwardToLeaderError && err.leaderId !== null) hint = err.leaderId;
        await this.sim.sleep(10);
      }
    }
    return false;
  }

  private pickNode(): number {
    const up = this.sim.upNodes();
    const pool = up.length > 0 ? up : this.sim.ids;
    return pool[this.random.nextInt(0, pool.length)];
  }

  private nextCommand(client: number): { cmd: KvCommand; input: KvInput; level?: ReadLevel } {
    const key = `k${this.random.nextInt(0, this.keys)}`;
    const value = `c${client}.${++this.seq}`;
    const r = this.random.nextFloat();
    if (r < 0.4) return { cmd: { op: 'get', key }, input: { op: 'get', key }, level: this.readLevels[this.random.nextInt(0, this.readLevels.length)] };
    if (r < 0.6) return { cmd: { op: 'put', key, value }, input: { op: 'put', key, value } };
    if (r < 0.85) return { cmd: { op: 'append', key, value }, input: { op: 'append', key, value } };
    // cas expects a value some client wrote (or absence): sometimes right, often not.
    const expected = this.random.nextFloat() < 0.3 ? '' : `c${this.random.nextInt(0, this.clients)}.${this.random.nextInt(Math.max(1, this.seq - 10), this.seq + 1)}`;
    return { cmd: { op: 'cas', key, expected: expected === '' ? null : expected, value }, input: { op: 'cas', key, expected, value } };
  }

  private async client(c: number): Promise<void> {
    let session: ClientSession | null = null;
    while (this.running) {
      await this.sim.sleep(this.random.nextFloat() * this.thinkMs);
      if (!this.running) return;
      if (this.sessions && session === null) {
        session = await this.register(c);
        continue;
      }
      const { cmd, input, level } = this.nextCommand(c);
      if (level !== undefined && level !== 'command') await this.read(c, input.key, level);
      else await this.write(c, cmd, input, level, session);
    }
  }

  /** Where client `c` sends its next call: the leader it was told of, or a node at random. */
  private target(c: number): number { return this.leaderHint[c] ?? this.pickNode(); }

  private heard(c: number, err: unknown): void {
    this.leaderHint[c] = err instanceof ForwardToLeaderError ? err.leaderId : null;
  }

  /** Opens client `c`'s session (null when this attempt failed: the loop tries again). */
  private async register(c: number): Promise<ClientSession | null> {
    const target = this.target(c);
    this.sim.trace(`client ${c} register -> n${target}`);
    try {
      const clientId = await this.sim.node(target).registerSession({ requestTimeoutMs: this.timeoutMs });
      this.stats.sessions.registered++;
      this.sim.trace(`client ${c} session ${clientId}`);
      return { clientId, serial: 0 };
    } catch (err) {
      // A registration whose outcome is unknown leaves at most an unused session behind.
      this.heard(c, err);
      this.sim.trace(`client ${c} register failed ${(err as Error).name}`);
      return null;
    }
  }

  /** A get at `level` through RaftNode.clientRead; only answered reads enter the history. */
  private async read(c: number, key: string, level: Exclude<ReadLevel, 'command'>): Promise<void> {
    const target = this.target(c);
    const call = this.sim.nextEventSeq();
    this.stats.invoked++;
    this.sim.trace(`client ${c} read ${level} ${key} -> n${target}`);
    try {
      const v = await this.sim.node(target).clientRead<string | null>({ q: 'get', key }, { consistency: level satisfies ReadConsistencyLevel, timeoutMs: this.timeoutMs });
      const output: KvOutput = v ?? '';
      this.ops.push({ clientId: c, input: { op: 'get', key }, call, output, return: this.sim.nextEventSeq() });
      this.stats.ok++;
      this.stats.reads[level].ok++;
      this.sim.trace(`client ${c} ok ${JSON.stringify(output)}`);
    } catch (err) {
      // A read changes nothing: whatever became of it, it is left out of the history.
      this.stats.fail++;
      this.stats.reads[level].fail++;
      this.heard(c, err);
      this.sim.trace(`client ${c} fail ${(err as Error).name}`);
    }
  }

  /**
   * A command through the log (a get at level 'command', or a write). With a session, an attempt
   * whose outcome is unknown is retried with the same serial, so it applies at most once; the
   * history records one operation from the first call to the final answer.
   */
  private async write(c: number, cmd: KvCommand, input: KvInput, level: ReadLevel | undefined, session: ClientSession | null): Promise<void> {
    const call = this.sim.nextEventSeq();
    this.stats.invoked++;
    const serial = session === null ? 0 : ++session.serial;
    let maybeApplied = false;
    for (let attempt = 1; ; attempt++) {
      const target = this.target(c);
      this.sim.trace(`client ${c} ${JSON.stringify(cmd)}${session === null ? '' : ` s${session.clientId}#${serial}${attempt > 1 ? ` attempt ${attempt}` : ''}`} -> n${target}`);
      try {
        const res = await this.sim.node(target).clientWrite(encodeKv(cmd), {
          responseMode: 'applied', timeoutMs: this.timeoutMs, ...(session === null ? {} : { session: { clientId: session.clientId, serial } }),
        });
        const result = res.result as KvResult;
        const output: KvOutput = input.op === 'get' ? (result.value ?? '') : input.op === 'cas' ? result.ok : undefined;
        if (input.op !== 'cas' && !result.ok) throw new Error(`state machine refused ${JSON.stringify(cmd)}: ${JSON.stringify(result)}`);
        this.ops.push({ clientId: c, input, call, output, return: this.sim.nextEventSeq() });
        this.stats.ok++;
        if (level !== undefined) this.stats.reads[level].ok++;
        if (attempt > 1) this.stats.sessions.recovered++;
        this.sim.trace(`client ${c} ok ${JSON.stringify(output ?? null)}`);
        return;
      } catch (err) {
        if (err instanceof SessionSerialError) throw new Error(`client ${c}: ${err.message} (the workload sends one command per session at a time)`);
        const definite = definitelyNotApplied(err);
        if (!definite) maybeApplied = true;
        this.heard(c, definite ? err : null);
        const retry = session !== null && maybeApplied && this.running && attempt < this.maxAttempts && !(err instanceof SessionExpiredError);
        if (!retry) {
          if (maybeApplied) {
            this.stats.unknown++;
            this.ops.push({ clientId: c, input, call, output: UNKNOWN, return: Infinity });
            this.sim.trace(`client ${c} unknown ${(err as Error).name}`);
          } else {
            this.stats.fail++;
            if (level !== undefined) this.stats.reads[level].fail++;
            this.sim.trace(`client ${c} fail ${(err as Error).name}`);
          }
          return;
        }
        this.stats.sessions.retries++;
        this.sim.trace(`client ${c} retry ${(err as Error).name}`);
        await this.sim.sleep(10 + this.random.nextFloat() * this.thinkMs);
      }
    }
  }
}

const DECODER = new TextDecoder();

/** Errors after which the command certainly never takes effect. */
function definitelyNotApplied(err: unknown): boolean {
  return err instanceof ForwardToLeaderError || err instanceof ProposalDroppedError || err instanceof NodeDownError || err instanceof MalformedMessageError
    || err instanceof LeaderTransferInProgressError || err instanceof SessionExpiredError;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegative(v: number, what: string): number {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${what} must be a finite number >= 0, got ${String(v)}`);
  return v;
}
