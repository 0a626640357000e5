/**
 * MemoryStorage: the RaftStorage contract held in memory. For tests, demos and the simulator.
 * "Durable" here means "held by this actor": a node restarted on a fresh MemoryStorage starts
 * pristine. Use `shared: true` semantics via `MemoryStore` to keep state across a restart of the
 * actor on the same thread (local placement), as the simulator does.
 */
import type { Actor } from '../runtime/actor';
import { decodeEntries, encodeEntries } from '../actors/raft/codec';
import { INDEX_ZERO, TERM_ZERO } from '../actors/raft/core/types';
import type { Entry, HardState, LogIndex } from '../actors/raft/core/types';
import { StorageContractError, type StorageMsg, type StoredState } from './storage';

/** The data behind a MemoryStorage actor. */
export class MemoryStore {
  hardState: HardState = { currentTerm: TERM_ZERO, votedFor: null };
  readonly log: Entry[] = [];

  lastIndex(): LogIndex { return (this.log.length === 0 ? INDEX_ZERO : this.log[this.log.length - 1].index) as LogIndex; }

  append(entries: readonly Entry[]): LogIndex {
    if (entries.length > 0 && entries[0].index !== this.lastIndex() + 1) {
      throw new StorageContractError(`append at index ${entries[0].index} leaves a gap after last index ${this.lastIndex()}`);
    }
    for (const e of entries) this.log.push(e);
    return this.lastIndex();
  }

  truncate(from: LogIndex): void {
    if (from < 1) throw new StorageContractError(`truncate from ${from}: indexes start at 1`);
    if (from <= this.lastIndex()) this.log.length = from - 1;
  }

  /**
   * The follower path: if `from` is set, delete entries at index >= from, then append. Validates
   * everything before changing anything, so a refused write leaves the log as it was. Returns the
   * new last index, and whether entries were actually cut.
   */
  replicate(from: LogIndex | null, entries: readonly Entry[]): { readonly last: LogIndex; readonly truncated: boolean } {
    if (from !== null && from < 1) throw new StorageContractError(`truncate from ${from}: indexes start at 1`);
    const end = from === null ? this.lastIndex() : Math.min(from - 1, this.lastIndex());
    if (entries.length > 0 && entries[0].index !== end + 1) {
      throw new StorageContractError(`replicate at index ${entries[0].index} leaves a gap after index ${end}`);
    }
    const truncated = from !== null && from <= this.lastIndex();
    if (from !== null) this.truncate(from);
    return { last: this.append(entries), truncated };
  }

  slice(from: LogIndex, toExclusive: LogIndex): Entry[] {
    const lo = Math.max(1, from);
    const hi = Math.min(toExclusive, this.lastIndex() + 1);
    return hi > lo ? this.log.slice(lo - 1, hi - 1) : [];
  }
}

/** A log index from a storage message, checked: a non-negative safe integer, else StorageContractError. */
export function validIndex(v: unknown, what: string): LogIndex {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new StorageContractError(`${what} must be a non-negative integer, got ${String(v)}`);
  return v as LogIndex;
}

/** The storage actor over a MemoryStore. */
export class MemoryStorageActor implements Actor<StorageMsg> {
  constructor(readonly store: MemoryStore = new MemoryStore()) {}

  receive(msg: StorageMsg): unknown {
    switch (msg.type) {
      case 'getInitialState':
        return { hardState: this.store.hardState, entries: encodeEntries(this.store.log) } satisfies StoredState;
      case 'saveHardState':
        this.store.hardState = { currentTerm: msg.hardState.currentTerm, votedFor: msg.hardState.votedFor };
        return undefined;
      case 'appendEntries':
        return this.store.append(decodeEntries(msg.entries));
      case 'replicateEntries':
        return this.store.replicate(msg.truncateFrom === null ? null : validIndex(msg.truncateFrom, 'truncateFrom'), decodeEntries(msg.entries)).last;
      case 'truncate':
        this.store.truncate(validIndex(msg.from, 'from'));
        return undefined;
      case 'getEntries':
        return encodeEntries(this.store.slice(validIndex(msg.from, 'from'), validIndex(msg.toExclusive, 'toExclusive')));
      default: {
        const never: never = msg;
        throw new StorageContractError(`unknown storage message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }
}

/** Module entry for any placement: `{ module: MEMORY_STORAGE_MODULE, export: 'createMemoryStorage', args: {} }`. */
export function createMemoryStorage(): MemoryStorageActor {
  return new MemoryStorageActor();
}
export const MEMORY_STORAGE_MODULE = __filename;
