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
   * `UnreachableError` when the target cannot be reached, or an ask timeout after `timeoutMs`.
   */
  { readonly type: 'send'; readonly target: NodeId; readonly rpc: Uint8Array; readonly timeoutMs: number };

/** The message a transport hands to the target node's Raft actor. */
export interface InboundRpc { readonly type: 'rpc'; readonly bytes: Uint8Array }

/** The target could not be reached (partitioned, unknown or stopped). Retrying later may work. */
export class UnreachableError extends Error {
  readonly code = 'Unreachable';
  constructor(readonly target: number, readonly reason: string) {
    super(`node ${target} unreachable: ${reason}`);
    this.name = 'UnreachableError';
  }
}

/** The global actor id of a node's Raft actor, the address transports deliver to. */
export const raftActorId = (id: number): string => `n${id}/raft`;
