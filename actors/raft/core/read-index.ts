/**
 * Linearizable reads without writing to the log (thesis 6.4, etcd's ReadIndex). A read is safe at
 * index R once (1) the leader has committed an entry of its own term, so its commit index is the
 * cluster's, (2) R is its commit index at some moment after the read arrived, (3) a quorum has
 * answered a heartbeat sent after that moment, so no other leader had been elected when R was
 * taken, and (4) the state machine has applied through R.
 *
 * Batching: one confirmation round is in flight at a time. Reads arriving meanwhile wait for the
 * next round, which starts when the current one is confirmed: under load every round confirms a
 * whole batch, and a read waits at most two round trips.
 */
import type { LogIndex } from './types';

export interface ReadRound {
  readonly round: number;
  /** The commit index when the round started (after every read in it arrived). */
  readonly readIndex: LogIndex;
  readonly ids: readonly number[];
}

/**
 * @example
 * const q = new ReadQueue();
 * q.add(7);                        // a read arrived
 * const r = q.startRound(commit);  // { round, readIndex, ids: [7] }: send heartbeats tagged r.round
 * q.confirm();                     // a quorum answered: the batch waits for apply to reach readIndex
 * q.takeReady(lastApplied);        // [{ readIndex, ids: [7] }] once applied that far
 */
export class ReadQueue {
  private nextRound = 1;
  /** Reads that arrived before an entry of the leader's term committed. */
  private waitingCommit: number[] = [];
  /** Reads for the next round. */
  private queued: number[] = [];
  private inflight: ReadRound | null = null;
  /** Confirmed batches waiting for the state machine, in readIndex order. */
  private confirmed: { readIndex: LogIndex; ids: number[] }[] = [];

  /** The round number the next round would get minus one (streams start from it). */
  get currentRound(): number { return this.nextRound - 1; }

  get roundInFlight(): ReadRound | null { return this.inflight; }

  /** A read that must wait until the leader's term has committed an entry. */
  addWaitingCommit(id: number): void { this.waitingCommit.push(id); }

  /** An entry of the leader's term committed: reads waiting for that join the next round. */
  termCommitted(): void {
    if (this.waitingCommit.length === 0) return;
    this.queued.push(...this.waitingCommit);
    this.waitingCommit = [];
  }

  add(id: number): void { this.queued.push(id); }

  /** Starts a round for the queued reads if none is in flight; returns it (null when nothing to do). */
  startRound(commitIndex: LogIndex): ReadRound | null {
    if (this.inflight !== null || this.queued.length === 0) return null;
    this.inflight = { round: this.nextRound++, readIndex: commitIndex, ids: this.queued };
    this.queued = [];
    return this.inflight;
  }

  /** The round in flight was confirmed by a quorum. */
  confirm(): void {
    const r = this.inflight;
    if (r === null) return;
    this.inflight = null;
    this.insertConfirmed(r.readIndex, r.ids);
  }

  /** A read confirmed by other means (a valid lease): waits only for apply. */
  addConfirmed(id: number, readIndex: LogIndex): void {
    this.insertConfirmed(readIndex, [id]);
  }

  /**
   * Keeps `confirmed` in readIndex order, which takeReady relies on: a round confirmed after a
   * lease read at a higher index must not wait behind it.
   */
  private insertConfirmed(readIndex: LogIndex, ids: readonly number[]): void {
    const at = this.confirmed.findIndex((c) => c.readIndex >= readIndex);
    if (at === -1) this.confirmed.push({ readIndex, ids: [...ids] });
    else if (this.confirmed[at]!.readIndex === readIndex) this.confirmed[at]!.ids.push(...ids);
    else this.confirmed.splice(at, 0, { readIndex, ids: [...ids] });
  }

  /** Confirmed batches the state machine has caught up with. */
  takeReady(lastApplied: LogIndex): { readIndex: LogIndex; ids: number[] }[] {
    let n = 0;
    while (n < this.confirmed.length && this.confirmed[n]!.readIndex <= lastApplied) n++;
    return n === 0 ? [] : this.confirmed.splice(0, n);
  }

  /**
   * Leadership ended: the reads not yet confirmed fail (confirmed ones stay: their read index was
   * valid when confirmed, and apply reaches it whoever leads). Returns their ids.
   */
  failUnconfirmed(): number[] {
    const ids = [...this.waitingCommit, ...(this.inflight?.ids ?? []), ...this.queued];
    this.waitingCommit = [];
    this.queued = [];
    this.inflight = null;
    return ids;
  }
}
