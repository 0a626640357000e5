/**
 * The one object allocated per message. The same shape is queued in mailboxes and cloned across
 * threads; a reply reuses the envelope of its ask. Kinds are plain numbers (not a const enum) so
 * that transpile-only builds, which compile each file alone, see the same values.
 */

/** Fire and forget. */
export const TELL = 0;
/** Expects a reply to thread `r` under correlation id `c`. */
export const ASK = 1;
/** A successful reply: `m` is the value. */
export const REPLY_OK = 2;
/** A failed reply: `m` is an Error (same thread) or a SerializedError (after a thread crossing). */
export const REPLY_ERR = 3;
/** A timer callback run in the actor's turn: `m` is the function. Never crosses a thread. */
export const TIMER = 4;

export interface Envelope {
  /** Kind: TELL, ASK, REPLY_OK, REPLY_ERR or TIMER. */
  k: number;
  /** Destination actor id; '' for replies. */
  to: string;
  /** Message, reply value or error. */
  m: unknown;
  /** Correlation id of an ask and its reply; 0 otherwise. */
  c: number;
  /** Name of the thread awaiting the reply of an ask; '' otherwise. */
  r: string;
}
