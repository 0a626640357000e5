/**
 * The RaftStorage contract: the messages a storage actor must answer (as `ask`s, in the order they
 * arrive). Swap in your own storage by writing an actor module that answers these; run the
 * conformance tests in test/storage against it.
 *
 * Entries travel encoded (actors/raft/codec.ts `encodeEntries`): one buffer per batch, so a batch
 * crosses a thread as bytes, and a durable store can write it without re-encoding.
 *
 * Durability: an answer to `saveHardState`, `appendEntries` or `replicateEntries` means the data is
 * durable (seed 002). The Raft actor relies on it to vote, to answer AppendEntries and to count
 * itself toward a quorum.
 */
import type { HardState, LogIndex } from '../actors/raft/core/types';

export type StorageMsg =
  /** Everything durable, for a (re)starting node. Answer: `StoredState`. */
  | { readonly type: 'getInitialState' }
  /** Make term and vote durable. Answer: undefined. */
  | { readonly type: 'saveHardState'; readonly hardState: HardState }
  /** Leader path: append entries that follow the last one. Answer: the new last index. */
  | { readonly type: 'appendEntries'; readonly entries: Uint8Array }
  /**
   * Follower path: if `truncateFrom` is set, delete entries at index >= truncateFrom, then append.
   * Answer: the new last index.
   */
  | { readonly type: 'replicateEntries'; readonly truncateFrom: LogIndex | null; readonly entries: Uint8Array }
  /** Delete every entry at index >= from. Answer: undefined. */
  | { readonly type: 'truncate'; readonly from: LogIndex }
  /** Entries in [from, toExclusive), encoded. Answer: Uint8Array (fewer if the log ends first). */
  | { readonly type: 'getEntries'; readonly from: LogIndex; readonly toExclusive: LogIndex };

/** What `getInitialState` answers. */
export interface StoredState {
  readonly hardState: HardState;
  /** The whole log from index 1, encoded with `encodeEntries`. */
  readonly entries: Uint8Array;
}

/** Storage was asked to do something that would break the log (a gap, a truncation below 1...). */
export class StorageContractError extends Error {
  readonly code = 'StorageContract';
  constructor(readonly reason: string) {
    super(`storage contract violated: ${reason}`);
    this.name = 'StorageContractError';
  }
}
