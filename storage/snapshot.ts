/**
 * What every storage does the same way with snapshots (MemoryStorage, FileStorage, SimStorage):
 * check a snapshot's meta and the fields of `writeSnapshot` / `readSnapshot` at the boundary, and
 * decide what a chunk does to the snapshot being received. Where the bytes go is each storage's
 * business (memory, a `.tmp` file, the simulated disk).
 */
import { crc32 } from 'node:zlib';
import { validateMembership } from '../actors/raft/codec';
import type { LogIndex, SnapshotMeta, Term } from '../actors/raft/core/types';
import { SnapshotChecksumError, StorageContractError, type StorageMsg } from './storage';

/** A snapshot id: 1 to 128 chars of [A-Za-z0-9_-] (it names files). */
export const SNAPSHOT_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** Most bytes one `readSnapshot` may ask for. */
export const MAX_SNAPSHOT_READ_BYTES = 64 * 1024 * 1024;

function safeInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new StorageContractError(`${what} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/**
 * Checks a SnapshotMeta from a message (or a file) and returns a clean copy. StorageContractError
 * for a bad field, MalformedMessageError for a bad membership.
 */
export function validateSnapshotMeta(v: unknown): SnapshotMeta {
  if (v === null || typeof v !== 'object') throw new StorageContractError('snapshot meta must be an object');
  const m = v as Record<string, unknown>;
  if (typeof m.id !== 'string' || !SNAPSHOT_ID_RE.test(m.id)) throw new StorageContractError(`snapshot id must be 1 to 128 chars of [A-Za-z0-9_-], got ${JSON.stringify(m.id)}`);
  const lastIncludedIndex = safeInt(m.lastIncludedIndex, 'snapshot lastIncludedIndex', 1);
  const lastIncludedTerm = safeInt(m.lastIncludedTerm, 'snapshot lastIncludedTerm', 0);
  const membershipIndex = safeInt(m.membershipIndex, 'snapshot membershipIndex', 0);
  if (membershipIndex > lastIncludedIndex) throw new StorageContractError(`snapshot membershipIndex ${membershipIndex} is above its lastIncludedIndex ${lastIncludedIndex}`);
  const byteLength = safeInt(m.byteLength, 'snapshot byteLength', 0);
  const checksum = safeInt(m.checksum, 'snapshot checksum', 0);
  if (checksum > 0xffffffff) throw new StorageContractError(`snapshot checksum must be a u32 (crc32), got ${checksum}`);
  return {
    id: m.id, lastIncludedIndex: lastIncludedIndex as LogIndex, lastIncludedTerm: lastIncludedTerm as Term,
    membership: validateMembership(m.membership), membershipIndex: membershipIndex as LogIndex, byteLength, checksum,
  };
}

/** Two metas describe the same snapshot (every field equal). */
export function sameMeta(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The snapshot being received: its meta, the bytes so far and their running crc32. */
export interface IncomingSnapshot {
  readonly meta: SnapshotMeta;
  readonly received: number;
  readonly crc: number;
}

/** What one `writeSnapshot` chunk does, decided before anything is written. */
export interface ChunkPlan {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
  /** Offset 0: drop whatever was being received and start this one afresh. */
  readonly restart: boolean;
  /** The incoming snapshot once this chunk is added. */
  readonly next: IncomingSnapshot;
  /** `done` came and length and crc32 match: the snapshot is complete. */
  readonly complete: boolean;
  /** Set when the bytes do not match the meta (too many, or at `done` a wrong length or crc32): drop the unfinished snapshot and refuse. */
  readonly failure: SnapshotChecksumError | null;
}

/**
 * Checks a writeSnapshot message against the snapshot being received. Throws StorageContractError
 * (nothing changes) for a bad field or an offset that is not the bytes received so far for that id.
 * @example const p = planSnapshotChunk(this.incoming, msg); if (p.failure) { drop(); return replyError(p.failure); }
 */
export function planSnapshotChunk(incoming: IncomingSnapshot | null, msg: Extract<StorageMsg, { type: 'writeSnapshot' }>): ChunkPlan {
  const meta = validateSnapshotMeta(msg.meta);
  const offset = safeInt(msg.offset, 'writeSnapshot offset', 0);
  if (!(msg.data instanceof Uint8Array)) throw new StorageContractError('writeSnapshot data must be a Uint8Array');
  if (typeof msg.done !== 'boolean') throw new StorageContractError(`writeSnapshot done must be a boolean, got ${String(msg.done)}`);
  const restart = offset === 0;
  if (!restart) {
    if (incoming === null || incoming.meta.id !== meta.id) throw new StorageContractError(`writeSnapshot of ${meta.id} at offset ${offset}, but no bytes of it were received (start at offset 0)`);
    if (offset !== incoming.received) throw new StorageContractError(`writeSnapshot of ${meta.id} at offset ${offset}, but ${incoming.received} bytes were received so far`);
    if (!sameMeta(incoming.meta, meta)) throw new StorageContractError(`writeSnapshot of ${meta.id}: the meta differs from the one its first chunk carried`);
  }
  const received = offset + msg.data.byteLength;
  const crc = crc32(msg.data, restart ? 0 : incoming!.crc);
  const next: IncomingSnapshot = { meta, received, crc };
  let failure: SnapshotChecksumError | null = null;
  if (received > meta.byteLength) failure = new SnapshotChecksumError(meta.id, `${received} bytes received, more than its byteLength ${meta.byteLength}`);
  else if (msg.done && received !== meta.byteLength) failure = new SnapshotChecksumError(meta.id, `${received} bytes received, its byteLength is ${meta.byteLength}`);
  else if (msg.done && (crc >>> 0) !== meta.checksum) failure = new SnapshotChecksumError(meta.id, `crc32 of the bytes is ${crc >>> 0}, its checksum is ${meta.checksum}`);
  return { meta, data: msg.data, restart, next, complete: msg.done && failure === null, failure };
}

/**
 * Checks a readSnapshot message; returns its offset and how many bytes to read from a snapshot of
 * `byteLength` (0 at the end). The caller checks the id first (SnapshotGoneError).
 */
export function planSnapshotRead(msg: Extract<StorageMsg, { type: 'readSnapshot' }>, byteLength: number): { readonly offset: number; readonly length: number } {
  const offset = safeInt(msg.offset, 'readSnapshot offset', 0);
  const maxBytes = safeInt(msg.maxBytes, 'readSnapshot maxBytes', 1);
  if (maxBytes > MAX_SNAPSHOT_READ_BYTES) throw new StorageContractError(`readSnapshot maxBytes must be at most ${MAX_SNAPSHOT_READ_BYTES}, got ${maxBytes}`);
  if (offset > byteLength) throw new StorageContractError(`readSnapshot offset ${offset} is past the end of the snapshot (${byteLength} bytes)`);
  return { offset, length: Math.min(maxBytes, byteLength - offset) };
}

/** readSnapshot's id, checked: a string (any string; one that names no snapshot is SnapshotGoneError). */
export function readSnapshotId(msg: Extract<StorageMsg, { type: 'readSnapshot' }>): string {
  if (typeof msg.id !== 'string') throw new StorageContractError(`readSnapshot id must be a string, got ${String(msg.id)}`);
  return msg.id;
}

/** crc32 (node:zlib) of a snapshot's bytes, as SnapshotMeta.checksum holds it. */
export function snapshotChecksum(data: Uint8Array): number {
  return crc32(data) >>> 0;
}
