/**
 * MemoryStorage: the RaftStorage contract held in memory. For tests, demos and the simulator.
 * "Durable" here means "held by this actor": a node restarted on a fresh MemoryStorage starts
 * pristine. Use `shared: true` semantics via `MemoryStore` to keep state across a restart of the
 * actor on the same thread (local placement), as the simulator does.
 */
import { replyError, type Actor } from '../runtime/actor';
import { decodeEntries, encodeEntries } from '../actors/raft/codec';
import { MalformedMessageError } from '../actors/raft/core/errors';
import { TERM_ZERO } from '../actors/raft/core/types';
import type { Entry, HardState, LogIndex, SnapshotMeta } from '../actors/raft/core/types';
import { planSnapshotChunk, planSnapshotRead, readSnapshotId, type IncomingSnapshot } from './snapshot';
import {
  LogPurgedError, SnapshotChecksumError, SnapshotGoneError, StorageContractError, type StorageMsg, type StoredState,
} from './storage';

/** The data behind a MemoryStorage actor. */
export class MemoryStore {
  hardState: HardState = { currentTerm: TERM_ZERO, votedFor: null };
  /** The entries held, from `firstIndex`: `log[k]` has index `firstIndex + k`. */
  log: Entry[] = [];
  /** The index of the first entry held: 1, or purged-through + 1. Where the next entry goes when the log is empty. */
  firstIndex: LogIndex = 1 as LogIndex;
  /** The current snapshot (meta; the bytes where the storage keeps them: `snapshotData` here). */
  snapshot: SnapshotMeta | null = null;
  snapshotData: Uint8Array | null = null;
  /** The snapshot being received (not durable, not current), and its chunks so far. */
  incoming: IncomingSnapshot | null = null;
  incomingChunks: Uint8Array[] = [];

  lastIndex(): LogIndex { return (this.firstIndex - 1 + this.log.length) as LogIndex; }

  append(entries: readonly Entry[]): LogIndex {
    if (entries.length > 0 && entries[0].index !== this.lastIndex() + 1) {
      throw new StorageContractError(`append at index ${entries[0].index} leaves a gap after last index ${this.lastIndex()}`);
    }
    for (let k = 1; k < entries.length; k++) {
      if (entries[k].index !== entries[k - 1].index + 1) throw new StorageContractError(`entries of one batch must be consecutive: index ${entries[k].index} after ${entries[k - 1].index}`);
    }
    for (const e of entries) this.log.push(e);
    return this.lastIndex();
  }

  private checkTruncate(from: LogIndex): void {
    if (from < 1) throw new StorageContractError(`truncate from ${from}: indexes start at 1`);
    if (from < this.firstIndex) throw new StorageContractError(`truncate from ${from}: entries below ${this.firstIndex} were purged behind a snapshot`);
  }

  truncate(from: LogIndex): void {
    this.checkTruncate(from);
    if (from <= this.lastIndex()) this.log.length = from - this.firstIndex;
  }

  /**
   * The follower path: if `from` is set, delete entries at index >= from, then append. Validates
   * everything before changing anything, so a refused write leaves the log as it was. Returns the
   * new last index, and whether entries were actually cut.
   */
  replicate(from: LogIndex | null, entries: readonly Entry[]): { readonly last: LogIndex; readonly truncated: boolean } {
    if (from !== null) this.checkTruncate(from);
    const end = from === null ? this.lastIndex() : Math.min(from - 1, this.lastIndex());
    if (entries.length > 0 && entries[0].index !== end + 1) {
      throw new StorageContractError(`replicate at index ${entries[0].index} leaves a gap after index ${end}`);
    }
    for (let k = 1; k < entries.length; k++) {
      if (entries[k].index !== entries[k - 1].index + 1) throw new StorageContractError(`entries of one batch must be consecutive: index ${entries[k].index} after ${entries[k - 1].index}`);
    }
    const truncated = from !== null && from <= this.lastIndex();
    if (from !== null) this.truncate(from);
    return { last: this.append(entries), truncated };
  }

  /**
   * Entries in [from, toExclusive), clipped at the end. LogPurgedError when `from` is below the
   * first index held and something was purged (with nothing purged, index 0 is clipped as before).
   */
  slice(from: LogIndex, toExclusive: LogIndex): Entry[] {
    if (from < this.firstIndex && this.firstIndex > 1) throw new LogPurgedError(this.firstIndex);
    const lo = Math.max(this.firstIndex, from);
    const hi = Math.min(toExclusive, this.lastIndex() + 1);
    return hi > lo ? this.log.slice(lo - this.firstIndex, hi - this.firstIndex) : [];
  }

  /**
   * Checks a purge: a snapshot must cover `throughIndex`. Returns whether it changes anything
   * (a purge at or below what is already purged does not).
   */
  checkPurge(throughIndex: LogIndex): boolean {
    if (this.snapshot === null) throw new StorageContractError(`purgeLog through ${throughIndex}: there is no snapshot to cover the purged entries`);
    if (throughIndex > this.snapshot.lastIncludedIndex) {
      throw new StorageContractError(`purgeLog through ${throughIndex}: the snapshot covers only through ${this.snapshot.lastIncludedIndex}`);
    }
    return throughIndex >= this.firstIndex;
  }

  /** Deletes every entry at index <= throughIndex (checked with checkPurge); past the end the log empties and continues at throughIndex + 1. */
  purge(throughIndex: LogIndex): boolean {
    if (!this.checkPurge(throughIndex)) return false;
    this.purgeUnchecked(throughIndex);
    return true;
  }

  /** Recovery: replays a purge that was checked when it was made. */
  purgeUnchecked(throughIndex: LogIndex): void {
    if (throughIndex < this.firstIndex) return;
    if (throughIndex >= this.lastIndex()) this.log = [];
    else this.log = this.log.slice(throughIndex - this.firstIndex + 1);
    this.firstIndex = (throughIndex + 1) as LogIndex;
  }

  /**
   * One writeSnapshot chunk, with the bytes held here. Throws StorageContractError (nothing
   * changes), or SnapshotChecksumError (the unfinished snapshot is dropped, the current kept).
   */
  writeSnapshot(msg: Extract<StorageMsg, { type: 'writeSnapshot' }>): void {
    const p = planSnapshotChunk(this.incoming, msg);
    this.checkCovers(p.meta);
    if (p.failure) {
      this.incoming = null;
      this.incomingChunks = [];
      throw p.failure;
    }
    if (p.restart) this.incomingChunks = [];
    if (p.data.byteLength > 0) this.incomingChunks.push(new Uint8Array(p.data)); // a copy: the sender may reuse its buffer
    this.incoming = p.next;
    if (p.complete) {
      const data = concatBytes(this.incomingChunks, p.next.received);
      this.incoming = null;
      this.incomingChunks = [];
      this.snapshot = p.meta;
      this.snapshotData = data;
    }
  }

  /**
   * A snapshot must cover every purged entry: one that ends below the purge point would leave
   * entries in neither the log nor the snapshot. StorageContractError.
   */
  checkCovers(meta: SnapshotMeta): void {
    if (meta.lastIncludedIndex < this.firstIndex - 1) {
      throw new StorageContractError(`snapshot ${meta.id} ends at index ${meta.lastIncludedIndex}, below the purged log (entries through ${this.firstIndex - 1} are gone)`);
    }
  }

  /** The readSnapshot answer from bytes held here. SnapshotGoneError when `id` is not the current snapshot. */
  readSnapshot(msg: Extract<StorageMsg, { type: 'readSnapshot' }>): Uint8Array {
    const id = readSnapshotId(msg);
    if (this.snapshot === null || this.snapshot.id !== id || this.snapshotData === null) throw new SnapshotGoneError(id);
    const { offset, length } = planSnapshotRead(msg, this.snapshot.byteLength);
    return this.snapshotData.slice(offset, offset + length);
  }

  /** The getInitialState answer. */
  storedState(): StoredState {
    return { hardState: this.hardState, snapshot: this.snapshot, firstIndex: this.firstIndex, entries: encodeEntries(this.log) };
  }
}

/** One buffer of `parts` (`total` bytes). */
export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0].byteLength === total) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}

/** A log index from a storage message, checked: a non-negative safe integer, else StorageContractError. */
export function validIndex(v: unknown, what: string): LogIndex {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new StorageContractError(`${what} must be a non-negative integer, got ${String(v)}`);
  return v as LogIndex;
}

const STORAGE_MSG_TYPES: ReadonlySet<string> = new Set<StorageMsg['type']>([
  'getInitialState', 'saveHardState', 'appendEntries', 'replicateEntries', 'truncate', 'getEntries', 'purgeLog', 'writeSnapshot', 'getSnapshot', 'readSnapshot',
]);

/** Refusals a storage answers to the asker (the store is unchanged and goes on) rather than crash on. */
export function isRefusal(err: unknown): err is Error {
  return err instanceof StorageContractError || err instanceof MalformedMessageError || err instanceof LogPurgedError
    || err instanceof SnapshotGoneError || err instanceof SnapshotChecksumError;
}

/** Runs a storage actor's handler: a refusal goes back to the asker (replyError), anything else crashes the actor. */
export function answeringRefusals(handle: () => unknown): unknown {
  try {
    return handle();
  } catch (err) {
    if (isRefusal(err)) return replyError(err);
    throw err;
  }
}

/**
 * The storage actor over a MemoryStore. Refusals are answered with `replyError`: the actor goes on.
 * A message that is not a storage message at all (no object, an unknown type) is a bug in the
 * sender: it crashes the actor, and so fails the node (test/integration t60 relies on it).
 */
export class MemoryStorageActor implements Actor<StorageMsg> {
  constructor(readonly store: MemoryStore = new MemoryStore()) {}

  receive(msg: StorageMsg): unknown {
    if (msg === null || typeof msg !== 'object') throw new StorageContractError(`expected a storage message object, got ${String(msg)}`);
    if (!STORAGE_MSG_TYPES.has(msg.type)) throw new StorageContractError(`unknown storage message ${JSON.stringify((msg as { type?: unknown }).type)}`);
    return answeringRefusals(() => this.handle(msg));
  }

  private handle(msg: StorageMsg): unknown {
    switch (msg.type) {
      case 'getInitialState':
        return this.store.storedState();
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
      case 'purgeLog':
        this.store.purge(validIndex(msg.throughIndex, 'throughIndex'));
        return undefined;
      case 'writeSnapshot':
        this.store.writeSnapshot(msg);
        return undefined;
      case 'getSnapshot':
        return this.store.snapshot;
      case 'readSnapshot':
        return this.store.readSnapshot(msg);
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
