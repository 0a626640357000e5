/**
 * A simulated disk: one append-only file per node, held in memory, that behaves like a real one
 * under power loss. A write lands in the page cache (pending) and survives a crash only once a
 * sync has covered it; a crash drops every unsynced byte, except that it may leave a torn prefix
 * of them at the end of the file (a write cut short by the power loss).
 *
 * The disk outlives the node's actors: a restarted node recovers from `durableBytes()`.
 */
import type { SeededRandom } from '../runtime/random';

/** How the disk behaves. Times are virtual milliseconds. */
export interface DiskOptions {
  /** Sync latency: `syncMinMs` plus a uniform draw up to `syncJitterMs`. */
  readonly syncMinMs: number;
  readonly syncJitterMs: number;
  /** Chance that a crash leaves a torn prefix of the unsynced bytes instead of dropping them all. */
  readonly tornWriteProbability: number;
}

export const DEFAULT_DISK: DiskOptions = Object.freeze({ syncMinMs: 1, syncJitterMs: 4, tornWriteProbability: 0.5 });

/** What a crash did to the file. */
export interface CrashEffect {
  /** Unsynced bytes the crash threw away. */
  readonly droppedBytes: number;
  /** Unsynced bytes that survived as a torn tail (0 when none). */
  readonly tornBytes: number;
}

/**
 * @example
 * const disk = new SimDisk('n1/raft.log', random);
 * disk.write(bytes); disk.sync();   // durable
 * disk.write(more); disk.crash();   // `more` is lost, or torn
 */
export class SimDisk {
  private durable: Uint8Array[] = [];
  private durableLength = 0;
  private pending: Uint8Array[] = [];
  private pendingLength = 0;
  /** Bumped by every crash: a handle opened before it writes nothing (the process that held it is dead). */
  private generationNo = 0;
  /** While > 1, syncs take this many times longer (a slow disk). */
  slowFactor = 1;
  bytesWritten = 0;
  syncs = 0;

  constructor(readonly file: string, private readonly random: SeededRandom, readonly options: DiskOptions = DEFAULT_DISK) {}

  get generation(): number { return this.generationNo; }

  /** Appends bytes to the page cache. */
  write(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.pendingLength += bytes.byteLength;
    this.bytesWritten += bytes.byteLength;
  }

  /** Every byte written so far is durable. */
  sync(): void {
    this.syncs++;
    for (const b of this.pending) this.durable.push(b);
    this.durableLength += this.pendingLength;
    this.pending = [];
    this.pendingLength = 0;
  }

  /** How long the next sync takes, drawn from the disk's random stream. */
  syncLatencyMs(): number {
    const { syncMinMs, syncJitterMs } = this.options;
    return (syncMinMs + (syncJitterMs > 0 ? this.random.nextFloat() * syncJitterMs : 0)) * this.slowFactor;
  }

  hasUnsynced(): boolean { return this.pendingLength > 0; }

  /** Power loss: unsynced bytes are dropped, or cut at a random byte (a torn write). */
  crash(): CrashEffect {
    this.generationNo++;
    const unsynced = this.pendingLength;
    let torn = 0;
    if (unsynced > 0 && this.random.nextFloat() < this.options.tornWriteProbability) {
      torn = this.random.nextInt(1, unsynced + 1) - 1; // 0..unsynced-1: never the whole of it
      if (torn > 0) {
        const all = concat(this.pending, unsynced);
        this.durable.push(all.slice(0, torn));
        this.durableLength += torn;
      }
    }
    this.pending = [];
    this.pendingLength = 0;
    return { droppedBytes: unsynced - torn, tornBytes: torn };
  }

  /** The file as a restarted node reads it. */
  durableBytes(): Uint8Array {
    const all = concat(this.durable, this.durableLength);
    this.durable = [all];
    return all;
  }

  /**
   * The file as the OS shows it: durable bytes, then the page cache. A process that restarts
   * without a power loss (its node failed on its own) reads this: its unsynced writes are still there.
   */
  readAll(): Uint8Array {
    if (this.pendingLength === 0) return this.durableBytes();
    return concat([this.durableBytes(), ...this.pending], this.durableLength + this.pendingLength);
  }

  /** Replaces the durable content (recovery truncating a torn tail). Only with nothing pending. */
  rewrite(bytes: Uint8Array): void {
    if (this.pendingLength > 0) throw new Error(`${this.file}: rewrite with unsynced writes pending`);
    this.durable = [bytes];
    this.durableLength = bytes.byteLength;
  }

  /** Flips one byte of the durable file (a test of corruption handling). */
  corrupt(offset: number): void {
    const all = this.durableBytes();
    if (!Number.isInteger(offset) || !(offset >= 0 && offset < all.byteLength)) throw new RangeError(`${this.file}: offset ${offset} outside 0..${all.byteLength - 1}`);
    all[offset] ^= 0xff;
  }

  get size(): number { return this.durableLength + this.pendingLength; }
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}
