/**
 * A key-value client workload for the simulator: concurrent clients issuing get, put, append and
 * compare-and-set against the cluster's KV state machine (examples/kv), each recording when it
 * invoked and when it heard back, and how the call ended:
 * - ok: the state machine's answer (a get's value, a cas's success);
 * - fail: the write certainly never took effect (the node was not the leader, the proposal was
 *   dropped, the node was down): left out of the history, as Porcupine does;
 * - unknown: anything else (a timeout, the node crashed while holding it): it may or may not have
 *   taken effect, so the checker may place it anywhere after its call, or nowhere.
 * Gets go through the log ('applied' mode), so they are linearizable reads.
 *
 * @example
 * const w = new KvWorkload(sim, { clients: 4, keys: 3 });
 * w.start();
 * await sim.runFor(5_000);
 * await w.stop();
 * const verdict = w.check({ timeoutMs: 10_000 }).verdict; // 'ok' | 'illegal' | 'unknown'
 */
import type { SeededRandom } from '../runtime/random';
import { ForwardToLeaderError, MalformedMessageError, ProposalDroppedError } from '../actors/raft/core/errors';
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
}

/** Outcome counters. */
export interface WorkloadStats {
  invoked: number;
  ok: number;
  fail: number;
  unknown: number;
}

type KvOp = Operation<KvInput, KvOutput>;

export class KvWorkload {
  readonly stats: WorkloadStats = { invoked: 0, ok: 0, fail: 0, unknown: 0 };
  private readonly ops: KvOp[] = [];
  private readonly random: SeededRandom;
  private readonly clients: number;
  private readonly keys: number;
  private readonly thinkMs: number;
  private readonly timeoutMs: number;
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
    this.random = sim.random.fork('workload');
    this.leaderHint = new Array<number | null>(this.clients).fill(null);
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
    await this.sim.settle(Promise.all(this.loops), this.timeoutMs + this.thinkMs + 1_000);
    this.loops = [];
  }

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

  private nextCommand(client: number): { cmd: KvCommand; input: KvInput } {
    const key = `k${this.random.nextInt(0, this.keys)}`;
    const value = `c${client}.${++this.seq}`;
    const r = this.random.nextFloat();
    if (r < 0.4) return { cmd: { op: 'get', key }, input: { op: 'get', key } };
    if (r < 0.6) return { cmd: { op: 'put', key, value }, input: { op: 'put', key, value } };
    if (r < 0.85) return { cmd: { op: 'append', key, value }, input: { op: 'append', key, value } };
    // cas expects a value some client wrote (or absence): sometimes right, often not.
    const expected = this.random.nextFloat() < 0.3 ? '' : `c${this.random.nextInt(0, this.clients)}.${this.random.nextInt(Math.max(1, this.seq - 10), this.seq + 1)}`;
    return { cmd: { op: 'cas', key, expected: expected === '' ? null : expected, value }, input: { op: 'cas', key, expected, value } };
  }

  private async client(c: number): Promise<void> {
    while (this.running) {
      await this.sim.sleep(this.random.nextFloat() * this.thinkMs);
      if (!this.running) return;
      const target = this.leaderHint[c] ?? this.pickNode();
      const { cmd, input } = this.nextCommand(c);
      const call = this.sim.nextEventSeq();
      this.stats.invoked++;
      this.sim.trace(`client ${c} ${JSON.stringify(cmd)} -> n${target}`);
      try {
        const res = await this.sim.node(target).clientWrite(encodeKv(cmd), { responseMode: 'applied', timeoutMs: this.timeoutMs });
        const result = res.result as KvResult;
        const output: KvOutput = input.op === 'get' ? (result.value ?? '') : input.op === 'cas' ? result.ok : undefined;
        if (input.op !== 'cas' && !result.ok) throw new Error(`state machine refused ${JSON.stringify(cmd)}: ${JSON.stringify(result)}`);
        this.ops.push({ clientId: c, input, call, output, return: this.sim.nextEventSeq() });
        this.stats.ok++;
        this.sim.trace(`client ${c} ok ${JSON.stringify(output ?? null)}`);
      } catch (err) {
        if (definitelyNotApplied(err)) {
          this.stats.fail++;
          if (err instanceof ForwardToLeaderError) this.leaderHint[c] = err.leaderId;
          else this.leaderHint[c] = null;
          this.sim.trace(`client ${c} fail ${(err as Error).name}`);
        } else {
          this.stats.unknown++;
          this.leaderHint[c] = null;
          this.ops.push({ clientId: c, input, call, output: UNKNOWN, return: Infinity });
          this.sim.trace(`client ${c} unknown ${(err as Error).name}`);
        }
      }
    }
  }
}

/** Errors after which the command certainly never takes effect. */
function definitelyNotApplied(err: unknown): boolean {
  return err instanceof ForwardToLeaderError || err instanceof ProposalDroppedError || err instanceof NodeDownError || err instanceof MalformedMessageError;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegative(v: number, what: string): number {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${what} must be a finite number >= 0, got ${String(v)}`);
  return v;
}
