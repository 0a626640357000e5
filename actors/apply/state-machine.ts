/**
 * The StateMachine contract ("bring your own state machine", seed 002). The Apply actor hosts one
 * and feeds it committed entries strictly in index order, in batches, each exactly once.
 */
import type { Entry, LogIndex, SnapshotMeta } from '../raft/core/types';

export interface StateMachine {
  /**
   * Applies a batch of consecutive committed entries. Returns one result per entry (blank and config
   * entries included; return undefined for those). Results are what a client writing with
   * responseMode 'applied' receives, so they must survive a structured clone.
   */
  apply(entries: readonly Entry[]): readonly unknown[] | Promise<readonly unknown[]>;
  /** The last index applied (0 when nothing was). Read at start, and after each restore. */
  lastApplied(): LogIndex | Promise<LogIndex>;
  /**
   * Optional: answers a read of this replica's local state (not linearizable: it reflects what this
   * node has applied). Used for inspection, such as comparing replicas after a test.
   */
  query?(q: unknown): unknown | Promise<unknown>;
  /**
   * Optional, for snapshots (seed 002): the whole state as of `lastApplied()`, as bytes (or chunks).
   * Called between apply batches, never during one. Without it the node never snapshots and its log
   * is never compacted.
   */
  snapshot?(): Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>;
  /**
   * Optional, paired with `snapshot`: replace the whole state with a snapshot's (the bytes some
   * node's `snapshot()` produced, already checked against their crc32). Afterwards `lastApplied()`
   * must be `meta.lastIncludedIndex`; the next batch applied starts right after it.
   */
  restore?(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): void | Promise<void>;
}

/**
 * How to build the state machine on the Apply actor's thread: a module path and an exported
 * factory `(args) => StateMachine`, or (local placement only) a factory function.
 * @example { module: require.resolve('./kv-state-machine'), export: 'createKv', args: {} }
 */
export type StateMachineSpec<A = unknown> =
  | { readonly module: string; readonly export: string; readonly args: A }
  | { readonly factory: () => StateMachine };
