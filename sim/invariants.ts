/**
 * Safety invariants of Raft, checked by the simulator after every step. Each check is incremental
 * (the cost of a step is what changed in it), so a run of tens of thousands of steps checks them
 * all, every step. A violation throws InvariantViolationError naming the seed, the step, the
 * invariant and what was seen.
 *
 * Checked:
 * - election safety: at most one leader per term;
 * - log matching: two logs holding an entry with the same index and term hold the same entries up
 *   to it (compared by a hash chain over term and payload; needs the simulator's storage);
 * - leader completeness: a node that becomes leader in term T holds every entry known committed in
 *   a term before T;
 * - state machine safety: no two nodes commit or apply different entries at one index, and two
 *   state machines at the same applied index have the same state hash;
 * - monotonicity: a node's term never decreases and its vote never changes within a term (on disk
 *   always; in memory while it runs, since a restart returns to what the disk holds), its commit
 *   index never decreases while it runs and never falls below what its state machine applied,
 *   and its applied index never decreases, across restarts too (durable state machine);
 * - durability: a leader never counts entries it has not made durable (its durable index is within
 *   what its disk has synced), and every entry it declares committed is durable on a quorum of disks
 *   (of its config before or after the step: a leader may append a config entry in the step in
 *   which it commits under the previous one);
 * - membership changes (paper 6; need the simulator's storage, which reports every log write):
 *   one change at a time (a config entry only follows a committed one); a joint config is followed
 *   only by its own final config (its new voters and its non-voters), and starts from the voters of
 *   the config before it; voters change only through a joint config; and a removed node never
 *   leads: a new leader is a voter of its own latest config, which is no older than the latest
 *   config committed before its term (seed 000's rare case, a node removed by an unfinished change
 *   finishing it, is a voter of the committed joint config); a leader that commits a config
 *   leaving it out steps down in that same step;
 * - snapshots (log compaction): a node's snapshot never covers an index not known committed, and
 *   its last included term is the term committed there; a node's snapshot index never goes back
 *   (on disk ever, in memory while it runs) and never runs ahead of its disk's durable snapshot;
 *   a state machine restored from a snapshot through S has the state hash other nodes had at S.
 *   Log matching and leader completeness count a node's log from its first held index: what a
 *   purge or a snapshot install removed is the committed prefix (its hash chain continues from the
 *   committed entry's), and committed entries a snapshot covers count as present.
 * - lease safety (checkQuorum on): while a leader's lease is valid (its status shows leaseUntilMs
 *   later than its own clock reads), no node has been elected leader of a higher term. This is
 *   what a lease read relies on; it needs clock drift within leaseClockDriftMarginMs;
 * - check-quorum: a leader that has heard no answer from enough peers to make a quorum (with
 *   itself) for 2 x electionTimeoutMaxMs + slack of its own clock, while leading one term under one
 *   config, is no longer leader (it checks every electionTimeoutMaxMs who answered in the period).
 */
import { createHash } from 'node:crypto';
import type { Entry, LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../actors/raft/core/types';
import type { CoreStatus } from '../actors/raft/core/io';
import type { DurableView } from './sim-storage';

/** A safety invariant failed, at `step` of the run of `seed` (replay the seed to see it again). */
export class InvariantViolationError extends Error {
  readonly code = 'InvariantViolation';
  constructor(readonly invariant: string, readonly seed: number, readonly step: number, readonly timeMs: number, readonly detail: string) {
    super(`invariant '${invariant}' violated (seed ${seed}, step ${step}, t=${timeMs.toFixed(3)} ms): ${detail}`);
    this.name = 'InvariantViolationError';
  }
}

/** What the checker reads of one running node after a step. */
export interface NodeView {
  readonly status: CoreStatus;
  termAt(index: LogIndex): Term | null;
}

interface NodeMemory {
  term: number;
  votedFor: number | null;
  commit: number;
  applied: number;
  role: string;
  /** Term and vote on disk (simulated storage only). */
  diskTerm: number;
  diskVote: number | null;
  /** log-matching hash chain of this node's (page cache) log: chain[i-1] for index i. */
  chain: string[];
  /** The config entries of this node's (page cache) log, in index order. */
  configs: ConfigSeen[];
  /** The membership this node showed after the previous step it was observed in (null: not since it started). */
  membership: Membership | null;
  /** The snapshot index this node showed (in memory, while it runs), and the one on its disk. */
  snapshot: number;
  diskSnapshot: number;
  /** Check-quorum: the term it leads and since when (its own clock), and when its config last changed. */
  leadingSince: { term: number; atMs: number } | null;
  membershipIndex: number;
  configSinceMs: number;
}

/** What the checker may be told beyond the nodes' state (all optional). */
export interface InvariantOptions {
  /** Node `id`'s own clock now (default: the simulation's time, as every node keeps it). */
  readonly localNow?: (id: NodeId) => number;
  /** Check lease safety (default true). Turn it off to show what a broken clock assumption does to reads. */
  readonly leaseSafety?: boolean;
  /**
   * Check-quorum: how long (ms of the leader's clock) a leader may go on without answers from a
   * quorum; null (default) leaves the check off. The simulation sets 2 x electionTimeoutMaxMs +
   * heartbeatIntervalMs when checkQuorum is on.
   */
  readonly checkQuorumWindowMs?: number | null;
}

interface ConfigSeen {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

export class InvariantChecker {
  /** Checks run so far (one per node per step, plus one per event hook). */
  checks = 0;
  private readonly mem = new Map<NodeId, NodeMemory>();
  private readonly leaders = new Map<number, NodeId>();
  /** Per committed index: the entry's term, and the lowest term in which it was seen committed. */
  private readonly committedTerm: number[] = [];
  private readonly commitSeenInTerm: number[] = [];
  /** index:term -> hash chain and the node that wrote it first, over every log ever seen. */
  private readonly chains = new Map<string, { hash: string; node: NodeId }>();
  /** Per applied index: a hash of the entry applied; per applied index: the state hash seen there. */
  private readonly appliedEntry: { hash: string; node: NodeId }[] = [];
  private readonly stateHash = new Map<number, { hash: string; node: NodeId }>();
  /** index:term -> membership, for every config entry any log ever held. */
  private readonly configContent = new Map<string, Membership>();
  /** Config entries known committed, in index order (their commit term is in commitSeenInTerm). */
  private readonly committedConfigs: ConfigSeen[] = [];
  private step = 0;
  private timeMs = 0;
  /** The highest term any node has been seen leading, by whom and when (simulation time). */
  private highestLed: { term: number; node: NodeId; atMs: number } | null = null;
  /** Leaders that showed a lease in this step: checked once every node of the step was observed. */
  private leases: { id: NodeId; term: number; untilMs: number }[] = [];
  /** Per node: when it last heard an answer from each peer (its own clock). */
  private readonly answers = new Map<NodeId, Map<NodeId, number>>();
  private readonly localNow: (id: NodeId) => number;
  private readonly leaseSafety: boolean;
  private readonly checkQuorumWindowMs: number | null;

  constructor(readonly seed: number, private readonly quorumDisks?: (id: NodeId) => DurableView | undefined, opts: InvariantOptions = {}) {
    this.localNow = opts.localNow ?? (() => this.timeMs);
    this.leaseSafety = opts.leaseSafety ?? true;
    this.checkQuorumWindowMs = opts.checkQuorumWindowMs ?? null;
  }

  /** The simulator moves to a new step; violations found now carry it. */
  at(step: number, timeMs: number): void { this.step = step; this.timeMs = timeMs; this.leases = []; }

  /**
   * Node `to` heard an answer from `from` (an RPC's response packet reached it). Check-quorum counts
   * answers; this counts every one (a late vote answer too), so the check never fires early.
   */
  answered(to: NodeId, from: NodeId): void {
    let m = this.answers.get(to);
    if (m === undefined) { m = new Map(); this.answers.set(to, m); }
    m.set(from, this.localNow(to));
  }

  /**
   * After every node of a step was observed. Lease safety: a leader of term T whose lease is valid
   * (leaseUntilMs after its clock's now) while some node has been elected in a term above T could
   * serve a lease read that misses that leader's writes. The lease argument: a quorum answered a
   * request sent at S, and each of them refuses votes until electionTimeoutMinMs after it heard it
   * (on its clock); the leader stops trusting the lease leaseClockDriftMarginMs before that (on its
   * own). TimeoutNow voids the lease first, since its candidate's votes override the followers'.
   */
  endStep(): void {
    if (!this.leaseSafety) return;
    const top = this.highestLed;
    if (top === null) return;
    for (const l of this.leases) {
      if (top.term <= l.term) continue;
      const now = this.localNow(l.id);
      if (now >= l.untilMs) continue;
      this.fail('lease safety', `node ${l.id} leads term ${l.term} with a lease valid until ${l.untilMs.toFixed(3)} ms of its clock (now ${now.toFixed(3)}), but node ${top.node} was elected in term ${top.term} at t=${top.atMs.toFixed(3)} ms: a lease read now would miss its writes`);
    }
  }

  /**
   * The first violation found. Hooks called from inside an actor (applied, logWritten) throw into
   * that actor, which would only crash its node; the simulation rethrows this after the step.
   */
  violation: InvariantViolationError | null = null;

  fail(invariant: string, detail: string): never {
    const err = new InvariantViolationError(invariant, this.seed, this.step, this.timeMs, detail);
    this.violation ??= err;
    throw err;
  }

  private memory(id: NodeId): NodeMemory {
    let m = this.mem.get(id);
    if (!m) {
      m = {
        term: 0, votedFor: null, commit: 0, applied: 0, role: 'NonVoter', diskTerm: 0, diskVote: null, chain: [], configs: [], membership: null, snapshot: 0, diskSnapshot: 0,
        leadingSince: null, membershipIndex: 0, configSinceMs: 0,
      };
      this.mem.set(id, m);
    }
    return m;
  }

  /**
   * Node `id` got a new machine (Simulation.wipe): an empty disk and a fresh state machine. Nothing
   * it held is a floor any more; it starts again as a node the checker has never seen. What the
   * cluster committed and applied stays known, and its replay is checked against it.
   */
  wiped(id: NodeId): void {
    this.mem.delete(id);
    this.answers.delete(id);
  }

  /**
   * Node `id` restarted. What it held only in memory is gone: its term and vote go back to what its
   * disk holds (a term or vote it never made durable was never shown to anyone, seed 002), and its
   * volatile commit index starts again from its applied index.
   */
  restarted(id: NodeId, durableStateMachine: boolean): void {
    const m = this.memory(id);
    m.role = 'NonVoter';
    m.commit = durableStateMachine ? m.applied : 0;
    if (!durableStateMachine) m.applied = 0;
    const disk = this.quorumDisks?.(id);
    m.term = disk ? disk.hardState.currentTerm : 0;
    m.votedFor = disk ? disk.hardState.votedFor : null;
    m.membership = null;
    m.leadingSince = null;
    this.answers.delete(id);
    // The snapshot in memory comes back from the disk's; one whose record a power loss dropped was never used.
    m.snapshot = disk?.snapshot?.lastIncludedIndex ?? 0;
  }

  /** After every step, for every running node. */
  observe(id: NodeId, view: NodeView): void {
    this.checks++;
    const s = view.status;
    const m = this.memory(id);
    if (s.currentTerm < m.term) this.fail('monotonic term', `node ${id} term went from ${m.term} back to ${s.currentTerm}`);
    if (s.currentTerm === m.term && m.votedFor !== null && s.votedFor !== m.votedFor) {
      this.fail('one vote per term', `node ${id} voted for ${m.votedFor} in term ${m.term}, now shows ${String(s.votedFor)}`);
    }
    if (s.commitIndex < m.commit) this.fail('monotonic commit', `node ${id} commit index went from ${m.commit} back to ${s.commitIndex}`);
    if (s.lastApplied < m.applied) this.fail('monotonic applied', `node ${id} applied index went from ${m.applied} back to ${s.lastApplied}`);
    if (s.commitIndex < s.lastApplied) this.fail('commit covers applied', `node ${id} applied ${s.lastApplied} beyond its commit index ${s.commitIndex}`);
    if (s.role === 'Leader') {
      const other = this.leaders.get(s.currentTerm);
      if (other !== undefined && other !== id) this.fail('election safety', `nodes ${other} and ${id} both lead term ${s.currentTerm}`);
      if (other === undefined) {
        this.leaders.set(s.currentTerm, id);
        if (this.highestLed === null || s.currentTerm > this.highestLed.term) this.highestLed = { term: s.currentTerm, node: id, atMs: this.timeMs };
        this.checkCompleteness(id, view, s.currentTerm);
        this.checkLeaderInConfig(id, view, s.currentTerm);
      }
      if (s.leaseUntilMs !== null) this.leases.push({ id, term: s.currentTerm, untilMs: s.leaseUntilMs });
      this.checkQuorumLiveness(id, s, m);
      this.checkLeaderDurable(id, view);
      if (!isVoterOf(s.membership, id) && s.membershipIndex <= s.commitIndex) {
        this.fail('removed leader steps down', `node ${id} still leads term ${s.currentTerm} after committing its config at index ${s.membershipIndex}, ${describeMembership(s.membership)}, which leaves it out`);
      }
    }
    // A leader that commits its own removal steps down in that same step: its last commit was still a leader's.
    if (s.role === 'Leader' || (m.role === 'Leader' && m.term === s.currentTerm)) this.checkCommitDurable(id, view, m);
    if (s.commitIndex > m.commit) this.recordCommitted(id, view, m.commit + 1, s.commitIndex, s.currentTerm);
    if (s.snapshotIndex !== m.snapshot) this.checkSnapshot(id, m, s.snapshotIndex, s.snapshotTerm);
    this.checkDurableHardState(id, m, s.snapshotIndex);
    m.term = s.currentTerm;
    m.votedFor = s.votedFor;
    m.commit = s.commitIndex;
    m.applied = s.lastApplied;
    m.role = s.role;
    m.membership = s.membership;
    if (s.membershipIndex !== m.membershipIndex) { m.membershipIndex = s.membershipIndex; m.configSinceMs = this.localNow(id); }
  }

  /**
   * Check-quorum (thesis 6.2): a leader looks every electionTimeoutMaxMs at who answered since its
   * last look and steps down without a quorum. So a leader that, for a whole window of twice that
   * (plus slack), leading one term under one config, heard answers from too few peers to make a
   * quorum with itself has stepped down. Answers are what reached the node (SimNetwork), a superset
   * of what its streams report, so the check never fires early.
   */
  private checkQuorumLiveness(id: NodeId, s: CoreStatus, m: NodeMemory): void {
    const window = this.checkQuorumWindowMs;
    if (window === null) return;
    const now = this.localNow(id);
    if (m.leadingSince === null || m.leadingSince.term !== s.currentTerm || m.role !== 'Leader') m.leadingSince = { term: s.currentTerm, atMs: now };
    if (s.membershipIndex !== m.membershipIndex) return; // its config changes in this step: the window starts again
    const since = Math.max(m.leadingSince.atMs, m.configSinceMs);
    if (now - since < window) return;
    const heard = new Set<NodeId>([id]);
    for (const [peer, at] of this.answers.get(id) ?? []) if (at > now - window) heard.add(peer);
    if (hasQuorum(s.membership, heard)) return;
    this.fail('check-quorum', `node ${id} still leads term ${s.currentTerm} (since ${m.leadingSince.atMs.toFixed(3)} ms of its clock, now ${now.toFixed(3)}) although in the last ${window} ms it heard answers only from ${JSON.stringify([...heard].sort((a, b) => a - b))} of config ${describeMembership(s.membership)}`);
  }

  /**
   * Node `id` now shows snapshot `index` (term `term`): it never goes back while the node runs, and
   * covers only committed entries, its last one with the term committed there.
   */
  private checkSnapshot(id: NodeId, m: NodeMemory, index: number, term: number): void {
    if (index < m.snapshot) this.fail('monotonic snapshot', `node ${id} snapshot index went from ${m.snapshot} back to ${index}`);
    this.checkCoversCommitted(id, 'its snapshot', index, term);
    m.snapshot = index;
  }

  /** A snapshot through `index` with last term `term` covers only committed entries. */
  private checkCoversCommitted(id: NodeId, what: string, index: number, term: number): void {
    if (index === 0) return;
    const known = this.committedTerm[index];
    if (index > this.committedIndex || known === undefined) {
      this.fail('snapshot covers only committed entries', `node ${id}'s ${what} covers index ${index} (term ${term}), but the highest index known committed is ${this.committedIndex}${index <= this.committedIndex ? ` and index ${index} was never seen committed` : ''}`);
    }
    if (known !== term) this.fail('snapshot covers only committed entries', `node ${id}'s ${what} ends at index ${index} with term ${term}, but index ${index} was committed with term ${known}`);
  }

  /** The term and vote on disk never go back, crashes included: one durable vote per term. So does the durable snapshot. */
  private checkDurableHardState(id: NodeId, m: NodeMemory, snapshotIndex: number): void {
    const view = this.quorumDisks?.(id);
    if (view === undefined) return;
    const disk = view.snapshot?.lastIncludedIndex ?? 0;
    if (disk !== m.diskSnapshot) {
      if (disk < m.diskSnapshot) this.fail('monotonic durable snapshot', `node ${id} durable snapshot went from index ${m.diskSnapshot} back to ${disk}`);
      this.checkCoversCommitted(id, 'durable snapshot', disk, view.snapshot!.lastIncludedTerm);
      m.diskSnapshot = disk;
    }
    if (snapshotIndex > disk) this.fail('snapshot durable before use', `node ${id} uses a snapshot through ${snapshotIndex}, but its disk holds one only through ${disk}`);
    const hs = view.hardState;
    if (hs.currentTerm < m.diskTerm) this.fail('monotonic durable term', `node ${id} durable term went from ${m.diskTerm} back to ${hs.currentTerm}`);
    if (hs.currentTerm === m.diskTerm && m.diskVote !== null && hs.votedFor !== m.diskVote) {
      this.fail('one durable vote per term', `node ${id} durably voted for ${m.diskVote} in term ${m.diskTerm}, now ${String(hs.votedFor)}`);
    }
    m.diskTerm = hs.currentTerm;
    m.diskVote = hs.votedFor;
  }

  private checkCompleteness(id: NodeId, view: NodeView, term: number): void {
    // Committed entries its snapshot covers are present (checkSnapshot compared its last one).
    for (let i = view.status.snapshotIndex + 1; i < this.committedTerm.length; i++) {
      if (this.commitSeenInTerm[i] === undefined || this.commitSeenInTerm[i] >= term) continue;
      const t = view.termAt(i as LogIndex);
      if (t !== this.committedTerm[i]) {
        this.fail('leader completeness', `node ${id} leads term ${term} with ${t === null ? 'no entry' : `term ${t}`} at index ${i}, committed with term ${this.committedTerm[i]} in term ${this.commitSeenInTerm[i]}`);
      }
    }
  }

  /** A leader counts its own log only through what its disk has synced. */
  private checkLeaderDurable(id: NodeId, view: NodeView): void {
    if (this.quorumDisks === undefined) return;
    const s = view.status;
    const own = this.quorumDisks(id);
    if (own !== undefined && s.durableIndex > own.lastIndex) {
      this.fail('leader counts only durable entries', `leader ${id} counts its log through ${s.durableIndex}, but its disk has synced only through ${own.lastIndex}`);
    }
  }

  /**
   * What a leader commits is durable on a quorum: a majority of the voters, and while joint, a
   * majority of the new voters too. The config is the leader's latest, as it was before the step or
   * after it: the leader may append a config entry in the same step as the commit that allowed it
   * (the joint config right after catch-up, the final one right after the joint commits).
   */
  private checkCommitDurable(id: NodeId, view: NodeView, m: NodeMemory): void {
    if (this.quorumDisks === undefined) return;
    const s = view.status;
    if (s.commitIndex <= m.commit) return;
    const c = s.commitIndex;
    const t = view.termAt(c);
    const after = this.quorumShortfall(s.membership, c, t);
    if (after === null) return;
    if (m.membership !== null && this.quorumShortfall(m.membership, c, t) === null) return;
    this.fail('committed means durable on a quorum', `leader ${id} committed index ${c} (term ${t}), durable only on ${JSON.stringify(after.holders)} of voters ${JSON.stringify(after.group)}`);
  }

  /** The first voter group of `ms` of which no majority holds index `c` with term `t` on disk, or null. */
  private quorumShortfall(ms: Membership, c: number, t: Term | null): { holders: NodeId[]; group: readonly NodeId[] } | null {
    for (const group of ms.membersAfterConsensus ? [ms.members, ms.membersAfterConsensus] : [ms.members]) {
      const holders = group.filter((v) => this.quorumDisks!(v)?.termAt(c) === t);
      if (holders.length * 2 <= group.length) return { holders, group };
    }
    return null;
  }

  /**
   * A removed node never leads: when node `id` first leads term `term`, it is a voter of its own
   * latest config (the one it was elected under), and that config is no older than the latest one
   * committed before `term`. So a node that a committed config removed leads again only once a
   * later config adds it back. Seed 000's rare case passes: a node removed by a change whose final
   * config had not committed is a voter of the committed joint config, and may lead to finish it.
   * So may a node whose latest config is that final config (it appended it as leader and was deposed
   * before it committed): it is a voter of the joint config right before it in its log, and holds
   * the only copy of the final config the others need (the core's isActiveVoter).
   * (Leader completeness already makes the leader's log hold that committed config.)
   */
  private checkLeaderInConfig(id: NodeId, view: NodeView, term: number): void {
    const s = view.status;
    const configs = this.memory(id).configs;
    const before = configs.length >= 2 && configs[configs.length - 1]!.index === s.membershipIndex ? configs[configs.length - 2]!.membership : null;
    const finishing = before !== null && before.membersAfterConsensus !== null && isVoterOf(before, id);
    if (!isVoterOf(s.membership, id) && !finishing) {
      this.fail('removed node never leads', `node ${id} leads term ${term} under its config at index ${s.membershipIndex}, ${describeMembership(s.membership)}, of which it is not a voter`);
    }
    for (let k = this.committedConfigs.length - 1; k >= 0; k--) {
      const c = this.committedConfigs[k];
      if (!(this.commitSeenInTerm[c.index] < term)) continue;
      if (s.membershipIndex < c.index) {
        this.fail('removed node never leads', `node ${id} leads term ${term} under its config at index ${s.membershipIndex}, ${describeMembership(s.membership)}, older than the config committed at index ${c.index} in term ${this.commitSeenInTerm[c.index]}: ${describeMembership(c.membership)}`);
      }
      return;
    }
  }

  private recordCommitted(id: NodeId, view: NodeView, from: number, to: number, inTerm: number): void {
    for (let i = from; i <= to; i++) {
      const t = view.termAt(i as LogIndex);
      if (t === null) continue; // compacted away; the apply check still covers it
      const known = this.committedTerm[i];
      if (known === undefined) {
        this.committedTerm[i] = t;
        const config = this.configContent.get(`${i}:${t}`);
        if (config !== undefined) this.recordCommittedConfig({ index: i, term: t, membership: config });
      } else if (known !== t) this.fail('state machine safety', `index ${i} committed with term ${known}, node ${id} committed term ${t}`);
      if (this.commitSeenInTerm[i] === undefined || inTerm < this.commitSeenInTerm[i]) this.commitSeenInTerm[i] = inTerm;
    }
  }

  private recordCommittedConfig(c: ConfigSeen): void {
    // Commits are recorded in index order per node, but two nodes may report them out of order.
    let at = this.committedConfigs.length;
    while (at > 0 && this.committedConfigs[at - 1].index > c.index) at--;
    this.committedConfigs.splice(at, 0, c);
  }

  /**
   * A node's log changed (its storage wrote it): extend its hash chain and compare with every other
   * log, and check every config entry against the one before it in this log. At a node's start
   * storage reports its whole log as (first index held, entries). An entry after a gap (the log
   * starts after a purge or an installed snapshot) continues the committed entry's chain before it.
   */
  logWritten(id: NodeId, truncateFrom: LogIndex | null, entries: readonly Entry[]): void {
    this.checks++;
    const m = this.memory(id);
    if (truncateFrom !== null && truncateFrom - 1 < m.chain.length) m.chain.length = truncateFrom - 1;
    if (truncateFrom !== null) while (m.configs.length > 0 && m.configs[m.configs.length - 1].index >= truncateFrom) m.configs.pop();
    for (const e of entries) {
      if (e.index < m.chain.length + 1) this.fail('log matching', `node ${id} wrote index ${e.index} after index ${m.chain.length} without truncating`);
      if (e.index > m.chain.length + 1) this.continueFromCommitted(id, m, e.index - 1, 'its log resumes after a gap');
      const prev = m.chain.length === 0 ? '' : m.chain[m.chain.length - 1];
      const h = createHash('sha1').update(prev).update(`|${e.term}|`).update(entryContent(e)).digest('base64');
      const key = `${e.index}:${e.term}`;
      const seen = this.chains.get(key);
      if (seen === undefined) this.chains.set(key, { hash: h, node: id });
      else if (seen.hash !== h) this.fail('log matching', `node ${id} holds index ${e.index} term ${e.term} with a different history than node ${seen.node}`);
      m.chain.push(h);
      if (e.kind === 'config') this.configAppended(id, m, { index: e.index, term: e.term, membership: e.membership });
    }
  }

  /**
   * Node `id`'s storage purged its log through `through` (a snapshot covers it). Entries it keeps
   * after `through` must continue the committed chain there; when it keeps none (a reset: the log
   * contradicted an installed snapshot), its log now continues the committed prefix.
   */
  logPurged(id: NodeId, through: LogIndex): void {
    this.checks++;
    const m = this.memory(id);
    if (m.chain.length > through) {
      const committed = this.committedChain(through);
      if (committed !== null && m.chain[through - 1] !== committed.hash) {
        this.fail('log matching', `node ${id} purged its log through ${through} and keeps the entries after it, but its entry at ${through} is not the committed one (term ${this.committedTerm[through]})`);
      }
      if (committed === null) this.fail('snapshot covers only committed entries', `node ${id} purged its log through ${through}, not known committed (highest known: ${this.committedIndex})`);
      return;
    }
    this.continueFromCommitted(id, m, through, `its log was purged through ${through}`);
  }

  /** Node `id`'s log now holds nothing of its own through `through`: its prefix is the committed one. */
  private continueFromCommitted(id: NodeId, m: NodeMemory, through: number, why: string): void {
    const committed = this.committedChain(through);
    if (committed === null) {
      this.fail('log matching', `node ${id}: ${why}, but index ${through} is not known committed (highest known: ${this.committedIndex}), so no snapshot can cover it`);
    }
    m.chain.length = through;
    m.chain[through - 1] = committed.hash;
    // Its configs before the gap are the committed ones: the latest committed through `through`.
    let last: ConfigSeen | undefined;
    for (const c of this.committedConfigs) if (c.index <= through) last = c;
    m.configs = last === undefined ? [] : [last];
  }

  /** The hash chain of the committed entry at `index`, or null when it is not known committed (or no log held it). */
  private committedChain(index: number): { hash: string; node: NodeId } | null {
    if (index === 0) return { hash: '', node: 0 as NodeId };
    const t = this.committedTerm[index];
    if (t === undefined) return null;
    return this.chains.get(`${index}:${t}`) ?? null;
  }

  /**
   * Config entry `c` is now the latest of node `id`'s log. By log matching, the config entry before
   * it in this log was the latest config of the leader that appended `c`, when it did:
   * - one change at a time: that config was committed already (the checker saw a leader commit it
   *   in the step it did, always before any storage writes `c`);
   * - a joint config is followed only by its own final config: uniform, its new voters, its non-voters;
   * - a joint config's old voters are the voters of the config before it;
   * - voters change only through a joint config (two uniform configs in a row have the same voters).
   */
  private configAppended(id: NodeId, m: NodeMemory, c: ConfigSeen): void {
    const key = `${c.index}:${c.term}`;
    if (!this.configContent.has(key)) {
      this.configContent.set(key, c.membership);
      // Committed before any log reported it: only a storage that writes after it acknowledges could do that.
      if (this.committedTerm[c.index] === c.term && !this.committedConfigs.some((k) => k.index === c.index)) this.recordCommittedConfig(c);
    }
    const prev = m.configs[m.configs.length - 1];
    m.configs.push(c);
    if (prev === undefined) return;
    const where = `node ${id}'s log holds config ${describeMembership(c.membership)} at index ${c.index} (term ${c.term}) after config ${describeMembership(prev.membership)} at index ${prev.index} (term ${prev.term})`;
    if (this.committedTerm[prev.index] !== prev.term) this.fail('one change at a time', `${where}, which was not committed`);
    const p = prev.membership;
    const n = c.membership;
    if (p.membersAfterConsensus !== null) {
      if (n.membersAfterConsensus !== null) this.fail('one change at a time', `${where}: a joint config followed by another joint config`);
      if (!sameSet(n.members, p.membersAfterConsensus) || !sameSet(n.nonVoters, p.nonVoters)) this.fail('final config matches joint', `${where}: the final config is not the joint config's new voters and non-voters`);
    } else if (n.membersAfterConsensus !== null) {
      if (!sameSet(n.members, p.members)) this.fail('joint config starts from the current one', `${where}: the joint config's old voters are not the voters before it`);
    } else if (!sameSet(n.members, p.members)) {
      this.fail('voter changes go through joint consensus', `${where}: the voters changed without a joint config`);
    }
  }

  /** A state machine applied `entries`, reaching `stateHash` (when the simulation can hash it). */
  applied(id: NodeId, entries: readonly Entry[], stateHash: string | undefined): void {
    this.checks++;
    for (const e of entries) {
      const h = createHash('sha1').update(`${e.term}|`).update(entryContent(e)).digest('base64');
      const seen = this.appliedEntry[e.index];
      if (seen === undefined) this.appliedEntry[e.index] = { hash: h, node: id };
      else if (seen.hash !== h) this.fail('state machine safety', `node ${id} applied a different entry at index ${e.index} (term ${e.term}) than node ${seen.node}`);
    }
    if (stateHash === undefined || entries.length === 0) return;
    const at = entries[entries.length - 1].index;
    const seen = this.stateHash.get(at);
    if (seen === undefined) this.stateHash.set(at, { hash: stateHash, node: id });
    else if (seen.hash !== stateHash) this.fail('state machine safety', `node ${id} has state hash ${stateHash} at applied index ${at}, node ${seen.node} had ${seen.hash}`);
  }

  /**
   * Node `id`'s state machine was restored from a snapshot (`meta`), reaching `stateHash`: its state
   * at lastIncludedIndex came from the snapshot, not from applying entries. The snapshot covers only
   * committed entries, and the state equals what other nodes had at that index.
   */
  restored(id: NodeId, meta: SnapshotMeta, stateHash: string | undefined): void {
    this.checks++;
    const at = meta.lastIncludedIndex;
    this.checkCoversCommitted(id, `snapshot restored into its state machine`, at, meta.lastIncludedTerm);
    this.restores++;
    if (stateHash === undefined) return;
    const seen = this.stateHash.get(at);
    if (seen === undefined) this.stateHash.set(at, { hash: stateHash, node: id });
    else if (seen.hash !== stateHash) this.fail('state machine safety', `node ${id} restored a snapshot through ${at} with state hash ${stateHash}, node ${seen.node} had ${seen.hash} at that index`);
  }

  /** State machines restored from snapshots so far. */
  restores = 0;

  /** Highest index known committed. */
  get committedIndex(): number { return this.committedTerm.length - 1; }
}

/** Whether `granted` holds a majority of the voters (of both halves while joint). */
function hasQuorum(m: Membership, granted: ReadonlySet<NodeId>): boolean {
  const majority = (group: readonly NodeId[]) => group.length === 0 || group.filter((v) => granted.has(v)).length * 2 > group.length;
  return majority(m.members) && (m.membersAfterConsensus === null || majority(m.membersAfterConsensus));
}

function isVoterOf(m: Membership, id: NodeId): boolean {
  return m.members.includes(id) || (m.membersAfterConsensus?.includes(id) ?? false);
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}

/** `[1,2,3]`, `[1,2,3]->[1,2,4]` while joint, with `+learners [5]` when there are non-voters. */
export function describeMembership(m: Membership): string {
  const voters = m.membersAfterConsensus === null ? JSON.stringify(m.members) : `${JSON.stringify(m.members)}->${JSON.stringify(m.membersAfterConsensus)}`;
  return m.nonVoters.length === 0 ? voters : `${voters}+learners ${JSON.stringify(m.nonVoters)}`;
}

/** What identifies an entry's content for the hash checks: the payload, the config, or nothing (blank). */
function entryContent(e: Entry): string | Uint8Array {
  switch (e.kind) {
    case 'normal': return e.payload;
    case 'blank': return 'blank';
    case 'config': return `config:${JSON.stringify(e.membership)}`;
  }
}
