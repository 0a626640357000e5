/**
 * The membership fault of a chaos run (sim/chaos.ts): a nemesis that acts as an operator would,
 * through the leader of the highest term. It proposes config changes (and counts how each ends),
 * wipes nodes that a committed config has removed so they can be added back pristine, and aims
 * crashes or isolations of the leader at the joint and final phases of its changes ("strikes").
 *
 * @example
 * const m = new MembershipNemesis(sim, random, ['crash', 'isolate'], hooks);
 * await m.runFor(300);          // steps, carrying out an armed strike at its moment
 * await m.act();                // one proposal or wipe
 * m.close();                    // what is still open counts as unknown
 * console.log(m.report.committed);
 */
import type { Membership, NodeId } from '../actors/raft/core/types';
import type { SeededRandom } from '../runtime/random';
import { describeMembership } from './invariants';
import type { Simulation, SimConfigChange } from './simulation';

/** The kinds of change the membership nemesis proposes. */
export const MEMBERSHIP_CHANGE_KINDS = ['add', 'remove', 'replace-leader', 'swap', 'add-learner', 'remove-learner', 'promote', 'demote', 'noop'] as const;
export type MembershipChangeKind = (typeof MEMBERSHIP_CHANGE_KINDS)[number];

/** Error codes that mean the change was refused at once, with nothing appended. */
const REFUSALS = ['NodeNotLeader', 'ConfigChangeInProgress', 'Noop', 'InoperableConfig', 'MalformedMessage', 'NodeDown'];

/** catchUpTimeoutMs of runs with the membership fault (unless their `config` sets it). */
export const MEMBERSHIP_CATCH_UP_TIMEOUT_MS = 1_000;

/** Outcomes of the config changes a run proposed. proposed = committed + aborted + refused + unknown. */
export interface MembershipReport {
  proposed: number;
  /** The final config committed (the proposer heard so). */
  committed: number;
  /** ConfigChangeAbortedError: leadership lost or catch-up timed out (`aborts` by reason). */
  aborted: number;
  /** Refused at once, nothing appended (`refusals` by error code: NodeNotLeader, ConfigChangeInProgress, Noop, ...). */
  refused: number;
  /** No answer by the end of the run, the node stopped, or the ask timed out. */
  unknown: number;
  /** Removed nodes given a fresh disk and state machine. */
  wiped: number;
  /** Per kind of change: how many were proposed and how they ended. */
  kinds: Record<string, { proposed: number; committed: number; aborted: number; refused: number; unknown: number }>;
  refusals: Record<string, number>;
  aborts: Record<string, number>;
}

export function emptyMembershipReport(): MembershipReport {
  return { proposed: 0, committed: 0, aborted: 0, refused: 0, unknown: 0, wiped: 0, kinds: {}, refusals: {}, aborts: {} };
}

/** Adds `b` into `a` (for campaign totals). */
export function addMembershipReport(a: MembershipReport, b: MembershipReport): void {
  for (const k of ['proposed', 'committed', 'aborted', 'refused', 'unknown', 'wiped'] as const) a[k] += b[k];
  for (const [kind, c] of Object.entries(b.kinds)) {
    const t = (a.kinds[kind] ??= { proposed: 0, committed: 0, aborted: 0, refused: 0, unknown: 0 });
    for (const k of ['proposed', 'committed', 'aborted', 'refused', 'unknown'] as const) t[k] += c[k];
  }
  for (const [k, n] of Object.entries(b.refusals)) a.refusals[k] = (a.refusals[k] ?? 0) + n;
  for (const [k, n] of Object.entries(b.aborts)) a.aborts[k] = (a.aborts[k] ?? 0) + n;
}

/**
 * How many nodes form the cluster at the start of a run with the membership fault: the seed picks
 * how many start as spares (pristine nodes the nemesis may add), seed % 3 of them, at most
 * nodes - 1. So a 5-node campaign starts a third of its runs with 5 members, a third with 4 and a
 * third with 3 (and 2 spares).
 * @example defaultMembers(5, 17) // 3
 */
export function defaultMembers(nodes: number, seed: number): number {
  return nodes - Math.min(seed % 3, nodes - 1);
}

/** Every node of a config: voters (both halves while joint) and learners. */
export function membersOf(m: Membership): NodeId[] {
  return [...new Set([...m.members, ...(m.membersAfterConsensus ?? []), ...m.nonVoters])];
}

/** The leader has no change under way, and its latest config is uniform and committed. */
export function configSettled(sim: Simulation): boolean {
  const l = sim.leader();
  const s = l === null ? null : sim.inspect(l)?.status;
  return s !== null && s !== undefined && s.configChange === null && s.membership.membersAfterConsensus === null && s.membershipIndex <= s.commitIndex;
}

/** What the membership nemesis borrows from the chaos nemesis it runs in. */
export interface MembershipNemesisHooks {
  /** Restart node `id` (down now) at virtual time `at`. */
  restartAt(id: NodeId, at: number): void;
  /** A node that may be crashed now, or null when a minority is down already. */
  crashVictim(): NodeId | null;
  /** Counts a fault of kind `kind` in the run's report. */
  count(kind: string): void;
}

/**
 * A crash or isolation of the leader aimed at one phase of its config change: `delaySteps` steps
 * after the phase begins (0: the step the joint or final entry is appended, before anyone has it;
 * later: once some followers may have it). Seed 000's rare case is the final config replicated
 * to a minority when its leader dies.
 */
interface Strike {
  readonly leader: NodeId;
  readonly phase: 'joint' | 'uniform';
  readonly delaySteps: number;
  readonly action: 'crash' | 'isolate';
  /** Virtual time after which the strike is dropped if its phase has not come. */
  readonly disarmAt: number;
  seenAtStep: number | null;
}

export class MembershipNemesis {
  readonly report = emptyMembershipReport();
  /** Outcomes are counted until the run ends; what is still open then is unknown. */
  private open = true;
  private strike: Strike | null = null;

  /** @param strikes how strikes may hit the leader (none: no strikes). */
  constructor(private readonly sim: Simulation, private readonly random: SeededRandom,
    private readonly strikes: readonly Strike['action'][], private readonly hooks: MembershipNemesisHooks) {}

  /**
   * Runs the simulation for `ms` of virtual time, like Simulation.runFor, carrying out an armed
   * strike at its moment (checked after every step).
   */
  async runFor(ms: number): Promise<void> {
    const sim = this.sim;
    const until = sim.now() + ms;
    for (;;) {
      if (this.strike !== null && this.strikeDue(this.strike)) await this.carryOutStrike(this.strike);
      if (!(await sim.step(until))) break;
    }
    await sim.runFor(Math.max(0, until - sim.now()));
  }

  /**
   * One membership action: propose a change on the leader (add one or two pristine or removed
   * nodes, remove one or two voters, replace the leader, swap voters for new nodes, add, promote,
   * demote or remove a learner), or wipe a node that a committed config has removed (it comes back
   * pristine and may be added again later). It never asks for a config the library refuses as
   * inoperable on purpose (no voter left, or two or more voters shrunk to one); every other
   * refusal is counted. False when there was nothing to do (no leader known).
   */
  async act(): Promise<boolean> {
    const sim = this.sim;
    const leader = sim.leader();
    const s = leader === null ? null : sim.inspect(leader)?.status;
    if (leader === null || !s) return false;
    const m = s.membership;
    const idle = s.configChange === null && m.membersAfterConsensus === null;
    const known = new Set(membersOf(m));
    const outsiders = sim.ids.filter((id) => !known.has(id));
    // An operator decommissions a node only once its removal is committed and nothing is under way.
    const removed = idle && s.membershipIndex <= s.commitIndex ? outsiders : [];
    if (removed.length > 0 && this.random.nextFloat() < 0.2) {
      const victim = removed[this.random.nextInt(0, removed.length)];
      sim.trace(`nemesis wipe ${victim} (not in ${describeMembership(m)}, committed at ${s.membershipIndex})`);
      await sim.wipe(victim);
      this.report.wiped++;
      this.hooks.restartAt(victim, sim.now() + 50 + this.random.nextFloat() * 500);
      return true;
    }
    const options = this.changeOptions(m, leader, outsiders, idle);
    const [kind, change] = options[this.random.nextInt(0, options.length)];
    // Now and then ask a node that is not the leader: it must refuse with NodeNotLeaderError.
    const up = sim.upNodes().filter((id) => id !== leader);
    const target = up.length > 0 && this.random.nextFloat() < 0.1 ? up[this.random.nextInt(0, up.length)] : leader;
    this.propose(target, kind, change);
    // Sometimes aim a crash or an isolation of the leader at the joint or final phase of a change of voters.
    if (target === leader && idle && ['add', 'remove', 'replace-leader', 'swap', 'promote', 'demote'].includes(kind) && this.strikes.length > 0 && this.random.nextFloat() < 0.35) {
      const phase = this.random.nextFloat() < 0.5 ? 'joint' : 'uniform';
      const delaySteps = this.random.nextFloat() < 0.3 ? 0 : this.random.nextInt(1, 60);
      this.strike = { leader, phase, delaySteps, action: this.strikes[this.random.nextInt(0, this.strikes.length)], disarmAt: sim.now() + 2_000, seenAtStep: null };
      sim.trace(`nemesis arm ${this.strike.action} ${leader} at ${phase}+${delaySteps}`);
    }
    return true;
  }

  /** Drops an armed strike (the heal phase begins). */
  disarm(): void { this.strike = null; }

  /** The run is over: changes still open count as unknown, and later answers are ignored. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    const r = this.report;
    for (const k of Object.values(r.kinds)) k.unknown = k.proposed - k.committed - k.aborted - k.refused;
    r.unknown = r.proposed - r.committed - r.aborted - r.refused;
  }

  /**
   * The changes that make sense against the leader's config `m`. While a change is under way only
   * additions are offered: they are refused as in progress, and whatever config they end up
   * planned against, they can never leave it inoperable.
   */
  private changeOptions(m: Membership, leader: NodeId, outsiders: readonly NodeId[], idle: boolean): [MembershipChangeKind, SimConfigChange][] {
    const pick = <T>(xs: readonly T[]): T => xs[this.random.nextInt(0, xs.length)];
    /** One or two distinct elements of `xs` (at most `max`, at least one). */
    const some = (xs: readonly NodeId[], max = 2): NodeId[] => {
      const n = Math.min(xs.length, max, 1 + this.random.nextInt(0, 2));
      return shuffle(this.random, xs).slice(0, Math.max(1, n));
    };
    const voters = m.members;
    const learners = m.nonVoters;
    const others = voters.filter((id) => id !== leader);
    const out: [MembershipChangeKind, SimConfigChange][] = [];
    if (outsiders.length > 0) {
      out.push(['add', { add: some(outsiders) }]);
      out.push(['add-learner', { addNonVoters: [pick(outsiders)] }]);
    }
    if (idle) {
      // Shrinking never goes below two voters: from two or more to one is inoperable.
      if (voters.length >= 3) {
        out.push(['remove', { remove: some(voters, voters.length - 2) }]);
        out.push(['demote', { addNonVoters: [pick(voters)] }]);
      }
      if (outsiders.length > 0 && voters.includes(leader)) out.push(['replace-leader', { add: [pick(outsiders)], remove: [leader] }]);
      // Most of the voters at once: old and new majorities barely overlap. Never fewer voters than before.
      if (outsiders.length > 0 && others.length > 0) {
        const add = some(outsiders);
        out.push(['swap', { add, remove: some(others, Math.min(add.length, voters.length - 1)) }]);
      }
      if (learners.length > 0) {
        out.push(['remove-learner', { remove: [pick(learners)] }]);
        out.push(['promote', { add: [pick(learners)] }]);
      }
    }
    // Adding a voter that already votes changes nothing: NoopConfigChangeError (or in progress).
    out.push(['noop', { add: [pick(voters)] }]);
    return out;
  }

  /** Proposes `change` on `target` without waiting; its outcome is counted when it arrives. */
  private propose(target: NodeId, kind: MembershipChangeKind, change: SimConfigChange): void {
    const sim = this.sim;
    const r = this.report;
    const k = (r.kinds[kind] ??= { proposed: 0, committed: 0, aborted: 0, refused: 0, unknown: 0 });
    r.proposed++;
    k.proposed++;
    const desc = `${kind} ${JSON.stringify(change)} on n${target}`;
    sim.trace(`nemesis membership ${desc}`);
    let p: Promise<unknown>;
    try {
      p = sim.node(target).proposeConfigChange(change, { timeoutMs: 20_000 });
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((res) => {
      if (!this.open) return;
      r.committed++;
      k.committed++;
      sim.trace(`membership committed ${desc}: ${describeMembership((res as { membership: Membership }).membership)}`);
    }, (err: Error & { code?: string; reason?: string; mayStillComplete?: boolean }) => {
      if (!this.open) return;
      const code = err.code ?? err.name;
      if (code === 'ConfigChangeAborted') {
        r.aborted++;
        k.aborted++;
        const why = `${err.reason ?? '?'}${err.mayStillComplete ? ' (may still complete)' : ''}`;
        r.aborts[why] = (r.aborts[why] ?? 0) + 1;
      } else if (REFUSALS.includes(code)) {
        r.refused++;
        k.refused++;
        r.refusals[code] = (r.refusals[code] ?? 0) + 1;
      } else {
        r.unknown++;
        k.unknown++;
      }
      sim.trace(`membership ${code} ${desc}`);
    });
  }

  /** True when the strike's moment has come; disarms it when the change it waits for is gone. */
  private strikeDue(k: Strike): boolean {
    const s = this.sim.inspect(k.leader)?.status;
    // The proposal may not have reached the leader yet (no change shows); give up once it lost leadership or the phase passed.
    if (!s || s.role !== 'Leader' || this.sim.now() > k.disarmAt) { this.strike = null; return false; }
    if (s.configChange?.phase !== k.phase) {
      if (k.seenAtStep !== null) this.strike = null; // the phase passed before the delay ran out
      return false;
    }
    k.seenAtStep ??= this.sim.stats.steps;
    return this.sim.stats.steps - k.seenAtStep >= k.delaySteps;
  }

  private async carryOutStrike(k: Strike): Promise<void> {
    const sim = this.sim;
    this.strike = null;
    sim.trace(`nemesis strike ${k.action} ${k.leader} at ${k.phase}+${k.delaySteps}`);
    if (k.action === 'crash') {
      if (this.hooks.crashVictim() === null) return; // a minority is down already
      await sim.crash(k.leader);
      this.hooks.restartAt(k.leader, sim.now() + 100 + this.random.nextFloat() * 1_500);
    } else {
      sim.network.isolate(k.leader, sim.ids);
    }
    this.hooks.count(`strike-${k.action}`);
  }
}

/** Fisher-Yates with the nemesis's random stream. */
function shuffle(random: SeededRandom, ids: readonly NodeId[]): NodeId[] {
  const out = [...ids];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.nextInt(0, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
