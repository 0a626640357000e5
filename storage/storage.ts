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
import type { HardState, LogIndex, SnapshotMeta } from '../actors/raft/core/types';

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
  /**
   * Entries in [from, toExclusive), encoded. Answer: Uint8Array (fewer if the log ends first).
   * `from` below the first index held (purged behind a snapshot): LogPurgedError, with that index.
   */
  | { readonly type: 'getEntries'; readonly from: LogIndex; readonly toExclusive: LogIndex }
  /**
   * Delete every entry at index <= throughIndex: they are covered by the current snapshot, so
   * throughIndex <= its lastIncludedIndex (else StorageContractError). When throughIndex >= the
   * last index, the log becomes empty and continues at throughIndex + 1. Answer: undefined, once durable.
   */
  | { readonly type: 'purgeLog'; readonly throughIndex: LogIndex }
  /**
   * One chunk of snapshot `meta.id`. Offset 0 starts it (dropping any unfinished snapshot); any
   * other offset must equal the bytes received so far for that id (else StorageContractError, and
   * nothing is written). With `done`, the total length and crc32 must match `meta` (else
   * SnapshotChecksumError: the unfinished snapshot is dropped and the current one kept); then the
   * snapshot is made durable and becomes the current one, replacing (and deleting) the previous.
   * The log is not touched. Answer: undefined; after `done`, once durable.
   */
  | { readonly type: 'writeSnapshot'; readonly meta: SnapshotMeta; readonly offset: number; readonly data: Uint8Array; readonly done: boolean }
  /** Answer: the current, durable snapshot's SnapshotMeta, or null. */
  | { readonly type: 'getSnapshot' }
  /**
   * Up to `maxBytes` of the current snapshot's data from `offset`. Answer: Uint8Array (empty at the
   * end). SnapshotGoneError when `id` is no longer the current snapshot.
   */
  | { readonly type: 'readSnapshot'; readonly id: string; readonly offset: number; readonly maxBytes: number };

/** What `getInitialState` answers. */
export interface StoredState {
  readonly hardState: HardState;
  /** The current snapshot, or null. */
  readonly snapshot: SnapshotMeta | null;
  /** The index of the first entry held: 1, or purged-through + 1 (where the next entry goes when the log is empty). */
  readonly firstIndex: LogIndex;
  /** The whole log from `firstIndex`, encoded with `encodeEntries`. */
  readonly entries: Uint8Array;
}

/** `getEntries` asked for entries that were purged behind a snapshot: read the snapshot instead. */
export class LogPurgedError extends Error {
  readonly code = 'LogPurged';
  constructor(readonly firstIndex: number) {
    super(`entries below index ${firstIndex} were purged behind a snapshot`);
    this.name = 'LogPurgedError';
  }
}

/** `readSnapshot` named a snapshot that is no longer the current one (a newer one replaced it). */
export class SnapshotGoneError extends Error {
  readonly code = 'SnapshotGone';
  constructor(readonly id: string) {
    super(`snapshot ${id} is no longer the current snapshot`);
    this.name = 'SnapshotGoneError';
  }
}

/** A finished snapshot's bytes do not match its meta (length or crc32): it is refused, the previous kept. */
export class SnapshotChecksumError extends Error {
  readonly code = 'SnapshotChecksum';
  constructor(readonly id: string, readonly reason: string) {
    super(`snapshot ${id} refused: ${reason}; the previous snapshot is kept`);
    this.name = 'SnapshotChecksumError';
  }
}

/** Storage was asked to do something that would break the log (a gap, a truncation below 1...). */
export class StorageContractError extends Error {
  readonly code = 'StorageContract';
  constructor(readonly reason: string) {
    super(`storage contract violated: ${reason}`);
    this.name = 'StorageContractError';
  }
}
