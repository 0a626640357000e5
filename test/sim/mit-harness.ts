/**
 * A small harness that gives the deterministic Simulation the vocabulary of the MIT 6.824 Raft lab
 * tester (2020-2022, labs 2A/2B/2C), so the lab's scenarios can be written down nearly step for
 * step: servers that are connected or disconnected, crashed (keeping what they persisted) and
 * restarted, commands that are integers, and the checks `nCommitted`, `one`, `wait`,
 * `checkOneLeader`, `checkTerms` and `checkNoLeader`.
 *
 * Differences from the lab, and how they are bridged:
 * - Servers are numbered 1..n (the lab: 0..n-1); `peer(i, k)` is the lab's `(i + k) % n`.
 * - A command is an integer, carried as its decimal text in the entry payload. Our log also holds
 *   a config entry (the first leader's, at index 1) and a blank entry per later leader; the state
 *   machines record those as non-commands, and `commandIndex` maps a log index to the lab's numbering
 *   (the position among commands) where a test asserts the lab's absolute indexes.
 * - The lab's Start() returns the index at once; our clientWrite answers with the index only once
 *   the entry is committed (and rejects with ForwardToLeaderError on a non-leader). `start` decides
 *   "is leader" synchronously from the node's inspected role, as Start() does, and hands back the
 *   write's eventual outcome; `startAndLocate` finds where an uncommitted entry landed.
 * - Time is the simulation's virtual clock: every "sleep" is virtual milliseconds.
 *
 * Two styles of call. Driver calls (`one`, `checkOneLeader`, `sleep`, `crash1`, ...) step the
 * simulation themselves and are awaited from the test body, one at a time. Client calls (`*Async`,
 * `start`) never step: they wait on the virtual clock and on writes, and are used for the lab's
 * goroutines, run as `background` tasks that make progress whenever a driver call steps.
 */
import { Simulation, type SimStateMachine } from '../../sim/simulation';
import { RELIABLE_NETWORK, UNRELIABLE_NETWORK, type NetworkFaults } from '../../sim/sim-network';
import { SeededRandom } from '../../runtime/random';
import { AskTimeoutError } from '../../runtime/errors';
import type { StateMachine } from '../../actors/apply/state-machine';
import type { RaftConfig } from '../../actors/raft/core/config';
import { ForwardToLeaderError, NodeStoppedError, ProposalDroppedError } from '../../actors/raft/core/errors';
import { decodeEntries } from '../../actors/raft/codec';
import { nodeId, type Entry, type LogIndex } from '../../actors/raft/core/types';
import type { StorageMsg } from '../../storage/storage';

/** The lab's RaftElectionTimeout: the time a cluster is given to elect a leader (virtual ms). */
export const RAFT_ELECTION_TIMEOUT_MS = 1_000;

/** The lab fails any test that runs longer than two minutes; here: of virtual time. */
export const TEST_TIME_LIMIT_MS = 120_000;

/**
 * The lab's "long reordering" on top of its unreliable network: two answers in three are held back
 * 200 ms to 2.2 s, while requests still arrive quickly.
 */
export const LONG_REORDERING_NETWORK: NetworkFaults = Object.freeze({
  ...UNRELIABLE_NETWORK,
  longAnswerDelayProbability: 2 / 3,
  longAnswerDelayMinMs: 200,
  longAnswerDelayMaxMs: 2_200,
});

/** What a state machine applied at one index: a command, or one of our non-command entries. */
export type Applied = number | 'blank' | 'config';

/** The eventual outcome of a write: committed at `index`, or refused/dropped/lost with `error`. */
export type WriteOutcome =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly error: Error };

/** The lab's Start() on a leader: accepted in `term`; the index arrives with `outcome`. */
export interface Started {
  readonly ok: true;
  readonly id: number;
  readonly term: number;
  /** The node's last log index when the write was handed to it. */
  readonly lastLogIndex: number;
  readonly outcome: Promise<WriteOutcome>;
}

/** Start() on a node that is down or not leader. `term` is null when the node is down. */
export interface NotStarted {
  readonly ok: false;
  readonly term: number | null;
}

export interface MitOptions {
  readonly seed: number;
  readonly servers: number;
  /** The lab's `unreliable` flag: UNRELIABLE_NETWORK instead of RELIABLE_NETWORK. */
  readonly unreliable?: boolean;
  /**
   * Whether a state machine outlives a crash (default true). The 2C tests pass false: as in the
   * lab, only what Raft persisted survives, and a restarted server applies its log again from 1.
   */
  readonly durableStateMachine?: boolean;
  readonly config?: Partial<RaftConfig>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: number): Uint8Array {
  if (!Number.isSafeInteger(cmd) || cmd < 0) throw new RangeError(`a command is a non-negative safe integer, got ${cmd}`);
  return encoder.encode(String(cmd));
}

export function decodeCommand(payload: Uint8Array): number {
  const text = decoder.decode(payload);
  const cmd = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(cmd)) throw new TypeError(`payload ${JSON.stringify(text)} is not a command`);
  return cmd;
}

/** A check of the lab's tester failed. */
export class MitCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MitCheckError';
  }
}

/** Errors a write may end with in these scenarios: not the leader, overwritten, node stopped, timed out. */
function isExpectedWriteError(err: Error): boolean {
  return err instanceof ForwardToLeaderError || err instanceof ProposalDroppedError || err instanceof NodeStoppedError
    || err instanceof AskTimeoutError;
}

/**
 * One incarnation of a node's state machine: records every applied entry into the node's applied
 * map (which, like the lab's per-server log of applied commands, outlives crashes), and checks what
 * the lab's applier checks: entries arrive in order, and nobody applied anything else at the index.
 */
class RecordingStateMachine implements StateMachine {
  private applied = 0;

  constructor(private readonly harness: MitCluster, private readonly id: number) {}

  lastApplied(): LogIndex { return this.applied as LogIndex; }

  apply(entries: readonly Entry[]): readonly unknown[] {
    for (const e of entries) {
      if (e.index !== this.applied + 1) this.harness.applyError(`server ${this.id} applied index ${e.index} after index ${this.applied} (out of order)`);
      let v: Applied;
      if (e.kind !== 'normal') v = e.kind;
      else {
        try { v = decodeCommand(e.payload); } catch (err) { this.harness.applyError(`server ${this.id} index ${e.index}: ${(err as Error).message}`); continue; }
      }
      this.harness.recordApplied(this.id, e.index, v);
      this.applied = e.index;
    }
    return entries.map(() => undefined);
  }
}

export class MitCluster {
  /** The test's own random source (the lab's uses of Go's rand), derived from the seed. */
  readonly rng: SeededRandom;
  readonly n: number;
  private readonly connected: boolean[];
  /** Per server (index = id): log index -> what it applied there. Survives crashes. */
  private readonly logs: Map<number, Applied>[];
  private readonly applyErrors: string[] = [];
  private readonly clientErrors: Error[] = [];
  private readonly unexpectedWriteErrors: string[] = [];

  private simulation: Simulation | null = null;

  private constructor(readonly seed: number, servers: number) {
    this.rng = new SeededRandom(seed).fork('mit6824-test');
    this.n = servers;
    this.connected = Array.from({ length: this.n + 1 }, (_, i) => i > 0);
    this.logs = Array.from({ length: this.n + 1 }, () => new Map<number, Applied>());
  }

  /** A cluster of `servers` nodes, all connected, formed with InitWithConfig (no leader yet). */
  static async create(opts: MitOptions): Promise<MitCluster> {
    const h = new MitCluster(opts.seed, opts.servers);
    h.simulation = await Simulation.create({
      seed: opts.seed,
      nodes: opts.servers,
      config: opts.config,
      durableStateMachine: opts.durableStateMachine ?? true,
      network: opts.unreliable ? UNRELIABLE_NETWORK : RELIABLE_NETWORK,
      application: { create: (id) => new RecordingStateMachine(h, id) } satisfies SimStateMachine,
    });
    return h;
  }

  get sim(): Simulation {
    if (this.simulation === null) throw new Error('the simulation is not created yet');
    return this.simulation;
  }

  // ---- time ----

  now(): number { return this.sim.now(); }

  /** Driver: lets `ms` of virtual time pass. */
  async sleep(ms: number): Promise<void> {
    await this.sim.runFor(ms);
    this.rethrowClientError();
  }

  /** Client: resolves after `ms` of virtual time (someone must be stepping). */
  sleepAsync(ms: number): Promise<void> {
    return new Promise((resolve) => this.sim.clock.setTimeout(resolve, ms));
  }

  /** Client: `p`'s value, or null if `ms` of virtual time pass first. */
  within<T>(p: Promise<T>, ms: number): Promise<T | null> {
    return new Promise<T | null>((resolve, reject) => {
      const timer = this.sim.clock.setTimeout(() => resolve(null), ms);
      p.then((v) => { this.sim.clock.clearTimeout(timer); resolve(v); }, (e: unknown) => { this.sim.clock.clearTimeout(timer); reject(e); });
    });
  }

  /** Driver: steps until `p` settles; SimulationError after `boundMs` of virtual time. */
  async drive<T>(p: Promise<T>, boundMs: number): Promise<T> {
    try {
      return await this.sim.settle(p, boundMs);
    } finally {
      this.rethrowClientError();
    }
  }

  /**
   * Starts a client task (one of the lab's goroutines). Its failure is reported by the next driver
   * call and by `end()`; await the returned promise (through `drive`) to collect its value.
   */
  background<T>(task: () => Promise<T>): Promise<T> {
    const p = task();
    p.catch((err: unknown) => { this.clientErrors.push(err instanceof Error ? err : new Error(String(err))); });
    return p;
  }

  // ---- servers ----

  /** The lab's `(i + k) % n` for 1-based ids. */
  peer(id: number, k: number): number { return ((id - 1 + k) % this.n) + 1; }

  /** A uniformly random server id (the lab's `rand.Int() % servers`). */
  randomServer(): number { return this.rng.nextInt(1, this.n + 1); }

  /** `rand.Int() % 1000 < permille`. */
  chance(permille: number): boolean { return this.rng.nextInt(0, 1000) < permille; }

  /** A random command (the lab's `rand.Int()`). */
  randomCommand(): number { return this.rng.nextUint32(); }

  isConnected(id: number): boolean { return this.connected[id]; }

  isUp(id: number): boolean { return this.sim.isUp(id); }

  /** The lab's GetState(): term and whether the node believes it leads; null when down. */
  getState(id: number): { term: number; isLeader: boolean } | null {
    const s = this.sim.inspect(id)?.status;
    return s ? { term: s.currentTerm, isLeader: s.role === 'Leader' } : null;
  }

  /** Cuts every link of `id`. */
  disconnect(id: number): void {
    this.connected[id] = false;
    const me = nodeId(id);
    for (const other of this.sim.ids) if (other !== me) { this.sim.network.cut(me, other); this.sim.network.cut(other, me); }
  }

  /** Restores the links between `id` and every connected server (a link is up iff both ends are connected). */
  connect(id: number): void {
    this.connected[id] = true;
    const me = nodeId(id);
    for (const other of this.sim.ids) {
      if (other !== me && this.connected[other]) { this.sim.network.uncut(me, other); this.sim.network.uncut(other, me); }
    }
  }

  /** The lab's crash1: disconnect the server, then power loss (what it synced survives). */
  async crash1(id: number): Promise<void> {
    this.disconnect(id);
    if (this.sim.isUp(id)) await this.sim.crash(id);
    this.rethrowClientError();
  }

  /** The lab's start1: crash the server if it runs, then restart it from its disk, still disconnected. */
  async start1(id: number): Promise<void> {
    if (this.sim.isUp(id)) await this.crash1(id);
    await this.sim.restart(id);
    this.rethrowClientError();
  }

  /** Switches the whole network between the lab's reliable and unreliable modes. */
  setUnreliable(unreliable: boolean): void {
    this.sim.network.faults = unreliable ? UNRELIABLE_NETWORK : RELIABLE_NETWORK;
  }

  setLongReordering(): void { this.sim.network.faults = LONG_REORDERING_NETWORK; }

  // ---- what was applied ----

  /** @internal A state machine of server `id` applied `v` at `index`. */
  recordApplied(id: number, index: number, v: Applied): void {
    for (let j = 1; j <= this.n; j++) {
      const other = this.logs[j].get(index);
      if (other !== undefined && other !== v) this.applyError(`commit index=${index} server=${id} ${v} != server=${j} ${other}`);
    }
    this.logs[id].set(index, v);
  }

  /** @internal */
  applyError(msg: string): void { this.applyErrors.push(msg); }

  /**
   * The lab's nCommitted: how many servers applied something at `index`, and what; fails if they
   * disagree or any applier saw an error. Counts every server, connected or not, up or down.
   */
  nCommitted(index: number): { count: number; cmd: Applied | undefined } {
    if (this.applyErrors.length > 0) this.fail(`apply error: ${this.applyErrors[0]}`);
    let count = 0;
    let cmd: Applied | undefined;
    for (let id = 1; id <= this.n; id++) {
      const v = this.logs[id].get(index);
      if (v === undefined) continue;
      if (count > 0 && v !== cmd) this.fail(`committed values do not match: index ${index}, ${String(cmd)} vs ${v} (server ${id})`);
      count++;
      cmd = v;
    }
    return { count, cmd };
  }

  /** Commands server `id` applied so far (non-command entries not counted). */
  commandsApplied(id: number): number {
    let k = 0;
    for (const v of this.logs[id].values()) if (typeof v === 'number') k++;
    return k;
  }

  /** The lab's number for the command applied at log `index`: its position among commands (1-based). */
  commandIndex(index: number): number {
    const holder = this.logs.findIndex((log, id) => id > 0 && log.has(index));
    if (holder < 0) this.fail(`commandIndex(${index}): nobody applied index ${index}`);
    const v = this.logs[holder].get(index);
    if (typeof v !== 'number') this.fail(`commandIndex(${index}): index ${index} holds a ${String(v)} entry, not a command`);
    let k = 0;
    for (let i = 1; i <= index; i++) {
      const w = this.logs[holder].get(i);
      if (w === undefined) this.fail(`commandIndex(${index}): server ${holder} has no record of index ${i}`);
      if (typeof w === 'number') k++;
    }
    return k;
  }

  // ---- the lab's Start() and checks ----

  /**
   * The lab's Start(cmd) on server `id`: accepted only if the node is up and believes it leads now.
   * The write's outcome never rejects; an error other than the expected ones is reported by `end()`.
   */
  start(id: number, cmd: number): Started | NotStarted {
    if (!this.sim.isUp(id)) return { ok: false, term: null };
    const s = this.sim.inspect(id)?.status;
    if (!s || s.role !== 'Leader') return { ok: false, term: s?.currentTerm ?? null };
    const outcome = this.sim.node(id).clientWrite(encodeCommand(cmd)).then(
      (r): WriteOutcome => ({ ok: true, index: r.index, term: r.term }),
      (err: unknown): WriteOutcome => {
        const e = err instanceof Error ? err : new Error(String(err));
        if (!isExpectedWriteError(e)) this.unexpectedWriteErrors.push(`write of ${cmd} to server ${id}: ${e.name}: ${e.message}`);
        return { ok: false, error: e };
      },
    );
    return { ok: true, id, term: s.currentTerm, lastLogIndex: s.lastLogIndex, outcome };
  }

  /**
   * Driver: Start(cmd) on leader `id`, then steps until the entry is in its log, and returns where
   * it landed (log index and the lab's command index), read back from the node's storage. For
   * checks of the index Start() returns while the entry is not (yet) committed.
   */
  async startAndLocate(id: number, cmd: number): Promise<Started & { index: number; commandIndex: number }> {
    const s = this.start(id, cmd);
    if (!s.ok) this.fail(`server ${id} rejected Start(${cmd})`);
    let settled = false;
    void s.outcome.then(() => { settled = true; });
    await this.sim.runUntil(() => settled || (this.sim.inspect(id)?.status.lastLogIndex ?? 0) > s.lastLogIndex, { timeoutMs: 1_000, what: `Start(${cmd}) appended on server ${id}` });
    const status = this.sim.inspect(id)?.status;
    if (!status || status.lastLogIndex <= s.lastLogIndex) this.fail(`Start(${cmd}) on server ${id} did not append (outcome settled first)`);
    const index = s.lastLogIndex + 1;
    const log = await this.readLog(id, 1, index + 1);
    const e = log[index - 1];
    if (e?.kind !== 'normal' || decodeCommand(e.payload) !== cmd || e.term !== s.term) {
      this.fail(`Start(${cmd}) on server ${id}: index ${index} holds ${JSON.stringify(e && { kind: e.kind, term: e.term })}`);
    }
    const commandIndex = log.filter((x) => x.kind === 'normal').length;
    return { ...s, index, commandIndex };
  }

  /**
   * Client: the index of the first of `outcomes` to commit, or null once all of them failed.
   * (The lab's Start() on several leaders at once keeps one index; ours arrive with the commit.)
   */
  firstCommitted(outcomes: readonly Promise<WriteOutcome>[]): Promise<number | null> {
    return new Promise((resolve) => {
      let left = outcomes.length;
      if (left === 0) resolve(null);
      for (const o of outcomes) {
        void o.then((r) => {
          if (r.ok) resolve(r.index);
          else if (--left === 0) resolve(null);
        });
      }
    });
  }

  /** Driver: entries [from, toExclusive) of server `id`'s log, as its storage holds them. */
  async readLog(id: number, from: number, toExclusive: number): Promise<Entry[]> {
    const ask = this.sim.system.ref<StorageMsg>(`n${id}/storage`).ask<Uint8Array>({ type: 'getEntries', from: from as LogIndex, toExclusive: toExclusive as LogIndex });
    return decodeEntries(await this.drive(ask, 1_000));
  }

  /** Client: the lab's checkOneLeader. */
  async checkOneLeaderAsync(): Promise<number> {
    for (let iter = 0; iter < 10; iter++) {
      await this.sleepAsync(450 + this.rng.nextInt(0, 100));
      const byTerm = new Map<number, number[]>();
      for (let id = 1; id <= this.n; id++) {
        if (!this.connected[id]) continue;
        const st = this.getState(id);
        if (st?.isLeader) byTerm.set(st.term, [...(byTerm.get(st.term) ?? []), id]);
      }
      let lastTerm = -1;
      for (const [term, leaders] of byTerm) {
        if (leaders.length > 1) this.fail(`term ${term} has ${leaders.length} (>1) leaders: ${leaders.join(', ')}`);
        if (term > lastTerm) lastTerm = term;
      }
      if (byTerm.size > 0) return byTerm.get(lastTerm)![0];
    }
    this.fail('expected one leader, got none');
  }

  /** Driver: the lab's checkOneLeader: exactly one leader in the newest term among connected servers. */
  checkOneLeader(): Promise<number> { return this.drive(this.checkOneLeaderAsync(), 6_000); }

  /** The lab's checkTerms: every connected server is in the same term; returns it. */
  checkTerms(): number {
    let term = -1;
    for (let id = 1; id <= this.n; id++) {
      if (!this.connected[id]) continue;
      const st = this.getState(id);
      if (st === null) continue;
      if (term === -1) term = st.term;
      else if (term !== st.term) this.fail(`servers disagree on term (${term} vs ${st.term} at server ${id})`);
    }
    return term;
  }

  /** The lab's checkNoLeader: no connected server believes it leads. */
  checkNoLeader(): void {
    for (let id = 1; id <= this.n; id++) {
      if (this.connected[id] && this.getState(id)?.isLeader) this.fail(`expected no leader among connected servers, but ${id} claims to be leader`);
    }
  }

  /**
   * Client: the lab's one(cmd, expectedServers, retry). Offers `cmd` to connected servers in turn
   * until one accepts it as leader; once the write has committed at some index, waits (2 s) for
   * `expectedServers` servers to have applied `cmd` there. With `retry`, tries again for up to 10 s
   * in all; without, the first failed attempt fails. Returns the log index.
   */
  async oneAsync(cmd: number, expectedServers: number, retry: boolean): Promise<number> {
    const t0 = this.now();
    let next = 0;
    while (this.now() - t0 < 10_000) {
      let attempt: Started | null = null;
      for (let k = 0; k < this.n; k++) {
        next = (next + 1) % this.n;
        const id = next + 1;
        if (!this.connected[id]) continue;
        const s = this.start(id, cmd);
        if (s.ok) { attempt = s; break; }
      }
      if (attempt === null) { await this.sleepAsync(50); continue; }
      const t1 = this.now();
      const outcome = await this.within(attempt.outcome, 2_000);
      if (outcome?.ok) {
        for (;;) {
          const { count, cmd: got } = this.nCommitted(outcome.index);
          if (count > 0 && count >= expectedServers && got === cmd) return outcome.index;
          if (this.now() - t1 >= 2_000) break;
          await this.sleepAsync(20);
        }
      }
      if (!retry) this.fail(`one(${cmd}) failed to reach agreement (${outcome === null ? 'no answer in 2 s' : outcome.ok ? `index ${outcome.index} not applied by ${expectedServers}` : outcome.error.name})`);
      if (outcome !== null && !outcome.ok) await this.sleepAsync(50);
    }
    this.fail(`one(${cmd}) failed to reach agreement in 10 s`);
  }

  /** Driver: `oneAsync`. */
  one(cmd: number, expectedServers: number, retry: boolean): Promise<number> {
    return this.drive(this.oneAsync(cmd, expectedServers, retry), 14_000);
  }

  /**
   * Client: the lab's wait(index, n, startTerm): waits (backing off to 1 s, 30 polls) for `n`
   * servers to apply `index`; gives up with -1 as soon as any server's term passes `startTerm`
   * (when startTerm > -1). Fails if fewer than `n` applied it in the end.
   */
  async waitAsync(index: number, n: number, startTerm: number): Promise<Applied | -1> {
    let to = 10;
    for (let iter = 0; iter < 30; iter++) {
      if (this.nCommitted(index).count >= n) break;
      await this.sleepAsync(to);
      if (to < 1_000) to *= 2;
      if (startTerm > -1) {
        for (let id = 1; id <= this.n; id++) {
          const st = this.getState(id);
          if (st !== null && st.term > startTerm) return -1;
        }
      }
    }
    const { count, cmd } = this.nCommitted(index);
    if (count < n) this.fail(`only ${count} decided for index ${index}; wanted ${n}`);
    return cmd!;
  }

  /** Driver: `waitAsync`. */
  wait(index: number, n: number, startTerm: number): Promise<Applied | -1> {
    return this.drive(this.waitAsync(index, n, startTerm), 30_000);
  }

  // ---- end ----

  fail(msg: string): never {
    throw new MitCheckError(`${msg} (seed ${this.seed}, t=${this.now().toFixed(1)} virtual ms)`);
  }

  private rethrowClientError(): void {
    if (this.clientErrors.length > 0) throw this.clientErrors[0];
  }

  /** What every test checks last: no client or applier error, no node failed, within the lab's time limit. */
  end(): void {
    this.rethrowClientError();
    if (this.applyErrors.length > 0) this.fail(`apply error: ${this.applyErrors[0]}`);
    if (this.unexpectedWriteErrors.length > 0) this.fail(`unexpected write error: ${this.unexpectedWriteErrors[0]}`);
    const failures = this.sim.failures();
    if (failures.length > 0) this.fail(`nodes failed on their own: ${failures.map((f) => `${f.id}: ${f.error.name}: ${f.error.message}`).join('; ')}`);
    if (this.now() > TEST_TIME_LIMIT_MS) this.fail(`test took longer than ${TEST_TIME_LIMIT_MS / 1000} virtual seconds`);
  }

  async shutdown(): Promise<void> { await this.sim.shutdown(); }
}

/** Runs one lab scenario on a fresh cluster: the body, then `end()`'s checks; always shuts down. */
export async function runMit(opts: MitOptions, body: (h: MitCluster) => Promise<void>): Promise<void> {
  const h = await MitCluster.create(opts);
  try {
    await body(h);
    h.end();
  } finally {
    await h.shutdown();
  }
}

