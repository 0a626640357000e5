/**
 * Replies held back until what they promise is on disk (seed 002 rules 2 and 3): a reply waits for
 * the hard state current when it was made (term, vote) and, for a successful AppendEntries, for
 * every entry it names.
 */
import type { AppendEntriesResponse, InstallSnapshotResponse, LogIndex, TimeoutNowResponse, VoteResponse } from './types';

export type RpcResponse = AppendEntriesResponse | VoteResponse | InstallSnapshotResponse | TimeoutNowResponse;

interface HeldReply {
  readonly reqId: number;
  resp: RpcResponse;
  /** Released once hardStatePersisted has reached this seq (0: nothing to wait for). */
  needSeq: number;
  /** Released once the log is durable through this index (0: nothing to wait for). */
  needIndex: number;
}

export interface ReadyReply {
  readonly reqId: number;
  readonly resp: RpcResponse;
}

/**
 * @example
 * gate.hold(7, resp, 3, 0);
 * gate.release(3, 0); // [{ reqId: 7, resp }]
 */
export class ReplyGate {
  private held: HeldReply[] = [];

  hold(reqId: number, resp: RpcResponse, needSeq: number, needIndex: number): void {
    this.held.push({ reqId, resp, needSeq, needIndex });
  }

  /**
   * A reply was made: returns the replies that may go now, in order (this one included if its
   * conditions already hold and nothing older is waiting ahead of it).
   */
  offer(reqId: number, resp: RpcResponse, needSeq: number, needIndex: number, durableSeq: number, durableIndex: number): ReadyReply[] {
    if (this.held.length === 0 && needSeq <= durableSeq && needIndex <= durableIndex) return [{ reqId, resp }];
    this.hold(reqId, resp, needSeq, needIndex);
    return this.release(durableSeq, durableIndex);
  }

  /** Removes and returns, in the order they were held, the replies whose conditions are now met. */
  release(durableSeq: number, durableIndex: number): ReadyReply[] {
    if (this.held.length === 0) return [];
    const ready: ReadyReply[] = [];
    const still: HeldReply[] = [];
    for (const h of this.held) {
      if (h.needSeq <= durableSeq && h.needIndex <= durableIndex) ready.push({ reqId: h.reqId, resp: h.resp });
      else still.push(h);
    }
    this.held = still;
    return ready;
  }

  /**
   * A truncation at `from` replaced entries that held-back successes named: those entries will never
   * be durable, so each such success becomes `failure` (which carries our newer term: only a leader
   * of a higher term can have made us truncate).
   */
  revokeSuccessesFrom(from: LogIndex, failure: AppendEntriesResponse, needSeq: number): void {
    for (const h of this.held) {
      if (h.resp.type === 'appendEntriesResponse' && h.resp.success && h.needIndex >= from) {
        h.resp = failure;
        h.needSeq = needSeq;
        h.needIndex = 0;
      }
    }
  }
}
