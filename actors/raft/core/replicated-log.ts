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
import type { Entry, LogIndex, Membership, NodeId, Term } from './types';

/**
 * @example
 * const rlog = new ReplicatedLog(self, initial.entries, initial.lastApplied);
 * rlog.write(entries, null);              // then emit appendLog
 * rlog.persisted(lastIndex);              // logPersisted arrived
 * rlog.commitTo(n) && rlog.takeApplyBatches(1024); // committed and durable entries to apply
 */
export class ReplicatedLog implements LogView {
  private readonly log = new RaftLog();
  private readonly durability: LogDurability;
  private readonly configs: ConfigHistory;
  private commit: LogIndex;
  private appliedThrough: LogIndex;
  /** Highest index already handed to the state machine; never handed twice. */
  private handedToApply: LogIndex;

  /** Everything storage hands back on start is durable; entries through `lastApplied` are applied. */
  constructor(self: NodeId, entries: readonly Entry[], lastApplied: LogIndex) {
    this.log.append(entries);
    if (lastApplied > this.log.lastIndex) throw new InvariantViolation(`lastApplied ${lastApplied} beyond the last log index ${this.log.lastIndex}`);
    this.configs = new ConfigHistory(pristineMembership(self));
    this.configs.append(entries);
    this.durability = new LogDurability(this.log.lastIndex);
    // Entries above lastApplied are committed again when a leader says so; below it nothing is re-applied.
    this.commit = lastApplied;
    this.appliedThrough = lastApplied;
    this.handedToApply = lastApplied;
    this.log.evict(lastApplied);
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
