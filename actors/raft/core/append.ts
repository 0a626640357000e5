/**
 * The follower's side of AppendEntries as a pure decision (paper 5.3): does the request fit our log,
 * and if so, what must be cut and what appended. Executing the plan is the core's job.
 */
import { InvariantViolation } from './errors';
import type { AppendEntriesRequest, ConflictHint, Entry, LogIndex, Term } from './types';

/** The part of the log a plan reads. */
export interface LogView {
  readonly lastIndex: LogIndex;
  /** Entries at or below this are covered by our snapshot (committed); 0 when there is none. */
  readonly purgedThrough: LogIndex;
  termAt(index: LogIndex): Term | null;
  firstIndexOfTermAt(index: LogIndex): LogIndex;
}

export type AppendPlan =
  /** The log does not contain prevLogIndex with prevLogTerm; `conflict` says where to retry. */
  | { readonly kind: 'mismatch'; readonly conflict: ConflictHint }
  /**
   * The log matches through prevLogIndex. Cut at `truncateFrom` (if set), then append `newEntries`.
   * `lastNewIndex` is the last index the request covered (prevLogIndex + entries.length).
   */
  | { readonly kind: 'match'; readonly truncateFrom: LogIndex | null; readonly newEntries: readonly Entry[]; readonly lastNewIndex: LogIndex };

/**
 * @example
 * planAppend(log, { ...req, prevLogIndex: 9 }) // log ends at 5: { kind: 'mismatch', conflict: { index: 6, term: 0 } }
 */
export function planAppend(log: LogView, req: AppendEntriesRequest): AppendPlan {
  const { prevLogIndex, prevLogTerm, entries } = req;
  const floor = log.purgedThrough;
  if (prevLogIndex < floor) {
    // Entries through our snapshot are committed, so they are the same in every leader's log
    // (Leader Completeness): skip them and go on from the snapshot's last index, whose term we know.
    const skip = floor - prevLogIndex;
    if (entries.length <= skip) return { kind: 'match', truncateFrom: null, newEntries: [], lastNewIndex: (prevLogIndex + entries.length) as LogIndex };
    return planAppend(log, { ...req, prevLogIndex: floor, prevLogTerm: log.termAt(floor)!, entries: entries.slice(skip) });
  }
  if (prevLogIndex > log.lastIndex) {
    return { kind: 'mismatch', conflict: { index: (log.lastIndex + 1) as LogIndex, term: 0 as Term } };
  }
  const ourPrevTerm = log.termAt(prevLogIndex)!;
  if (ourPrevTerm !== prevLogTerm) {
    return { kind: 'mismatch', conflict: { index: log.firstIndexOfTermAt(prevLogIndex), term: ourPrevTerm } };
  }
  entries.forEach((e, k) => {
    if (e.index !== prevLogIndex + k + 1) throw new InvariantViolation(`appendEntries entry ${k} has index ${e.index}, expected ${prevLogIndex + k + 1}`);
  });
  const lastNewIndex = (prevLogIndex + entries.length) as LogIndex;
  // Skip what we already hold (a retry or a reordered duplicate must not truncate: paper 5.3 says cut
  // only when an existing entry conflicts with a new one).
  let k = 0;
  while (k < entries.length && entries[k]!.index <= log.lastIndex && log.termAt(entries[k]!.index) === entries[k]!.term) k++;
  if (k === entries.length) return { kind: 'match', truncateFrom: null, newEntries: [], lastNewIndex };
  const first = entries[k]!;
  const truncateFrom = first.index <= log.lastIndex ? first.index : null;
  return { kind: 'match', truncateFrom, newEntries: entries.slice(k), lastNewIndex };
}
