/**
 * The RaftNetwork contract: one actor per node that carries encoded RPCs (AppendEntries, Vote,
 * InstallSnapshot; see actors/raft/codec.ts) to a target node and returns its encoded answer.
 * Swap in your own transport by writing an actor module that answers `send`.
 *
 * On the receiving side a transport delivers the bytes to the target's Raft actor as
 * `{ type: 'rpc', bytes }` (an ask whose answer is the encoded response).
 */
import type { NodeId } from '../actors/raft/core/types';

export type NetworkMsg =
  /**
   * Deliver `rpc` to `target` and answer with its encoded response. Rejects with
   * `UnreachableError` when the target cannot be reached (with `notSent: true` when the transport
   * knows the request never left this node), or an ask timeout after `timeoutMs`.
   */
  { readonly type: 'send'; readonly target: NodeId; readonly rpc: Uint8Array; readonly timeoutMs: number };

/** The message a transport hands to the target node's Raft actor. */
export interface InboundRpc { readonly type: 'rpc'; readonly bytes: Uint8Array }

/**
 * The target could not be reached (partitioned, unknown or stopped). Retrying later may work.
 *
 * `notSent` is true only when the transport knows the request never left this node (no connection
 * to the peer, the link is down): a retry cannot make the target see it twice, so the Raft actor
 * resends a forwarded client write elsewhere. False, the default, means it may have been delivered
 * (a connection that closed with the request on it, a lost response): the outcome is unknown.
 *
 * @example
 * reply.reject(new UnreachableError(target, 'no connection', { notSent: true }));
 */
export class UnreachableError extends Error {
  readonly code = 'Unreachable';
  readonly notSent: boolean;
  constructor(readonly target: number, readonly reason: string, opts: { readonly notSent?: boolean } = {}) {
    super(`node ${target} unreachable: ${reason}${opts.notSent === true ? ' (not sent)' : ''}`);
    this.name = 'UnreachableError';
    this.notSent = opts.notSent === true;
  }
}

/** The global actor id of a node's Raft actor, the address transports deliver to. */
export const raftActorId = (id: number): string => `n${id}/raft`;
