/**
 * Scenarios of the Raft extensions (issue 7) on the simulator, shared by test/sim/extensions.test.ts
 * and by searches over seeds (`npx ts-node --transpile-only test/sim/scenarios.ts search-lease 1 200`).
 *
 * The lease-under-skew scenario: node 1 leads a 3-node cluster on a clock that runs at `leaderRate`
 * of virtual time, its followers at `followerRate`. A client reads key `k` from node 1 every few ms at
 * `level`, another appends to `k` through whichever node leads the highest term. Then node 1 is cut
 * off from both followers. They elect a leader once their election timeout runs out on their clock,
 * and commit appends; node 1 still believes its lease valid until it runs out on its clock. When the
 * followers' clocks run fast enough relative to the leader's (beyond leaseClockDriftMarginMs), node 1
 * serves lease reads that miss those appends: the history is not linearizable.
 */
import type { NodeId } from '../../actors/raft/core/types';
import type { ReadConsistencyLevel } from '../../actors/node';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { checkOperations, kvModel, UNKNOWN, type KvInput, type KvOutput, type Operation, type Verdict } from '../../sim/linearizability';
import { InvariantViolationError, Simulation } from '../../sim/simulation';

export interface LeaseSkewOptions {
  readonly seed: number;
  /** Rate of node 1's clock (the leader's), and of nodes 2 and 3, against virtual time. */
  readonly leaderRate: number;
  readonly followerRate: number;
  /** leaseClockDriftMarginMs (default: the library's, 50). */
  readonly marginMs?: number;
  readonly level: Exclude<ReadConsistencyLevel, 'stale'>;
  /** Keep the simulator's lease-safety invariant on (default true); off shows what the checker sees. */
  readonly leaseSafety?: boolean;
}

export interface LeaseSkewResult {
  /** The linearizability verdict on reads and appends (null when an invariant stopped the run). */
  readonly verdict: Verdict | null;
  /** The invariant violation that stopped the run, if any. */
  readonly violation: InvariantViolationError | null;
  readonly reads: number;
  readonly writes: number;
  /** Reads node 1 answered after it was cut off. */
  readonly readsAfterCut: number;
  /** Terms of the leaders seen: node 1's first, then the new one's. */
  readonly terms: number[];
}

/** Runs the lease-under-skew scenario once (about 2 s of virtual time). */
export async function leaseSkewRun(o: LeaseSkewOptions): Promise<LeaseSkewResult> {
  const sim = await Simulation.create({
    seed: o.seed, nodes: 3,
    clocks: { 1: { rate: o.leaderRate }, 2: { rate: o.followerRate }, 3: { rate: o.followerRate } },
    ...(o.marginMs !== undefined ? { config: { leaseClockDriftMarginMs: o.marginMs } } : {}),
    invariants: { leaseSafety: o.leaseSafety ?? true },
  });
  const ops: Operation<KvInput, KvOutput>[] = [];
  const terms: number[] = [];
  let reads = 0;
  let writes = 0;
  let readsAfterCut = 0;
  let cut = false;
  let running = true;
  let violation: InvariantViolationError | null = null;
  const random = sim.random.fork('scenario');
  const loops: Promise<void>[] = [];
  try {
    // Node 1 leads: it asks for an election before any timer of the others runs out.
    await sim.settle(sim.node(1).electNow());
    await sim.runUntil(() => sim.leader() === 1 && (sim.inspect(1)?.status.leaseUntilMs ?? null) !== null, { timeoutMs: 2_000, what: 'node 1 leading with a lease' });
    terms.push(sim.inspect(1)!.status.currentTerm);
    // Two writers, each giving up on a write after 100 ms: one stuck on node 1 once it is cut off
    // must not keep the appends from the new leader.
    for (const w of [0, 1]) loops.push((async () => {
      let n = 0;
      while (running) {
        await sim.sleep(5 + random.nextFloat() * 15);
        if (!running) return;
        const leader = sim.leader();
        if (leader === null) continue;
        const value = `w${w}.${++n}.`;
        const call = sim.nextEventSeq();
        try {
          await sim.node(leader).clientWrite(encodeKv({ op: 'append', key: 'k', value }), { responseMode: 'applied', timeoutMs: 100 });
          ops.push({ clientId: w, input: { op: 'append', key: 'k', value }, call, output: undefined, return: sim.nextEventSeq() });
          writes++;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== 'ForwardToLeader' && code !== 'ProposalDropped' && code !== 'NodeDown') {
            ops.push({ clientId: w, input: { op: 'append', key: 'k', value }, call, output: UNKNOWN, return: Infinity });
          }
        }
      }
    })());
    loops.push((async () => {
      while (running) {
        await sim.sleep(2 + random.nextFloat() * 4);
        if (!running) return;
        const call = sim.nextEventSeq();
        const after = cut;
        try {
          const v = await sim.node(1).clientRead<string | null>({ q: 'get', key: 'k' }, { consistency: o.level, timeoutMs: 400 });
          ops.push({ clientId: 2, input: { op: 'get', key: 'k' }, call, output: v ?? '', return: sim.nextEventSeq() });
          reads++;
          if (after) readsAfterCut++;
        } catch { /* a read that fails changed nothing */ }
      }
    })());
    await sim.runFor(200 + random.nextFloat() * 300);
    sim.trace('scenario cut 1');
    sim.network.partition([[1 as NodeId], [2 as NodeId, 3 as NodeId]], sim.ids);
    cut = true;
    await sim.runUntil(() => { const l = sim.leader(); return l !== null && l !== 1; }, { timeoutMs: 3_000, what: 'a new leader' });
    terms.push(sim.inspect(sim.leader()!)!.status.currentTerm);
    await sim.runFor(800);
    running = false;
    await sim.settle(Promise.all(loops), 2_000);
  } catch (err) {
    if (!(err instanceof InvariantViolationError)) throw err;
    violation = err;
  } finally {
    running = false;
    await sim.shutdown();
  }
  const verdict = violation === null ? checkOperations(kvModel, ops, { timeoutMs: 10_000 }).verdict : null;
  return { verdict, violation, reads, writes, readsAfterCut, terms };
}

/** Prints the verdict of the lease-under-skew run of each seed in `from..to`. */
async function searchLease(from: number, to: number, o: Omit<LeaseSkewOptions, 'seed'>): Promise<void> {
  const verdicts: Record<string, number> = {};
  for (let seed = from; seed <= to; seed++) {
    const r = await leaseSkewRun({ ...o, seed });
    const v = r.violation !== null ? `violation(${r.violation.invariant})` : String(r.verdict);
    verdicts[v] = (verdicts[v] ?? 0) + 1;
    process.stdout.write(`seed ${seed}: ${v} reads=${r.reads} afterCut=${r.readsAfterCut} writes=${r.writes} terms=${r.terms.join('->')}\n`);
  }
  process.stdout.write(`${JSON.stringify(verdicts)}\n`);
}

if (require.main === module) {
  // search-lease <from> <to> [leaderRate 0.5] [followerRate 1] [marginMs 0] [level lease] [leaseSafety off]
  const [cmd, a, b, lr, fr, margin, level, safety] = process.argv.slice(2);
  if (cmd !== 'search-lease') throw new Error('usage: scenarios.ts search-lease <from> <to> [leaderRate] [followerRate] [marginMs] [level] [on|off]');
  searchLease(Number(a), Number(b), {
    leaderRate: Number(lr ?? 0.5), followerRate: Number(fr ?? 1), marginMs: Number(margin ?? 0),
    level: (level ?? 'lease') as LeaseSkewOptions['level'], leaseSafety: safety === 'on',
  }).catch((err: Error) => { process.stderr.write(`${err.stack ?? err.message}\n`); process.exitCode = 1; });
}
