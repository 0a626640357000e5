/**
 * What every record-log storage does the same way (FileStorage, and the simulator's SimStorage):
 * turn a storage write into the records that make it durable, after checking it against the
 * in-memory view of the log, and rebuild that view from the records on recovery.
 *
 * Validation happens before anything is written: a refused write (a gap, an index below 1) changes
 * neither the view nor the file.
 */
import { decodeEntries, encodeEntries } from '../actors/raft/codec';
import type { Entry, HardState, LogIndex } from '../actors/raft/core/types';
import { MemoryStore, validIndex } from './memory-storage';
import { CorruptLogError, MAX_RECORD_BYTES, type LogRecord } from './record-log';
import { StorageContractError, type StorageMsg } from './storage';

/** One record to write, with its entries decoded (for an append) so nobody decodes them twice. */
export interface PlannedRecord {
  readonly rec: LogRecord;
  readonly entries?: readonly Entry[];
}

/** A log write, already applied to the view: the records to make durable and the answer to give once they are. */
export interface PlannedWrite {
  readonly records: readonly PlannedRecord[];
  /** The answer to the storage message (the new last index, or undefined). */
  readonly value: unknown;
  /** Set when entries at index >= truncateFrom were cut from the view. */
  readonly truncateFrom: LogIndex | null;
  readonly entries: readonly Entry[];
}

export type LogWriteMsg = Extract<StorageMsg, { type: 'appendEntries' | 'replicateEntries' | 'truncate' }>;

/**
 * Applies a log write to the view and returns the records that make it durable (none for a no-op).
 * Throws StorageContractError (leaving the view as it was) when the write would break the log.
 * @example const w = planLogWrite(store, msg); for (const r of w.records) file.write(encodeRecord(r.rec));
 */
export function planLogWrite(store: MemoryStore, msg: LogWriteMsg, maxRecordBytes = MAX_APPEND_RECORD_BYTES): PlannedWrite {
  switch (msg.type) {
    case 'appendEntries': {
      const entries = decodeEntries(msg.entries);
      const last = store.append(entries);
      return { records: appendRecords(msg.entries, entries, maxRecordBytes), value: last, truncateFrom: null, entries };
    }
    case 'replicateEntries': {
      const entries = decodeEntries(msg.entries);
      const from = msg.truncateFrom === null ? null : validIndex(msg.truncateFrom, 'truncateFrom');
      const { last, truncated } = store.replicate(from, entries);
      const records: PlannedRecord[] = [];
      if (truncated) records.push({ rec: { type: 'truncate', from: from! } });
      records.push(...appendRecords(msg.entries, entries, maxRecordBytes));
      return { records, value: last, truncateFrom: truncated ? from : null, entries };
    }
    case 'truncate': {
      const from = validIndex(msg.from, 'from');
      const cut = from <= store.lastIndex();
      store.truncate(from); // refuses an index below 1
      return { records: cut ? [{ rec: { type: 'truncate', from } }] : [], value: undefined, truncateFrom: cut ? from : null, entries: [] };
    }
    default: {
      const never: never = msg;
      throw new StorageContractError(`not a log write: ${JSON.stringify((never as { type?: unknown }).type)}`);
    }
  }
}

/** Most bytes of entries one append record carries; a bigger batch is split (each entry fits: payloads are at most 64 MiB). */
export const MAX_APPEND_RECORD_BYTES = MAX_RECORD_BYTES / 2;

/**
 * The append records for a batch: one record of the bytes as they came, or, for a batch too big
 * for one record, several (a crash between them leaves a prefix of the batch, which is a valid log).
 */
function appendRecords(bytes: Uint8Array, entries: readonly Entry[], max: number): PlannedRecord[] {
  if (entries.length === 0) return [];
  if (bytes.byteLength <= max) return [{ rec: { type: 'append', entries: bytes }, entries }];
  const out: PlannedRecord[] = [];
  let chunk: Entry[] = [];
  let size = 0;
  const flush = () => { if (chunk.length > 0) out.push({ rec: { type: 'append', entries: encodeEntries(chunk) }, entries: chunk }); chunk = []; size = 0; };
  for (const e of entries) {
    const n = entryBytes(e);
    if (size + n > max) flush();
    chunk.push(e);
    size += n;
  }
  flush();
  return out;
}

/** An upper bound on the encoded size of one entry (header, length, body). */
function entryBytes(e: Entry): number {
  return 32 + (e.kind === 'normal' ? e.payload.byteLength : e.kind === 'config' ? 64 * (e.membership.members.length + e.membership.nonVoters.length + (e.membership.membersAfterConsensus?.length ?? 0) + 1) : 0);
}

/**
 * Replays one recovered record into the view. A record that does not fit the log rebuilt so far (an
 * append that leaves a gap, entries that do not decode) is damage: CorruptLogError at its offset.
 * Returns the hard state when the record carries one, and the last entry index an append carried
 * (0 for other records). Seal and logStart records are the caller's business.
 *
 * A view that starts after a purge (firstIndex > 1, set by the caller from FileStorage's log-start)
 * replays records written before the purge too: an append keeps only its entries at or above
 * firstIndex, and a truncation below firstIndex empties the view (it cut every entry above the purge
 * point that existed then). That is the exact log restricted to indexes above the purge point.
 */
export function replayRecord(store: MemoryStore, rec: LogRecord, file: string, offset: number): { readonly hardState: HardState | null; readonly lastEntry: number } {
  try {
    switch (rec.type) {
      case 'hardState': return { hardState: rec.hardState, lastEntry: 0 };
      case 'truncate':
        if (rec.from >= 1 && rec.from < store.firstIndex) store.log = [];
        else store.truncate(rec.from);
        return { hardState: null, lastEntry: 0 };
      case 'append': {
        const entries = decodeEntries(rec.entries);
        const kept = entries.length > 0 && entries[0].index < store.firstIndex ? entries.filter((e) => e.index >= store.firstIndex) : entries;
        store.append(kept);
        return { hardState: null, lastEntry: entries.length === 0 ? 0 : entries[entries.length - 1].index };
      }
      case 'purge': store.purgeUnchecked(rec.throughIndex); return { hardState: null, lastEntry: 0 };
      case 'snapshotMeta': store.snapshot = rec.meta; return { hardState: null, lastEntry: 0 };
      case 'seal': case 'logStart': return { hardState: null, lastEntry: 0 };
    }
  } catch (err) {
    throw new CorruptLogError(file, offset, `a ${rec.type} record that does not fit the log before it (${(err as Error).message})`);
  }
}
