/**
 * Our copy of the replicated log and how far along it is (etcd's raftLog): the entries, the prefix
 * that is durable, the membership the entries define, the commit index and what was handed to the
 * state machine. It decides nothing about roles; the core tells it what to write and when to commit.
 */
import type { LogView } from './append';
import { LogDurability } from './durability';
import { InvariantViolation } from './errors';
import { RaftLog } from './log';
import { ConfigHistory, pristineMembership } from './membership';
import type { Entry, LogIndex, Membership, NodeId, SnapshotMeta, Term } from './types';

/** How the log and a snapshot fit together on start (see ReplicatedLog's constructor). */
export type SnapshotFit =
  /** No snapshot, or one the state machine already has applied. */
  | 'none'
  /** The log continues the snapshot: the state machine must be restored from it (it is behind). */
  | 'restore'
  /** The log contradicts the snapshot (or ends before it): it was dropped; storage must drop it too. */
  | 'reset';

/**
 * @example
 * const rlog = new ReplicatedLog(self, initial.entries, initial.lastApplied);
 * rlog.write(entries, null);              // then emit appendLog
 * rlog.persisted(lastIndex);              // logPersisted arrived
 * rlog.commitTo(n) && rlog.takeApplyBatches(1024); // committed and durable entries to apply
 */
export class ReplicatedLog implements LogView {
  private readonly log: RaftLog;
  private readonly durability: LogDurability;
  /** What the latest snapshot covers (0/0 when there is none). */
  private snapIndex = 0 as LogIndex;
  private snapTerm = 0 as Term;
  /** Set by the constructor: what start-up must do about the snapshot (see SnapshotFit). */
  readonly startFit: { readonly restore: boolean; readonly reset: boolean };
  private readonly configs: ConfigHistory;
  private commit: LogIndex;
  private appliedThrough: LogIndex;
  /** Highest index already handed to the state machine; never handed twice. */
  private handedToApply: LogIndex;

  /**
   * Everything storage hands back on start is durable; entries through `lastApplied` are applied.
   * With a snapshot, the in-memory log starts right after it (entries storage still keeps behind it
   * are for lagging followers, read from storage): entries at or below it are dropped here. If the
   * log does not hold the snapshot's last entry with its term (a crash between installing a
   * snapshot and cutting the log), the whole log is dropped (`startFit.reset`). A state machine
   * behind the snapshot must be restored from it (`startFit.restore`).
   */
  constructor(self: NodeId, entries: readonly Entry[], lastApplied: LogIndex, snapshot: SnapshotMeta | null = null, storageFirstIndex?: LogIndex) {
    const s = (snapshot === null ? 0 : snapshot.lastIncludedIndex) as LogIndex;
    const sTerm = snapshot === null ? (0 as Term) : snapshot.lastIncludedTerm;
    let kept = entries;
    let reset = false;
    if (snapshot !== null) {
      // An empty log fits the snapshot only if storage's log continues right after it. One that
      // still starts at or below the snapshot (a crash after an installed snapshot became durable,
      // before the reset of the log did) would take the next entry, s + 1, as a gap: reset it
      // (simulator seed 95: "replicate at index 85 leaves a gap after index 0").
      const first = entries.length > 0 ? entries[0].index : (storageFirstIndex ?? s + 1);
      if (first > s + 1) throw new InvariantViolation(`the log starts at ${first}, after the snapshot's last index ${s} + 1: entries are missing`);
      const atS = entries.find((e) => e.index === s);
      const fits = first === s + 1 || (atS !== undefined && atS.term === sTerm);
      if (entries.length === 0 && first > s + 1) throw new InvariantViolation(`storage's log starts at ${first}, after the snapshot's last index ${s} + 1: entries are missing`);
      kept = fits ? entries.filter((e) => e.index > s) : [];
      reset = !fits;
    }
    this.log = new RaftLog(undefined, s, sTerm);
    this.log.append(kept);
    const applied = Math.max(lastApplied, s) as LogIndex;
    if (applied > this.log.lastIndex) throw new InvariantViolation(`lastApplied ${lastApplied} beyond the last log index ${this.log.lastIndex}`);
    this.configs = new ConfigHistory(pristineMembership(self));
    if (snapshot !== null) this.configs.rebase(s, snapshot.membership, snapshot.membershipIndex);
    this.configs.append(kept);
    this.durability = new LogDurability(this.log.lastIndex);
    this.snapIndex = s;
    this.snapTerm = sTerm;
    this.startFit = { restore: snapshot !== null && lastApplied < s, reset };
    // Entries above lastApplied are committed again when a leader says so; below it nothing is re-applied.
    this.commit = applied;
    this.appliedThrough = applied;
    this.handedToApply = applied;
    this.log.evict(applied);
  }

  /** The latest snapshot's last index and term (0 when none). */
  get snapshotIndex(): LogIndex { return this.snapIndex; }
  get snapshotTerm(): Term { return this.snapTerm; }
  /** The first index the in-memory log holds (snapshotIndex + 1 after a snapshot). */
  get firstIndex(): LogIndex { return this.log.firstIndex; }
  /** Entries at or below this are covered by a snapshot and no longer in memory. */
  get purgedThrough(): LogIndex { return this.log.purgedThrough; }
  /** The config in force at `index` and the index of its entry (for a snapshot's meta). */
  membershipAt(index: LogIndex): { readonly membership: Membership; readonly index: LogIndex } { return this.configs.at(index); }

  /**
   * Our own state machine made a snapshot through `meta.lastIncludedIndex` (applied, durable): the
   * in-memory log forgets what it covers. False when it is not newer than the one we have.
   */
  snapshotTaken(meta: SnapshotMeta): boolean {
    const s = meta.lastIncludedIndex;
    if (s <= this.snapIndex) return false;
    if (s > this.appliedThrough) throw new InvariantViolation(`snapshot through ${s} but only ${this.appliedThrough} is applied`);
    const t = this.log.termAt(s);
    if (t !== meta.lastIncludedTerm) throw new InvariantViolation(`snapshot says term ${meta.lastIncludedTerm} at ${s}, the log has ${t}`);
    this.log.purgeThrough(s, meta.lastIncludedTerm);
    this.configs.rebase(s, meta.membership, meta.membershipIndex);
    this.snapIndex = s;
    this.snapTerm = meta.lastIncludedTerm;
    return true;
  }

  /**
   * A leader's snapshot was installed (durable in storage). Returns 'stale' when it covers nothing
   * we have not committed; 'kept' when our log holds its last entry with its term (the entries after
   * it stay); 'reset' when the log contradicts it or ends before it (the whole log goes). Either way
   * commit and apply move to the snapshot's index: the state machine is restored from it.
   */
  installSnapshot(meta: SnapshotMeta): 'stale' | 'kept' | 'reset' {
    const s = meta.lastIncludedIndex;
    if (s <= this.commit) return 'stale';
    const fits = this.log.termAt(s) === meta.lastIncludedTerm;
    if (!fits && this.log.lastIndex >= this.log.firstIndex) {
      this.log.truncateFrom(this.log.firstIndex);
      this.configs.truncateFrom(this.log.firstIndex);
    }
    this.log.purgeThrough(s, meta.lastIncludedTerm);
    this.configs.rebase(s, meta.membership, meta.membershipIndex);
    if (!fits) this.durability.issued(s, (s + 1) as LogIndex);
    this.snapIndex = s;
    this.snapTerm = meta.lastIncludedTerm;
    this.commit = s;
    this.appliedThrough = s;
    this.handedToApply = s;
    return fits ? 'kept' : 'reset';
  }

  /** A start-up reset (startFit.reset) was issued to storage, acknowledged as logPersisted(snapshotIndex). */
  resetIssued(): void {
    this.durability.issued(this.snapIndex, (this.snapIndex + 1) as LogIndex);
  }

  get lastIndex(): LogIndex { return this.log.lastIndex; }
  get lastTerm(): Term { return this.log.lastTerm; }
  get durableIndex(): LogIndex { return this.durability.durableIndex; }
  get commitIndex(): LogIndex { return this.commit; }
  get lastApplied(): LogIndex { return this.appliedThrough; }
  /** The latest config in the log (paper 6: in force once appended), or the base membership. */
  get membership(): Membership { return this.configs.current; }
  /** The config before the one in force (the base membership when there is none). */
  get previousMembership(): Membership { return this.configs.previous; }
  /** The index of the config entry in force; 0 while the base membership is. */
  get membershipIndex(): LogIndex { return this.configs.currentIndex; }

  termAt(index: LogIndex): Term | null { return this.log.termAt(index); }
  firstIndexOfTermAt(index: LogIndex): LogIndex { return this.log.firstIndexOfTermAt(index); }
  entries(from: LogIndex, toExclusive: LogIndex): Entry[] | null { return this.log.entries(from, toExclusive); }

  /** The membership in force while the log holds no config entry (pristine, or InitWithConfig's). */
  setBaseMembership(m: Membership): void {
    this.configs.setBase(m);
  }

  /**
   * Cuts the log at `truncateFrom` (if set) and appends `entries`, as one appendLog command will.
   * Committed entries are never cut. Returns true when the membership changed.
   */
  write(entries: readonly Entry[], truncateFrom: LogIndex | null): boolean {
    if (entries.length === 0) throw new InvariantViolation('write: no entries');
    let membershipChanged = false;
    if (truncateFrom !== null) {
      if (truncateFrom <= this.commit) throw new InvariantViolation(`truncating committed index ${truncateFrom} (commitIndex ${this.commit})`);
      this.log.truncateFrom(truncateFrom);
      membershipChanged = this.configs.truncateFrom(truncateFrom);
    }
    this.log.append(entries);
    this.durability.issued(this.log.lastIndex, truncateFrom);
    this.log.evict(this.appliedThrough);
    return this.configs.append(entries) || membershipChanged;
  }

  /** `logPersisted(index)`; true when the durable index moved. */
  persisted(index: LogIndex): boolean {
    return this.durability.acked(index);
  }

  /** Raises the commit index to `n`; false when it is not higher. */
  commitTo(n: LogIndex): boolean {
    if (n <= this.commit) return false;
    if (n > this.log.lastIndex) throw new InvariantViolation(`commit index ${n} beyond the last index ${this.log.lastIndex}`);
    this.commit = n;
    return true;
  }

  /**
   * The committed entries not yet handed to the state machine, in order, in batches of at most
   * `maxBatchEntries`. Only durable ones: after a restart storage must hold every applied entry.
   */
  takeApplyBatches(maxBatchEntries: number): Entry[][] {
    const limit = Math.min(this.commit, this.durability.durableIndex);
    const batches: Entry[][] = [];
    while (this.handedToApply < limit) {
      const to = Math.min(limit, this.handedToApply + maxBatchEntries);
      const batch = this.log.entries((this.handedToApply + 1) as LogIndex, (to + 1) as LogIndex);
      if (batch === null) throw new InvariantViolation(`entries ${this.handedToApply + 1}..${to} to apply are not cached`);
      batches.push(batch);
      this.handedToApply = to as LogIndex;
    }
    return batches;
  }

  /** The state machine has applied through `index`: those entries may leave the cache. */
  applied(index: LogIndex): void {
    if (index > this.handedToApply) throw new InvariantViolation(`applied(${index}) beyond what was handed to apply (${this.handedToApply})`);
    if (index <= this.appliedThrough) return;
    this.appliedThrough = index;
    this.log.evict(index);
  }
}
