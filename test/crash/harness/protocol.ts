/**
 * The messages between the crash harness's parent (cluster.ts) and its node processes
 * (node-process.ts), over the child_process IPC channel with `serialization: 'advanced'`, so
 * Uint8Array crosses as bytes. Errors cross as SerializedError (runtime/errors.ts) and are revived
 * on the other side, so `instanceof ForwardToLeaderError` and `leaderId` survive.
 */
import type { SerializedError } from '../../../runtime/errors';
import type { RaftConfig } from '../../../actors/raft/core/config';

/** How a node process keeps its Raft state. */
export type StorageKind = 'file' | 'memory';

export interface StartArgs {
  readonly id: number;
  /** The node's data dir (FileStorage). */
  readonly dir: string;
  readonly storage: StorageKind;
  /** FileStorage's segment size (small ones make the crashes hit segment changes too). */
  readonly segmentBytes?: number;
  /** Call initWithConfig(members) once started (first start only: a restarted node has a log). */
  readonly initMembers: readonly number[] | null;
  readonly config: Partial<RaftConfig>;
  readonly seed: number;
}

export type ParentToChild =
  | { readonly t: 'start'; readonly args: StartArgs }
  /** An RPC from another node, for this node's Raft actor. Answer: rpcRes with the same reqId. */
  | { readonly t: 'rpcIn'; readonly reqId: number; readonly bytes: Uint8Array; readonly timeoutMs: number }
  /** The answer to one of this node's rpcOut. */
  | { readonly t: 'rpcRes'; readonly reqId: number; readonly bytes?: Uint8Array; readonly err?: SerializedError }
  | { readonly t: 'write'; readonly reqId: number; readonly payload: Uint8Array; readonly timeoutMs: number }
  | { readonly t: 'metrics'; readonly reqId: number }
  | { readonly t: 'query'; readonly reqId: number; readonly q: unknown }
  /** Answer: FileStorage's counters of this process (fsyncs, batches, records, bytes, segmentsCreated...), or null. */
  | { readonly t: 'storageStats'; readonly reqId: number }
  | { readonly t: 'stop'; readonly reqId: number };

export type ChildToParent =
  | { readonly t: 'ready'; readonly pid: number }
  | { readonly t: 'startFailed'; readonly err: SerializedError }
  /** An RPC of this node's network actor for node `target`. */
  | { readonly t: 'rpcOut'; readonly reqId: number; readonly target: number; readonly bytes: Uint8Array; readonly timeoutMs: number }
  /** The answer to an rpcIn. */
  | { readonly t: 'rpcRes'; readonly reqId: number; readonly bytes?: Uint8Array; readonly err?: SerializedError }
  /** The answer to write, metrics, query or stop. */
  | { readonly t: 'res'; readonly reqId: number; readonly value?: unknown; readonly err?: SerializedError }
  /** The node failed (its Raft, storage or Apply actor crashed). */
  | { readonly t: 'failed'; readonly err: SerializedError };
