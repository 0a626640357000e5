/**
 * Sequencing of hard-state saves (seed 002 rules 1 and 2). Every change in one step goes out as one
 * `saveHardState(seq)`; storage acknowledges seqs in order, and anything promised under a seq (a vote
 * asked for, a vote given) waits until that seq is durable.
 */
import { InvariantViolation } from './errors';

/**
 * @example
 * const seq = saves.markDirty();   // the term or vote changed
 * saves.takeUnsaved();             // === seq: emit saveHardState with it
 * saves.acked(seq);                // hardStatePersisted(seq) arrived: saves.isDurable(seq)
 */
export class HardStateSaves {
  private lastSeq = 0;
  private durableSeq = 0;
  private unsavedSeq: number | null = null;

  /** The hard state changed this step; returns the seq its save will carry (one save per step). */
  markDirty(): number {
    if (this.unsavedSeq === null) this.unsavedSeq = ++this.lastSeq;
    return this.unsavedSeq;
  }

  /** The seq to emit a save for at the end of this step, if anything changed; then forgets it. */
  takeUnsaved(): number | null {
    const seq = this.unsavedSeq;
    this.unsavedSeq = null;
    return seq;
  }

  /** `hardStatePersisted(seq)`; returns true when the durable seq moved. */
  acked(seq: number): boolean {
    if (seq > this.lastSeq || seq === this.unsavedSeq) throw new InvariantViolation(`hardStatePersisted(${seq}) for a hard state never issued`);
    if (seq <= this.durableSeq) return false;
    this.durableSeq = seq;
    return true;
  }

  isDurable(seq: number): boolean {
    return seq <= this.durableSeq;
  }

  get durable(): number {
    return this.durableSeq;
  }

  /** The seq a message made now must wait for: the latest one, or 0 when everything is durable. */
  get awaited(): number {
    return this.lastSeq > this.durableSeq ? this.lastSeq : 0;
  }
}
