/**
 * Which prefix of the in-memory log is on disk (seed 002 rule 3 and the leader's self-count). Storage
 * acknowledges appendLog commands in the order they were issued; a truncation issued after an append
 * means the append's tail, once on disk, is no longer our log, so its ack only covers what survives.
 */
import { InvariantViolation } from './errors';
import type { LogIndex } from './types';

interface PendingAppend {
  readonly lastIndex: LogIndex;
  readonly truncateFrom: LogIndex | null;
}

/**
 * @example
 * const d = new LogDurability(0 as LogIndex);
 * d.issued(3 as LogIndex, null);
 * d.acked(3 as LogIndex); // d.durableIndex === 3
 */
export class LogDurability {
  private readonly pending: PendingAppend[] = [];
  private durable: LogIndex;

  constructor(durableIndex: LogIndex) {
    this.durable = durableIndex;
  }

  /** Every entry through this index of the current log is on disk. */
  get durableIndex(): LogIndex {
    return this.durable;
  }

  /** An appendLog command was emitted; entries at >= truncateFrom are no longer durable ones of ours. */
  issued(lastIndex: LogIndex, truncateFrom: LogIndex | null): void {
    if (truncateFrom !== null && truncateFrom - 1 < this.durable) this.durable = (truncateFrom - 1) as LogIndex;
    this.pending.push({ lastIndex, truncateFrom });
  }

  /**
   * `logPersisted(index)` arrived. One ack per command is the contract; an ack may also stand for
   * every earlier command (storage group-commits in order), so heads up to the first command ending
   * at `index` are retired. Returns true when durableIndex moved.
   */
  acked(index: LogIndex): boolean {
    const at = this.pending.findIndex((p) => p.lastIndex === index);
    if (at < 0) throw new InvariantViolation(`logPersisted(${index}) matches no pending appendLog`);
    this.pending.splice(0, at + 1);
    let durable: number = index;
    // Truncations issued after this append cut its tail out of our log.
    for (const p of this.pending) if (p.truncateFrom !== null) durable = Math.min(durable, p.truncateFrom - 1);
    if (durable < this.durable) throw new InvariantViolation(`durable index would go back from ${this.durable} to ${durable}`);
    const moved = durable !== this.durable;
    this.durable = durable as LogIndex;
    return moved;
  }
}
