/**
 * The snapshot benchmark's state machine (bench/snapshots.ts): a map of latin1 strings whose
 * commands insert many keys, or one big value, per log entry, so a 100 MB or 1M-key state is
 * filled in about a hundred entries. It snapshots in one of two encodings:
 *
 *   binary  `u32 count, f64 applied`, then per key `u32 keyLength, key, u32 valueLength, value`
 *           (latin1 bytes, written straight into one preallocated buffer);
 *   json    exactly what the KV example does: JSON.stringify({ applied, data: [...map] }), UTF-8.
 *
 * It times its own snapshot() and restore() and answers them to the query `{ q: 'stats' }`, so the
 * bench can tell encoding from storage and transfer.
 *
 * Command (one entry): `u8 op (1 = put many), u32 count`, then per key
 * `u32 keyLength, key bytes, u32 valueLength, value bytes`. Any other payload is counted and ignored.
 */
import type { StateMachine } from '../actors/apply/state-machine';
import type { Entry, LogIndex, SnapshotMeta } from '../actors/raft/core/types';

export type SnapshotEncoding = 'binary' | 'json';

export interface SnapBenchArgs { readonly encoding?: SnapshotEncoding }

export interface SnapBenchStats {
  readonly applied: number;
  readonly keys: number;
  /** Sum of key and value lengths. */
  readonly dataBytes: number;
  readonly snapshots: number;
  /** snapshot() of the latest snapshot: milliseconds and bytes. */
  readonly lastEncodeMs: number;
  readonly lastEncodeBytes: number;
  /** Sum of snapshot() milliseconds since start. */
  readonly totalEncodeMs: number;
  readonly restores: number;
  /** restore() of the latest restore: milliseconds, bytes (the chunks joined and decoded). */
  readonly lastDecodeMs: number;
  readonly lastDecodeBytes: number;
}

const OP_PUT_MANY = 1;

/** Encodes a put-many command of `pairs` (latin1 / ASCII strings). */
export function encodePutMany(pairs: readonly (readonly [string, string])[]): Uint8Array {
  let size = 5;
  for (const [k, v] of pairs) size += 8 + k.length + v.length;
  const b = Buffer.allocUnsafe(size);
  b[0] = OP_PUT_MANY;
  b.writeUInt32LE(pairs.length, 1);
  let at = 5;
  for (const [k, v] of pairs) {
    b.writeUInt32LE(k.length, at); at += 4;
    at += b.write(k, at, 'latin1');
    b.writeUInt32LE(v.length, at); at += 4;
    at += b.write(v, at, 'latin1');
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class SnapBenchStateMachine implements StateMachine {
  private data = new Map<string, string>();
  private applied = 0 as LogIndex;
  private dataBytes = 0;
  private snapshots = 0;
  private lastEncodeMs = 0;
  private lastEncodeBytes = 0;
  private totalEncodeMs = 0;
  private restores = 0;
  private lastDecodeMs = 0;
  private lastDecodeBytes = 0;

  constructor(private readonly encoding: SnapshotEncoding) {}

  lastApplied(): LogIndex { return this.applied; }

  apply(entries: readonly Entry[]): undefined[] {
    for (const e of entries) {
      if (e.kind === 'normal' && e.payload.byteLength >= 5 && e.payload[0] === OP_PUT_MANY) this.putMany(asBuffer(e.payload));
      this.applied = e.index;
    }
    return new Array<undefined>(entries.length).fill(undefined);
  }

  private putMany(b: Buffer): void {
    const n = b.readUInt32LE(1);
    let at = 5;
    for (let i = 0; i < n && at + 8 <= b.byteLength; i++) {
      const kl = b.readUInt32LE(at); at += 4;
      const k = b.toString('latin1', at, at + kl); at += kl;
      const vl = b.readUInt32LE(at); at += 4;
      const v = b.toString('latin1', at, at + vl); at += vl;
      const old = this.data.get(k);
      if (old !== undefined) this.dataBytes -= k.length + old.length;
      this.data.set(k, v);
      this.dataBytes += k.length + v.length;
    }
  }

  snapshot(): Uint8Array {
    const t = performance.now();
    let out: Uint8Array;
    if (this.encoding === 'json') {
      out = new TextEncoder().encode(JSON.stringify({ applied: this.applied, data: [...this.data] }));
    } else {
      const b = Buffer.allocUnsafe(12 + 8 * this.data.size + this.dataBytes);
      b.writeUInt32LE(this.data.size, 0);
      b.writeDoubleLE(this.applied, 4);
      let at = 12;
      for (const [k, v] of this.data) {
        b.writeUInt32LE(k.length, at); at += 4;
        at += b.write(k, at, 'latin1');
        b.writeUInt32LE(v.length, at); at += 4;
        at += b.write(v, at, 'latin1');
      }
      out = new Uint8Array(b.buffer, b.byteOffset, at);
    }
    this.snapshots++;
    this.lastEncodeMs = performance.now() - t;
    this.totalEncodeMs += this.lastEncodeMs;
    this.lastEncodeBytes = out.byteLength;
    return out;
  }

  async restore(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    const t = performance.now();
    const all = parts.length === 1 ? asBuffer(parts[0]) : Buffer.concat(parts);
    const data = new Map<string, string>();
    let bytes = 0;
    let applied: number;
    if (this.encoding === 'json') {
      const parsed = JSON.parse(new TextDecoder().decode(all)) as { applied: number; data: [string, string][] };
      applied = parsed.applied;
      for (const [k, v] of parsed.data) { data.set(k, v); bytes += k.length + v.length; }
    } else {
      const n = all.readUInt32LE(0);
      applied = all.readDoubleLE(4);
      let at = 12;
      for (let i = 0; i < n; i++) {
        const kl = all.readUInt32LE(at); at += 4;
        const k = all.toString('latin1', at, at + kl); at += kl;
        const vl = all.readUInt32LE(at); at += 4;
        const v = all.toString('latin1', at, at + vl); at += vl;
        data.set(k, v);
        bytes += kl + vl;
      }
    }
    if (applied !== meta.lastIncludedIndex) throw new Error(`bench snapshot holds index ${applied}, its meta says ${meta.lastIncludedIndex}`);
    this.data = data;
    this.dataBytes = bytes;
    this.applied = meta.lastIncludedIndex;
    this.restores++;
    this.lastDecodeMs = performance.now() - t;
    this.lastDecodeBytes = all.byteLength;
  }

  query(q: { q: 'stats' }): SnapBenchStats {
    if (q?.q !== 'stats') throw new TypeError(`unknown query ${JSON.stringify(q)}`);
    return {
      applied: this.applied, keys: this.data.size, dataBytes: this.dataBytes,
      snapshots: this.snapshots, lastEncodeMs: this.lastEncodeMs, lastEncodeBytes: this.lastEncodeBytes, totalEncodeMs: this.totalEncodeMs,
      restores: this.restores, lastDecodeMs: this.lastDecodeMs, lastDecodeBytes: this.lastDecodeBytes,
    };
  }
}

/** Module entry for the Apply actor: `{ module: SNAP_BENCH_MODULE, export: 'createSnapBench', args: { encoding: 'binary' } }`. */
export function createSnapBench(args: SnapBenchArgs = {}): SnapBenchStateMachine {
  const encoding = args.encoding ?? 'binary';
  if (encoding !== 'binary' && encoding !== 'json') throw new TypeError(`encoding must be 'binary' or 'json', got ${String(encoding)}`);
  return new SnapBenchStateMachine(encoding);
}
export const SNAP_BENCH_MODULE = __filename;
