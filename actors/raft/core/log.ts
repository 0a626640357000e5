/**
 * The in-memory log: the term of every index, kept compactly as runs of equal term so the whole log
 * fits however long it grows, and a bounded cache of entry objects for replication and apply.
 * Entries that are applied may be evicted from the cache; whoever needs them reads storage.
 *
 * After a snapshot the log starts later: entries through `purgedThrough` are gone (covered by the
 * snapshot), and only the term of the last purged index is kept, as the anchor of the first entry.
 */
import { InvariantViolation } from './errors';
import type { Entry, LogIndex, Term } from './types';

/** Above this many cached entries, applied entries are evicted oldest first. */
export const MAX_CACHED_ENTRIES = 10_000;

/** Compact the cache array once this many evicted slots sit at its front. */
const COMPACT_AFTER_EVICTED = 4096;

interface TermRun {
  /** First index of the run; the run ends where the next run starts (or at the last index). */
  readonly start: number;
  readonly term: Term;
}

/**
 * @example
 * const log = new RaftLog();
 * log.append([{ index: 1 as LogIndex, term: 1 as Term, kind: 'blank' }]);
 * log.termAt(1 as LogIndex); // 1
 */
export class RaftLog {
  /** Ascending by start; neighbours always differ in term, so a run is all of its term. */
  private runs: TermRun[] = [];
  private last: number;
  /** cache[evicted..] holds indices firstCached..last. */
  private cache: Entry[] = [];
  private evicted = 0;
  private firstCached: number;
  /** Entries at or below this index are purged; `purgedTerm` is the term at it (0 when nothing is). */
  private purged: number;
  private purgedTerm: Term;

  /** `purgedThrough`/`purgedTerm`: where a log that starts after a snapshot begins (default: index 1). */
  constructor(private readonly maxCachedEntries = MAX_CACHED_ENTRIES, purgedThrough = 0, purgedTerm = 0 as Term) {
    if (!Number.isSafeInteger(purgedThrough) || purgedThrough < 0) throw new InvariantViolation(`purgedThrough ${purgedThrough} must be a non-negative integer`);
    this.purged = purgedThrough;
    this.purgedTerm = purgedThrough === 0 ? (0 as Term) : purgedTerm;
    this.last = purgedThrough;
    this.firstCached = purgedThrough + 1;
  }

  get lastIndex(): LogIndex {
    return this.last as LogIndex;
  }

  get lastTerm(): Term {
    return this.runs.length === 0 ? this.purgedTerm : this.runs[this.runs.length - 1]!.term;
  }

  /** The first index the log holds (purgedThrough + 1; lastIndex + 1 when it holds none). */
  get firstIndex(): LogIndex {
    return (this.purged + 1) as LogIndex;
  }

  /** The last purged index (0 when none): its term is still known, those below it are not. */
  get purgedThrough(): LogIndex {
    return this.purged as LogIndex;
  }

  /** The term at `index`; 0 at index 0; null beyond the last index, or below the last purged one. */
  termAt(index: LogIndex): Term | null {
    if (index === 0) return 0 as Term;
    if (index === this.purged) return this.purgedTerm;
    if (index < this.purged || index > this.last) return null;
    return this.runs[this.runIndexOf(index)]!.term;
  }

  /** The first index holding the same term as `index` (the fast-backtrack hint, paper 5.3); never below the log's first index. */
  firstIndexOfTermAt(index: LogIndex): LogIndex {
    if (index <= this.purged || index > this.last) throw new InvariantViolation(`firstIndexOfTermAt(${index}) outside ${this.purged + 1}..${this.last}`);
    return Math.max(this.purged + 1, this.runs[this.runIndexOf(index)]!.start) as LogIndex;
  }

  /** Cached entries [from, toExclusive); null if any is evicted, purged or beyond the last index. */
  entries(from: LogIndex, toExclusive: LogIndex): Entry[] | null {
    if (from < 1 || toExclusive < from) throw new RangeError(`entries(${from}, ${toExclusive}): bad range`);
    if (from < this.firstCached || toExclusive > this.last + 1) return null;
    const base = this.evicted - this.firstCached;
    return this.cache.slice(base + from, base + toExclusive);
  }

  /** Appends entries that must continue the log: consecutive indices, terms never going down. */
  append(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index !== this.last + 1) throw new InvariantViolation(`append: entry index ${e.index}, expected ${this.last + 1}`);
      const lastTerm = this.lastTerm;
      if (e.term < lastTerm) throw new InvariantViolation(`append: entry ${e.index} has term ${e.term} below the previous term ${lastTerm}`);
      if (e.term !== lastTerm || this.runs.length === 0) this.runs.push({ start: e.index, term: e.term });
      this.cache.push(e);
      this.last = e.index;
    }
  }

  /** Deletes every entry at index >= `from` (a follower repairing its log). */
  truncateFrom(from: LogIndex): void {
    if (from <= this.purged || from > this.last) throw new InvariantViolation(`truncateFrom(${from}) outside ${this.purged + 1}..${this.last}`);
    if (from < this.firstCached) throw new InvariantViolation(`truncateFrom(${from}) below the cache start ${this.firstCached}: evicted entries are applied`);
    this.cache.length = this.evicted + (from - this.firstCached);
    while (this.runs.length > 0 && this.runs[this.runs.length - 1]!.start >= from) this.runs.pop();
    this.last = from - 1;
  }

  /**
   * Forgets every entry at index <= `throughIndex` (covered by a snapshot whose term at that index is
   * `term`). Past the last index, the log becomes empty and continues at throughIndex + 1.
   */
  purgeThrough(throughIndex: LogIndex, term: Term): void {
    if (throughIndex <= this.purged) return;
    if (throughIndex <= this.last) {
      const known = this.termAt(throughIndex);
      if (known !== term) throw new InvariantViolation(`purgeThrough(${throughIndex}) with term ${term}, but the log has term ${known} there`);
    }
    this.purged = throughIndex;
    this.purgedTerm = term;
    if (throughIndex >= this.last) {
      this.runs = [];
      this.cache = [];
      this.evicted = 0;
      this.last = throughIndex;
      this.firstCached = throughIndex + 1;
      return;
    }
    // Drop the runs that end at or before the purge point; the one holding the first index stays.
    let drop = 0;
    while (drop + 1 < this.runs.length && this.runs[drop + 1]!.start <= throughIndex + 1) drop++;
    if (drop > 0) this.runs = this.runs.slice(drop);
    if (this.firstCached <= throughIndex) {
      const n = throughIndex + 1 - this.firstCached;
      this.evicted += n;
      this.firstCached = throughIndex + 1;
    }
    if (this.evicted >= COMPACT_AFTER_EVICTED && this.evicted * 2 >= this.cache.length) {
      this.cache = this.cache.slice(this.evicted);
      this.evicted = 0;
    }
  }

  /** Evicts cached entries at index <= `throughIndex`, oldest first, while the cache is over its cap. */
  evict(throughIndex: LogIndex): void {
    while (this.last - this.firstCached + 1 > this.maxCachedEntries && this.firstCached <= throughIndex) {
      this.firstCached++;
      this.evicted++;
    }
    if (this.evicted >= COMPACT_AFTER_EVICTED && this.evicted * 2 >= this.cache.length) {
      this.cache = this.cache.slice(this.evicted);
      this.evicted = 0;
    }
  }

  /** First index still in the cache (last + 1 when the cache is empty). */
  get firstCachedIndex(): LogIndex {
    return this.firstCached as LogIndex;
  }

  private runIndexOf(index: number): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runs[mid]!.start <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
