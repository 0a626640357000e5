/**
 * A campaign: many chaos runs, one per seed, summed up into one report. Runs in this thread, or
 * on a piscina pool of worker threads (`jobs > 1`), since seeds are independent CPU-bound work.
 * The summary's `violations` name each failing seed with the command that replays it.
 *
 * @example
 * const summary = await runCampaign({ seeds: seedRange(1, 200), nodes: 5 });
 * if (summary.violations.length > 0) console.log(summary.violations[0].replay);
 */
import { Piscina } from 'piscina';
import * as path from 'node:path';
import {
  addReadCounts, addSessionCounts, addSnapshotReport, addTriggerReport, emptyReadCounts, emptySessionCounts, emptySnapshotReport, runChaos,
  type ChaosOptions, type RunReport, type SnapshotReport, type TriggerReport, type ViolationKind,
} from './chaos';
import type { ReadCounts, SessionCounts } from './workload';
import { addMembershipReport, emptyMembershipReport, type MembershipReport } from './membership-nemesis';

export interface CampaignOptions extends Omit<ChaosOptions, 'seed' | 'onSimulation' | 'keepTrace'> {
  readonly seeds: readonly number[];
  /** Worker threads to run seeds on (default 1: this thread). */
  readonly jobs?: number;
  /** Called after every run, in completion order: for progress output. */
  readonly onRun?: (report: RunReport, done: number, total: number) => void;
}

export interface CampaignSummary {
  readonly runs: number;
  readonly passed: number;
  readonly failed: number;
  /** Runs whose history the checker could not decide within its budget: neither pass nor fail. */
  readonly undecided: number;
  readonly steps: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly faults: Record<string, number>;
  readonly invariantChecks: number;
  readonly histories: { readonly checked: number; readonly linearizable: number; readonly illegal: number; readonly unknown: number; readonly operations: number };
  /** Config changes the nemesis proposed over every run, and how they ended (all zero without the membership fault). */
  readonly membership: MembershipReport;
  /** Snapshots over every run: created, transfers begun and installed, chunks, restores, snapshotNow calls. */
  readonly snapshots: SnapshotReport;
  /** Reads by consistency level over every run: answered (checked for linearizability) and failed. */
  readonly reads: ReadCounts;
  /** Runs whose clients used sessions, and their session registrations, retries and retried writes settled. */
  readonly sessions: SessionCounts & { runs: number };
  /** The nemesis's manual triggers (transfer, elect-now, heartbeat-now) and how they ended. */
  readonly triggers: TriggerReport;
  readonly violations: readonly { readonly seed: number; readonly kind: ViolationKind; readonly message: string; readonly replay: string }[];
  readonly undecidedSeeds: readonly number[];
}

/** Seeds `from..to`, inclusive. */
export function seedRange(from: number, to: number): number[] {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) throw new RangeError(`bad seed range ${from}..${to}`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export async function runCampaign(opts: CampaignOptions): Promise<CampaignSummary> {
  const { seeds, jobs = 1, onRun, ...chaos } = opts;
  if (!Array.isArray(seeds) || seeds.length === 0) throw new RangeError('a campaign needs at least one seed');
  if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError(`jobs must be a positive integer, got ${String(jobs)}`);
  const started = Date.now();
  const reports: RunReport[] = [];
  const done = (r: RunReport) => { reports.push(r); onRun?.(r, reports.length, seeds.length); };
  if (jobs === 1) {
    for (const seed of seeds) done(await runChaos({ ...chaos, seed }));
  } else {
    const pool = new Piscina({ filename: path.join(__dirname, 'campaign-worker.js'), maxThreads: jobs, minThreads: jobs });
    try {
      await Promise.all(seeds.map(async (seed) => done(await pool.run({ ...chaos, seed } satisfies ChaosOptions) as RunReport)));
    } finally {
      await pool.destroy();
    }
  }
  return summarize(reports.sort((a, b) => a.seed - b.seed), Date.now() - started);
}

export function summarize(reports: readonly RunReport[], wallMs: number): CampaignSummary {
  const faults: Record<string, number> = {};
  const histories = { checked: 0, linearizable: 0, illegal: 0, unknown: 0, operations: 0 };
  let steps = 0;
  let virtualMs = 0;
  let checks = 0;
  const membership = emptyMembershipReport();
  const snapshots = emptySnapshotReport();
  const reads = emptyReadCounts();
  const sessions = { runs: 0, ...emptySessionCounts() };
  const triggers: TriggerReport = {};
  for (const r of reports) {
    if (r.reads) addReadCounts(reads, r.reads);
    if (r.sessionCounts) addSessionCounts(sessions, r.sessionCounts);
    if (r.sessions) sessions.runs++;
    if (r.triggers) addTriggerReport(triggers, r.triggers);
    if (r.membership) addMembershipReport(membership, r.membership);
    if (r.snapshots) addSnapshotReport(snapshots, r.snapshots);
    steps += r.steps;
    virtualMs += r.virtualMs;
    checks += r.invariantChecks;
    for (const [k, n] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + n;
    if (r.history.verdict !== 'not checked') {
      histories.checked++;
      histories.operations += r.history.ops;
      if (r.history.verdict === 'ok') histories.linearizable++;
      else if (r.history.verdict === 'illegal') histories.illegal++;
      else histories.unknown++;
    }
  }
  const violations = reports.filter((r) => r.violation !== null).map((r) => ({ seed: r.seed, kind: r.violation!.kind, message: r.violation!.message, replay: r.replay }));
  const undecidedSeeds = reports.filter((r) => r.violation === null && r.history.verdict !== 'ok').map((r) => r.seed);
  return {
    runs: reports.length, passed: reports.filter((r) => r.ok).length, failed: violations.length, undecided: undecidedSeeds.length,
    steps, virtualMs, wallMs, faults, invariantChecks: checks, histories, membership, snapshots, reads, sessions, triggers, violations, undecidedSeeds,
  };
}
