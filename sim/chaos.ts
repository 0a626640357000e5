/**
 * One simulated run under faults, as the campaign and the CLI run it:
 * 1. chaos: KV clients run while a nemesis partitions, clogs, crashes and slows nodes, changes the
 *    cluster's membership, and the network loses, duplicates, delays and reorders packets;
 *    invariants are checked every step;
 * 2. heal: faults off, every node back up. The cluster must elect a leader and commit a new write
 *    within `healMs`, settle any membership change, and every member must catch up, or the run
 *    fails for liveness;
 * 3. the clients' history (writes, and reads at every consistency level) is checked for linearizability.
 * A run never throws for a finding: it reports it, with the command that replays it.
 *
 * @example
 * const report = await runChaos({ seed: 42, nodes: 5 });
 * if (!report.ok) console.log(report.violation, report.replay);
 */
import type { NodeId } from '../actors/raft/core/types';
import type { RaftConfig } from '../actors/raft/core/config';
import { SeededRandom } from '../runtime/random';
import { describeMembership, InvariantViolationError } from './invariants';
import { RELIABLE_NETWORK, UNRELIABLE_NETWORK, type NetworkFaults } from './sim-network';
import { Simulation } from './simulation';
import {
  configSettled, defaultMembers, emptyMembershipReport, MEMBERSHIP_CATCH_UP_TIMEOUT_MS, MembershipNemesis, membersOf, type MembershipReport,
} from './membership-nemesis';
import { emptyReadCounts, emptySessionCounts, KvWorkload, type ReadCounts, type ReadLevel, type SessionCounts } from './workload';
import { kvModel } from './linearizability';

/**
 * What the nemesis may do during chaos. Packet faults (loss, duplication, delay, reordering) are
 * `packets`; `membership` proposes config changes on the leader and wipes removed nodes;
 * `snapshot` asks a random node for a snapshot now (RaftNode.snapshotNow), besides the automatic
 * snapshots of the `snapshotEvery` policy. `cut-link` cuts one link both ways (the leader's with a
 * follower, or any two nodes'): partial connectivity. The manual triggers run alongside the other
 * faults: `transfer` hands leadership to a random voter (RaftNode.transferLeadership), `elect-now`
 * starts an election on a node that does not lead (electNow), `heartbeat-now` confirms the leader
 * (heartbeatNow).
 */
export const FAULT_KINDS = [
  'packets', 'partition', 'one-way', 'partial', 'isolate', 'clog', 'crash', 'torn-write', 'slow-disk', 'membership', 'snapshot',
  'cut-link', 'transfer', 'elect-now', 'heartbeat-now',
] as const;

/** Fault kinds that run alongside the others at each nemesis action, rather than being one of them. */
const ALONGSIDE: readonly FaultKind[] = ['packets', 'membership', 'snapshot', 'transfer', 'elect-now', 'heartbeat-now'];

/** Chance per nemesis action of each manual trigger. */
const TRIGGER_PROBABILITY = 0.15;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  readonly seed: number;
  /** Nodes in the simulation (default 5). */
  readonly nodes?: number;
  /** How many of them form the cluster at the start (default: all; with the membership fault, see defaultMembers). */
  readonly members?: number;
  /** Virtual ms of chaos (default 4,000). */
  readonly chaosMs?: number;
  /** Bound on the heal phase: a leader and a committed write within this many virtual ms (default 10,000). */
  readonly healMs?: number;
  readonly clients?: number;
  readonly keys?: number;
  /** Fault kinds the nemesis uses (default: all of FAULT_KINDS). */
  readonly faults?: readonly FaultKind[];
  /** Packet faults during chaos (default UNRELIABLE_NETWORK). */
  readonly packetFaults?: NetworkFaults;
  /** Budget of the linearizability search, wall ms (default 10,000); exhausted means 'unknown', never a pass. */
  readonly checkTimeoutMs?: number;
  /**
   * Snapshot policy: every node snapshots once this many entries were applied since its last
   * snapshot (snapshotLogsSinceLast), keeping `SNAPSHOT_KEEP_ENTRIES` entries behind it, in chunks
   * of `SNAPSHOT_CHUNK_BYTES`, so transfers take several chunks and faults hit them mid-way.
   * 0 turns automatic snapshots off. Default 40. `config` overrides any of the three.
   */
  readonly snapshotEvery?: number;
  readonly config?: Partial<RaftConfig>;
  /**
   * Exactly-once client sessions: the nodes run them and the clients retry writes of unknown
   * outcome with the same serial. Default: on for odd seeds, off for even ones.
   */
  readonly sessions?: boolean;
  /** The levels the clients read at (default: all of READ_LEVELS). */
  readonly readLevels?: readonly ReadLevel[];
  /**
   * Clock drift: every node's clock runs at its own rate, drawn from the seed uniformly in
   * [1 - d, 1 + d] (0, the default: every node keeps virtual time). Lease reads are safe while
   * (1 + d) / (1 - d) <= electionTimeoutMinMs / (electionTimeoutMinMs - leaseClockDriftMarginMs).
   */
  readonly clockDrift?: number;
  /** Turn off invariants a run breaks on purpose (`leaseSafety: false`: drift beyond the lease margin). */
  readonly invariants?: { readonly leaseSafety?: boolean };
  readonly keepTrace?: boolean;
  /** Called with the simulation once it is created, before any fault: attach your own probes here. */
  readonly onSimulation?: (sim: Simulation) => void;
}

export type ViolationKind = 'invariant' | 'linearizability' | 'liveness' | 'node-failure' | 'simulation';

export interface RunReport {
  readonly seed: number;
  readonly nodes: number;
  /** True when nothing was violated (a history the checker could not decide still counts as not ok). */
  readonly ok: boolean;
  readonly steps: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  /** Faults injected, by kind (nemesis actions; packets counted one by one). */
  readonly faults: Record<string, number>;
  readonly invariantChecks: number;
  readonly history: { readonly ops: number; readonly ok: number; readonly fail: number; readonly unknown: number; readonly verdict: 'ok' | 'illegal' | 'unknown' | 'not checked' };
  /** Initial members (ids 1..members). */
  readonly members: number;
  /** Config changes the nemesis proposed, and how they ended. */
  readonly membership: MembershipReport;
  /** Snapshots taken, transferred, installed and restored, and the nemesis's snapshotNow calls. */
  readonly snapshots: SnapshotReport;
  /** Whether the clients used sessions. */
  readonly sessions: boolean;
  /** Reads by level (answered, failed), session registrations and retries. */
  readonly reads: ReadCounts;
  readonly sessionCounts: SessionCounts;
  /** The manual triggers the nemesis pulled (transfer, elect-now, heartbeat-now) and how each ended. */
  readonly triggers: TriggerReport;
  readonly violation: { readonly kind: ViolationKind; readonly message: string; readonly step?: number } | null;
  readonly traceHash: string;
  /** The command that replays this run exactly. */
  readonly replay: string;
}

/** Snapshot counts of a run (and, summed, of a campaign). */
export interface SnapshotReport {
  /** Snapshots of the nodes' own state machines made durable (the policy's and snapshotNow's). */
  created: number;
  /** InstallSnapshot transfers begun on a follower (first chunk stored), completed (installed), and chunks stored. */
  transfers: number;
  installs: number;
  chunks: number;
  /** State machines restored from a snapshot. */
  restores: number;
  /** The nemesis's snapshotNow calls: asked, answered with a snapshot, refused (NotAllowedError), failed otherwise (node stopped, timeout). */
  now: { asked: number; ok: number; refused: number; failed: number };
}

/** Per manual trigger: asked, ok, and failures by error code (LeaderTransferError by its reason). */
export type TriggerReport = Record<string, { asked: number; ok: number; failed: Record<string, number> }>;

export function addTriggerReport(into: TriggerReport, r: TriggerReport): void {
  for (const [k, t] of Object.entries(r)) {
    const a = (into[k] ??= { asked: 0, ok: 0, failed: {} });
    a.asked += t.asked;
    a.ok += t.ok;
    for (const [code, n] of Object.entries(t.failed)) a.failed[code] = (a.failed[code] ?? 0) + n;
  }
}

export function addReadCounts(into: ReadCounts, r: ReadCounts): void {
  for (const k of Object.keys(into) as (keyof ReadCounts)[]) { into[k].ok += r[k].ok; into[k].fail += r[k].fail; }
}

export function addSessionCounts(into: SessionCounts, r: SessionCounts): void {
  into.registered += r.registered;
  into.retries += r.retries;
  into.recovered += r.recovered;
}

export { emptyReadCounts, emptySessionCounts };

export function emptySnapshotReport(): SnapshotReport {
  return { created: 0, transfers: 0, installs: 0, chunks: 0, restores: 0, now: { asked: 0, ok: 0, refused: 0, failed: 0 } };
}

export function addSnapshotReport(into: SnapshotReport, r: SnapshotReport): void {
  into.created += r.created;
  into.transfers += r.transfers;
  into.installs += r.installs;
  into.chunks += r.chunks;
  into.restores += r.restores;
  into.now.asked += r.now.asked;
  into.now.ok += r.now.ok;
  into.now.refused += r.now.refused;
  into.now.failed += r.now.failed;
}

/** Entries kept behind a snapshot, and the chunk size of snapshots, in chaos runs. */
export const SNAPSHOT_KEEP_ENTRIES = 8;
export const SNAPSHOT_CHUNK_BYTES = 64;

const DEFAULTS = { nodes: 5, chaosMs: 4_000, healMs: 10_000, clients: 4, keys: 3, checkTimeoutMs: 10_000, snapshotEvery: 40 };

/** The CLI arguments that reproduce `opts` (defaults left out). */
export function replayCommand(opts: ChaosOptions): string {
  const args = [`--seed ${opts.seed}`, `--nodes ${opts.nodes ?? DEFAULTS.nodes}`];
  if (opts.members !== undefined) args.push(`--members ${opts.members}`);
  if (opts.chaosMs !== undefined && opts.chaosMs !== DEFAULTS.chaosMs) args.push(`--chaos-ms ${opts.chaosMs}`);
  if (opts.healMs !== undefined && opts.healMs !== DEFAULTS.healMs) args.push(`--heal-ms ${opts.healMs}`);
  if (opts.clients !== undefined && opts.clients !== DEFAULTS.clients) args.push(`--clients ${opts.clients}`);
  if (opts.keys !== undefined && opts.keys !== DEFAULTS.keys) args.push(`--keys ${opts.keys}`);
  if (opts.faults !== undefined) args.push(`--faults ${opts.faults.join(',')}`);
  if (opts.snapshotEvery !== undefined && opts.snapshotEvery !== DEFAULTS.snapshotEvery) args.push(`--snapshot-every ${opts.snapshotEvery}`);
  if (opts.sessions !== undefined) args.push(`--sessions ${opts.sessions ? 'on' : 'off'}`);
  if (opts.readLevels !== undefined) args.push(`--read-levels ${opts.readLevels.join(',')}`);
  if (opts.clockDrift !== undefined && opts.clockDrift !== 0) args.push(`--clock-drift ${opts.clockDrift}`);
  return `npm run sim -- ${args.join(' ')} --trace sim-trace-${opts.seed}.txt`;
}

export async function runChaos(opts: ChaosOptions): Promise<RunReport> {
  const started = Date.now();
  const nodes = opts.nodes ?? DEFAULTS.nodes;
  const kinds = new Set<FaultKind>(opts.faults ?? FAULT_KINDS);
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new RangeError(`unknown fault kind '${k}' (known: ${FAULT_KINDS.join(', ')})`);
  const faults: Record<string, number> = {};
  const count = (k: string, n = 1) => { if (n > 0) faults[k] = (faults[k] ?? 0) + n; };
  let violation: RunReport['violation'] = null;
  let verdict: RunReport['history']['verdict'] = 'not checked';
  const members = opts.members ?? (kinds.has('membership') ? defaultMembers(nodes, opts.seed) : nodes);
  const snapshotEvery = opts.snapshotEvery ?? DEFAULTS.snapshotEvery;
  if (!(Number.isSafeInteger(snapshotEvery) && snapshotEvery >= 0)) throw new RangeError(`snapshotEvery must be an integer >= 0, got ${String(snapshotEvery)}`);
  const snapshotConfig: Partial<RaftConfig> = { snapshotLogsSinceLast: snapshotEvery, snapshotKeepEntries: SNAPSHOT_KEEP_ENTRIES, snapshotMaxChunkBytes: SNAPSHOT_CHUNK_BYTES };
  const sessions = opts.sessions ?? opts.seed % 2 === 1;
  const sim = await Simulation.create({
    seed: opts.seed, nodes, members, keepTrace: opts.keepTrace, sessions, clocks: driftingClocks(opts.seed, nodes, opts.clockDrift ?? 0),
    ...(opts.invariants !== undefined ? { invariants: opts.invariants } : {}),
    // A catch-up stalled on a node that is down or cut off gives way after 1 s rather than the
    // default 30 s, so that one change does not hold up every other for the rest of the chaos.
    config: { ...snapshotConfig, ...(kinds.has('membership') ? { catchUpTimeoutMs: MEMBERSHIP_CATCH_UP_TIMEOUT_MS } : {}), ...opts.config },
    disk: { tornWriteProbability: kinds.has('torn-write') ? 0.5 : 0 },
  });
  opts.onSimulation?.(sim);
  const workload = new KvWorkload(sim, { clients: opts.clients ?? DEFAULTS.clients, keys: opts.keys ?? DEFAULTS.keys, ...(opts.readLevels !== undefined ? { readLevels: opts.readLevels } : {}) });
  const nemesis = new Nemesis(sim, kinds, sim.random.fork('nemesis'), count);
  try {
    // ---- chaos ----
    if (kinds.has('packets')) sim.network.faults = opts.packetFaults ?? UNRELIABLE_NETWORK;
    workload.start();
    const chaosEnd = sim.now() + (opts.chaosMs ?? DEFAULTS.chaosMs);
    while (sim.now() < chaosEnd) {
      await nemesis.runFor(Math.min(chaosEnd - sim.now(), 50 + nemesis.random.nextFloat() * 450));
      await nemesis.act();
      checkFailures(sim);
    }
    const s = sim.network.stats;
    count('packet-loss', s.lost);
    count('packet-duplicate', s.duplicated);
    count('packet-reorder', s.reordered);
    count('packet-clogged', s.clogged);
    count('torn-write-crash', sim.stats.tornWrites);
    count('unsynced-bytes-lost', sim.stats.unsyncedBytesLost);

    // ---- heal ----
    sim.trace('heal');
    sim.network.faults = RELIABLE_NETWORK;
    await nemesis.healAll();
    const healMs = opts.healMs ?? DEFAULTS.healMs;
    const landed = await sim.settle(workload.probe(healMs), healMs + 5_000);
    if (!landed) {
      violation = { kind: 'liveness', message: `no write committed within ${healMs} virtual ms after healing; nodes: ${describeNodes(sim)}`, step: sim.stats.steps };
    }
    await workload.stop();
    checkFailures(sim);
    if (violation === null && kinds.has('membership')) {
      // A change still under way finishes (or is abandoned) once the cluster is healthy: no leader
      // may be left in a joint config, or holding a config it has not committed.
      try {
        await sim.runUntil(() => configSettled(sim), { timeoutMs: healMs, what: 'a settled config' });
      } catch {
        violation = { kind: 'liveness', message: `the membership did not settle within ${healMs} virtual ms after healing; nodes: ${describeNodes(sim)}`, step: sim.stats.steps };
      }
    }
    if (violation === null) {
      // Every member of the leader's config (voters and learners; removed nodes are no longer
      // replicated to) catches up with its commit index; state hashes are compared on the way.
      const leader = sim.leader();
      const status = leader === null ? null : sim.inspect(leader)!.status;
      const target = status === null ? 0 : status.commitIndex;
      const catchUp = status === null ? sim.ids : membersOf(status.membership);
      // A snapshot chunk lost in the chaos is noticed at the next answered heartbeat (the stream's
      // chunkPresumedLost), so catching up needs no more time than the heal phase.
      await sim.runUntil(() => catchUp.every((id) => (sim.inspect(id)?.status.lastApplied ?? 0) >= target), { timeoutMs: healMs, what: `every member (${catchUp.join(',')}) applying index ${target}` });
      // ---- linearizability ----
      const check = workload.check({ timeoutMs: opts.checkTimeoutMs ?? DEFAULTS.checkTimeoutMs });
      verdict = check.verdict;
      if (check.verdict === 'illegal') {
        violation = { kind: 'linearizability', message: `the clients' history is not linearizable: ${describeIllegal(check)}` };
      }
    }
  } catch (err) {
    if (err instanceof InvariantViolationError) violation = { kind: 'invariant', message: err.message, step: err.step };
    else if (err instanceof NodeFailure) violation = { kind: 'node-failure', message: err.message, step: sim.stats.steps };
    else violation = { kind: 'simulation', message: `${(err as Error).name}: ${(err as Error).message}`, step: sim.stats.steps };
  } finally {
    nemesis.membership?.close();
    await sim.shutdown().catch(() => undefined);
  }
  const w = workload.stats;
  return {
    seed: opts.seed, nodes, ok: violation === null && verdict === 'ok', steps: sim.stats.steps, virtualMs: Math.round(sim.now()),
    wallMs: Date.now() - started, faults, invariantChecks: sim.checker.checks,
    history: { ops: workload.history().length, ok: w.ok, fail: w.fail, unknown: w.unknown, verdict },
    members, membership: nemesis.membership?.report ?? emptyMembershipReport(),
    snapshots: {
      created: sim.stats.snapshotsCreated, transfers: sim.stats.snapshotTransfers, installs: sim.stats.snapshotInstalls,
      chunks: sim.stats.snapshotChunks, restores: sim.stats.snapshotRestores, now: nemesis.snapshotNow,
    },
    sessions, reads: w.reads, sessionCounts: w.sessions, triggers: nemesis.triggers,
    violation, traceHash: sim.traceHash(), replay: replayCommand(opts),
  };
}

class NodeFailure extends Error {}

/**
 * Per node, a clock rate drawn from the seed uniformly in [1 - drift, 1 + drift] (none when drift
 * is 0). Drawn from a stream of its own, so the rest of the run draws what it always drew.
 */
export function driftingClocks(seed: number, nodes: number, drift: number): Record<number, { rate: number }> | undefined {
  if (!(typeof drift === 'number' && drift >= 0 && drift < 1)) throw new RangeError(`clockDrift must be a number in [0, 1), got ${String(drift)}`);
  if (drift === 0) return undefined;
  const random = new SeededRandom(seed).fork('clocks');
  const out: Record<number, { rate: number }> = {};
  for (let id = 1; id <= nodes; id++) out[id] = { rate: 1 - drift + 2 * drift * random.nextFloat() };
  return out;
}

/** One line per node: role, term, vote, last log index, commit and applied. */
export function describeNodes(sim: Simulation): string {
  return sim.ids.map((id) => {
    const s = sim.inspect(id)?.status;
    if (!s) return `n${id} down`;
    const config = s.membershipIndex > 0 ? ` config@${s.membershipIndex}=${describeMembership(s.membership)}${s.configChange ? ` change=${s.configChange.phase}` : ''}` : '';
    return `n${id} ${s.role} t${s.currentTerm} v${String(s.votedFor)} last=${s.lastLogIndex} commit=${s.commitIndex} applied=${s.lastApplied}${config}`;
  }).join('; ');
}

function checkFailures(sim: Simulation): void {
  const f = sim.failures();
  if (f.length > 0) throw new NodeFailure(`node ${f[0].id} failed on its own: ${f[0].error.name}: ${f[0].error.message}`);
}

function describeIllegal(check: ReturnType<KvWorkload['check']>): string {
  const bad = check.partitions.find((p) => p.verdict === 'illegal');
  if (!bad) return 'see the history';
  const ops = (bad.longestLinearization ?? []).map((o) => kvModel.describe(o.input, o.output));
  return `partition ${bad.index} (${bad.operations} operations); longest linearizable prefix: ${ops.slice(-12).join(', ')}`;
}

/** Picks and undoes faults during chaos. At most a minority of nodes is down at once. */
class Nemesis {
  /** The membership fault's own nemesis (null without it). */
  readonly membership: MembershipNemesis | null;
  private readonly restartAt = new Map<NodeId, number>();
  private readonly slowUntil = new Map<NodeId, number>();
  /** A node to crash at the next action, while its slowed disk holds unsynced writes. */
  private tearNext: NodeId | null = null;
  /** The snapshotNow calls of the `snapshot` fault and how they ended. */
  readonly snapshotNow = { asked: 0, ok: 0, refused: 0, failed: 0 };
  /** The manual triggers pulled and how they ended. */
  readonly triggers: TriggerReport = {};

  constructor(private readonly sim: Simulation, private readonly kinds: Set<FaultKind>, readonly random: SeededRandom,
    private readonly count: (k: string, n?: number) => void) {
    const strikes: ('crash' | 'isolate')[] = [];
    if (kinds.has('crash')) strikes.push('crash');
    if (kinds.has('isolate') || kinds.has('partition')) strikes.push('isolate');
    this.membership = kinds.has('membership') ? new MembershipNemesis(sim, random, strikes, {
      restartAt: (id, at) => this.restartAt.set(id, at),
      crashVictim: () => this.crashVictim(),
      count: (k) => this.count(k),
    }) : null;
  }

  /** Runs the simulation for `ms` of virtual time (carrying out the membership nemesis's strikes). */
  async runFor(ms: number): Promise<void> {
    if (this.membership !== null) await this.membership.runFor(ms);
    else await this.sim.runFor(ms);
  }

  async act(): Promise<void> {
    const sim = this.sim;
    for (const [id, at] of [...this.restartAt]) {
      if (sim.now() >= at) { this.restartAt.delete(id); await sim.restart(id); }
    }
    for (const [id, until] of [...this.slowUntil]) {
      if (sim.now() >= until) { this.slowUntil.delete(id); sim.disk(id).slowFactor = 1; }
    }
    if (this.tearNext !== null) {
      // The victim's disk has been slow since the last action, so its writes queue unsynced: a crash now tears them.
      const victim = this.tearNext;
      this.tearNext = null;
      if (sim.isUp(victim)) {
        await sim.crash(victim);
        sim.disk(victim).slowFactor = 1;
        this.restartAt.set(victim, sim.now() + 100 + this.random.nextFloat() * 1_000);
      }
    }
    // Membership changes run alongside the other faults: at 4 in 10 actions, a change (or a wipe).
    if (this.membership !== null && this.random.nextFloat() < 0.4) {
      sim.trace('nemesis membership');
      if (await this.membership.act()) this.count('membership');
    }
    // Snapshots on demand run alongside the other faults too: at 1 in 5 actions, on a random running node.
    if (this.kinds.has('snapshot') && this.random.nextFloat() < 0.2) this.askSnapshot();
    // The manual triggers too, each at TRIGGER_PROBABILITY (a draw only when the kind is on, so
    // runs without them draw what they always drew).
    for (const t of ['transfer', 'elect-now', 'heartbeat-now'] as const) {
      if (this.kinds.has(t) && this.random.nextFloat() < TRIGGER_PROBABILITY) this.pull(t);
    }
    const actions = [...this.kinds].filter((k) => !ALONGSIDE.includes(k));
    if (actions.length === 0 || this.random.nextFloat() < 0.25) return;
    // Often heal what the network holds first, so partitions come and go rather than pile up.
    if (this.random.nextFloat() < 0.5) { sim.network.heal(); sim.trace('nemesis heal-network'); }
    const kind = actions[this.random.nextInt(0, actions.length)];
    const ids = sim.ids;
    if (ids.length < 2 && kind !== 'crash' && kind !== 'slow-disk') return; // no links to break
    const pick = (): NodeId => ids[this.random.nextInt(0, ids.length)];
    sim.trace(`nemesis ${kind}`);
    switch (kind) {
      case 'partition': {
        const shuffled = this.shuffle(ids);
        const cut = this.random.nextInt(1, ids.length);
        sim.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)], ids);
        break;
      }
      case 'one-way': {
        const [a, b] = this.twoDistinct();
        sim.network.cut(a, b);
        break;
      }
      case 'partial': {
        // A bridge: two sides that reach only the bridge node, which reaches both.
        const shuffled = this.shuffle(ids);
        const bridge = shuffled[0];
        const rest = shuffled.slice(1);
        const half = Math.ceil(rest.length / 2);
        sim.network.partition([rest.slice(0, half), rest.slice(half)], ids);
        sim.network.reconnect(bridge, ids);
        break;
      }
      case 'isolate':
        sim.network.isolate(pick(), ids);
        break;
      case 'cut-link': {
        // Partial connectivity: one link cut both ways, the leader's with a follower half the time.
        const leader = sim.leader();
        let [a, b] = this.twoDistinct();
        if (leader !== null && this.random.nextFloat() < 0.5) { a = leader; b = this.otherThan(leader); }
        sim.network.cut(a, b);
        sim.network.cut(b, a);
        sim.trace(`nemesis cut-link ${a}<>${b}`);
        break;
      }
      case 'clog': {
        const [a, b] = this.twoDistinct();
        sim.network.clog(a, b);
        sim.network.clog(b, a);
        break;
      }
      case 'crash': {
        const victim = this.crashVictim();
        if (victim === null) return;
        await sim.crash(victim);
        this.restartAt.set(victim, sim.now() + 100 + this.random.nextFloat() * 1_500);
        break;
      }
      case 'torn-write': {
        this.tearNext = this.crashVictim();
        if (this.tearNext === null) return;
        sim.disk(this.tearNext).slowFactor = 100;
        break;
      }
      case 'slow-disk': {
        const id = pick();
        sim.disk(id).slowFactor = 20 + this.random.nextInt(0, 80);
        this.slowUntil.set(id, sim.now() + 200 + this.random.nextFloat() * 1_000);
        break;
      }
      default:
        return;
    }
    this.count(kind);
  }

  /**
   * RaftNode.snapshotNow on a random running node, not awaited: its outcome is counted when it
   * arrives. A refusal (nothing applied yet, a leader's snapshot being installed) is expected.
   */
  private askSnapshot(): void {
    const up = this.sim.upNodes();
    if (up.length === 0) return;
    const id = up[this.random.nextInt(0, up.length)];
    this.sim.trace(`nemesis snapshot-now ${id}`);
    this.count('snapshot-now');
    this.snapshotNow.asked++;
    this.sim.node(id).snapshotNow({ timeoutMs: 5_000 }).then(
      () => { this.snapshotNow.ok++; },
      (err: Error) => { if ((err as { code?: string }).code === 'NotAllowed') this.snapshotNow.refused++; else this.snapshotNow.failed++; },
    );
  }

  /**
   * A manual trigger, not awaited: its outcome is counted when it arrives. `transfer`: the leader
   * of the highest term hands leadership to a random voter of its latest config (not itself);
   * `elect-now`: a running node that does not lead starts an election (a pre-vote round first;
   * NotAllowed on a non-voter); `heartbeat-now`: the leader confirms its leadership with a quorum.
   */
  private pull(kind: 'transfer' | 'elect-now' | 'heartbeat-now'): void {
    const sim = this.sim;
    const t = (this.triggers[kind] ??= { asked: 0, ok: 0, failed: {} });
    const leader = sim.leader();
    let call: Promise<unknown>;
    if (kind === 'elect-now') {
      const pool = sim.upNodes().filter((id) => id !== leader);
      if (pool.length === 0) return;
      const id = pool[this.random.nextInt(0, pool.length)];
      sim.trace(`nemesis elect-now ${id}`);
      call = sim.node(id).electNow();
    } else {
      if (leader === null) return;
      if (kind === 'heartbeat-now') {
        sim.trace(`nemesis heartbeat-now ${leader}`);
        call = sim.node(leader).heartbeatNow({ timeoutMs: 1_000 });
      } else {
        const m = sim.inspect(leader)!.status.membership;
        const voters = (m.membersAfterConsensus ?? m.members).filter((v) => v !== leader);
        if (voters.length === 0) return;
        const to = voters[this.random.nextInt(0, voters.length)];
        sim.trace(`nemesis transfer ${leader}->${to}`);
        call = sim.node(leader).transferLeadership(to, { timeoutMs: 1_000 });
      }
    }
    this.count(kind);
    t.asked++;
    call.then(
      () => { t.ok++; },
      (err: Error & { code?: string; reason?: string }) => {
        const code = `${err.code ?? err.name}${err.code === 'LeaderTransfer' ? `:${err.reason}` : ''}`;
        t.failed[code] = (t.failed[code] ?? 0) + 1;
      },
    );
  }

  /** Everything back to normal: links, clogs, disks, and every crashed node restarted. */
  async healAll(): Promise<void> {
    const sim = this.sim;
    this.membership?.disarm();
    sim.network.heal();
    for (const id of sim.ids) sim.disk(id).slowFactor = 1;
    this.slowUntil.clear();
    this.restartAt.clear();
    this.tearNext = null;
    for (const id of sim.ids) if (!sim.isUp(id)) await sim.restart(id);
  }

  /** A running node to crash, unless a minority is already down (then null). */
  private crashVictim(): NodeId | null {
    const up = this.sim.upNodes();
    if (this.sim.ids.length - up.length >= Math.floor((this.sim.ids.length - 1) / 2) || up.length === 0) return null;
    return up[this.random.nextInt(0, up.length)];
  }

  private twoDistinct(): [NodeId, NodeId] {
    const ids = this.sim.ids;
    const a = this.random.nextInt(0, ids.length);
    const b = (a + this.random.nextInt(1, ids.length)) % ids.length;
    return [ids[a], ids[b]];
  }

  private otherThan(id: NodeId): NodeId {
    const others = this.sim.ids.filter((o) => o !== id);
    return others[this.random.nextInt(0, others.length)];
  }

  private shuffle(ids: readonly NodeId[]): NodeId[] {
    const out = [...ids];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.random.nextInt(0, i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
