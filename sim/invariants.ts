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
 *   what its disk has synced), and every entry it declares committed is durable on a quorum of disks.
 */
import { createHash } from 'node:crypto';
import type { Entry, LogIndex, NodeId, Term } from '../actors/raft/core/types';
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
  private step = 0;
  private timeMs = 0;

  constructor(readonly seed: number, private readonly quorumDisks?: (id: NodeId) => DurableView | undefined) {}

  /** The simulator moves to a new step; violations found now carry it. */
  at(step: number, timeMs: number): void { this.step = step; this.timeMs = timeMs; }

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
    if (!m) { m = { term: 0, votedFor: null, commit: 0, applied: 0, role: 'NonVoter', diskTerm: 0, diskVote: null, chain: [] }; this.mem.set(id, m); }
    return m;
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
        this.checkCompleteness(id, view, s.currentTerm);
      }
      this.checkDurable(id, view);
    }
    if (s.commitIndex > m.commit) this.recordCommitted(id, view, m.commit + 1, s.commitIndex, s.currentTerm);
    this.checkDurableHardState(id, m);
    m.term = s.currentTerm;
    m.votedFor = s.votedFor;
    m.commit = s.commitIndex;
    m.applied = s.lastApplied;
    m.role = s.role;
  }

  /** The term and vote on disk never go back, crashes included: one durable vote per term. */
  private checkDurableHardState(id: NodeId, m: NodeMemory): void {
    const hs = this.quorumDisks?.(id)?.hardState;
    if (hs === undefined) return;
    if (hs.currentTerm < m.diskTerm) this.fail('monotonic durable term', `node ${id} durable term went from ${m.diskTerm} back to ${hs.currentTerm}`);
    if (hs.currentTerm === m.diskTerm && m.diskVote !== null && hs.votedFor !== m.diskVote) {
      this.fail('one durable vote per term', `node ${id} durably voted for ${m.diskVote} in term ${m.diskTerm}, now ${String(hs.votedFor)}`);
    }
    m.diskTerm = hs.currentTerm;
    m.diskVote = hs.votedFor;
  }

  private checkCompleteness(id: NodeId, view: NodeView, term: number): void {
    for (let i = 1; i < this.committedTerm.length; i++) {
      if (this.commitSeenInTerm[i] === undefined || this.commitSeenInTerm[i] >= term) continue;
      const t = view.termAt(i as LogIndex);
      if (t !== this.committedTerm[i]) {
        this.fail('leader completeness', `node ${id} leads term ${term} with ${t === null ? 'no entry' : `term ${t}`} at index ${i}, committed with term ${this.committedTerm[i]} in term ${this.commitSeenInTerm[i]}`);
      }
    }
  }

  private checkDurable(id: NodeId, view: NodeView): void {
    if (this.quorumDisks === undefined) return;
    const s = view.status;
    const own = this.quorumDisks(id);
    if (own !== undefined && s.durableIndex > own.lastIndex) {
      this.fail('leader counts only durable entries', `leader ${id} counts its log through ${s.durableIndex}, but its disk has synced only through ${own.lastIndex}`);
    }
    const m = this.memory(id);
    if (s.commitIndex > m.commit) {
      const c = s.commitIndex;
      const t = view.termAt(c);
      // A majority of the voters, and while joint, a majority of the new voters too.
      const ms = s.membership;
      for (const group of ms.membersAfterConsensus ? [ms.members, ms.membersAfterConsensus] : [ms.members]) {
        const holders = group.filter((v) => this.quorumDisks!(v)?.termAt(c) === t);
        if (holders.length * 2 <= group.length) {
          this.fail('committed means durable on a quorum', `leader ${id} committed index ${c} (term ${t}), durable only on ${JSON.stringify(holders)} of voters ${JSON.stringify(group)}`);
        }
      }
    }
  }

  private recordCommitted(id: NodeId, view: NodeView, from: number, to: number, inTerm: number): void {
    for (let i = from; i <= to; i++) {
      const t = view.termAt(i as LogIndex);
      if (t === null) continue; // compacted away; the apply check still covers it
      const known = this.committedTerm[i];
      if (known === undefined) this.committedTerm[i] = t;
      else if (known !== t) this.fail('state machine safety', `index ${i} committed with term ${known}, node ${id} committed term ${t}`);
      if (this.commitSeenInTerm[i] === undefined || inTerm < this.commitSeenInTerm[i]) this.commitSeenInTerm[i] = inTerm;
    }
  }

  /** A node's log changed (its storage wrote it): extend its hash chain and compare with every other log. */
  logWritten(id: NodeId, truncateFrom: LogIndex | null, entries: readonly Entry[]): void {
    this.checks++;
    const m = this.memory(id);
    if (truncateFrom !== null && truncateFrom - 1 < m.chain.length) m.chain.length = truncateFrom - 1;
    for (const e of entries) {
      if (e.index !== m.chain.length + 1) this.fail('log matching', `node ${id} wrote index ${e.index} after index ${m.chain.length}`);
      const prev = m.chain.length === 0 ? '' : m.chain[m.chain.length - 1];
      const h = createHash('sha1').update(prev).update(`|${e.term}|`).update(entryContent(e)).digest('base64');
      const key = `${e.index}:${e.term}`;
      const seen = this.chains.get(key);
      if (seen === undefined) this.chains.set(key, { hash: h, node: id });
      else if (seen.hash !== h) this.fail('log matching', `node ${id} holds index ${e.index} term ${e.term} with a different history than node ${seen.node}`);
      m.chain.push(h);
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

  /** Highest index known committed. */
  get committedIndex(): number { return this.committedTerm.length - 1; }
}

/** What identifies an entry's content for the hash checks: the payload, the config, or nothing (blank). */
function entryContent(e: Entry): string | Uint8Array {
  switch (e.kind) {
    case 'normal': return e.payload;
    case 'blank': return 'blank';
    case 'config': return `config:${JSON.stringify(e.membership)}`;
  }
}
