/**
 * The network actor of a node process: an IPC transport through the parent. A `send` goes to the
 * parent as `rpcOut { reqId, target, bytes }`; the parent hands it to the target's process, whose
 * link asks its Raft actor, and the answer comes back by the same route as `rpcRes`. A target that
 * is down or not started is answered by the parent at once with UnreachableError; a target that
 * dies while a request is with it is answered the same way when the parent sees it exit.
 */
import type { Actor, ActorContext } from '../../../runtime/actor';
import { DeferredReply } from '../../../runtime/actor';
import { AskTimeoutError } from '../../../runtime/errors';
import { reviveError, type SerializedError } from '../../../runtime/errors';
import { raftActorId, UnreachableError, type NetworkMsg } from '../../../network/network';
import type { ChildToParent } from './protocol';

interface Pending {
  readonly reply: DeferredReply<Uint8Array>;
  readonly timer: NodeJS.Timeout;
  readonly target: number;
}

/** This process's end of the IPC channel for RPCs: one per process, shared by network actor restarts. */
export class IpcLink {
  private nextReqId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(private readonly post: (m: ChildToParent) => void) {}

  send(target: number, bytes: Uint8Array, timeoutMs: number): DeferredReply<Uint8Array> {
    const reply = new DeferredReply<Uint8Array>();
    if (this.closed) { reply.reject(new UnreachableError(target, 'this node is stopping', { notSent: true })); return reply; }
    const reqId = this.nextReqId++;
    // A safety net only: the parent answers for dead targets, and the target's own ask times out.
    const timer = setTimeout(() => {
      if (this.pending.delete(reqId)) reply.reject(new AskTimeoutError(`${raftActorId(target)} (via ipc)`, timeoutMs));
    }, timeoutMs + 250);
    this.pending.set(reqId, { reply, timer, target });
    this.post({ t: 'rpcOut', reqId, target, bytes, timeoutMs });
    return reply;
  }

  /** The parent's answer to one of our rpcOut. */
  answered(reqId: number, bytes: Uint8Array | undefined, err: SerializedError | undefined): void {
    const p = this.pending.get(reqId);
    if (!p) return; // timed out already
    this.pending.delete(reqId);
    clearTimeout(p.timer);
    if (err !== undefined) p.reply.reject(reviveError(err));
    else if (bytes instanceof Uint8Array) p.reply.resolve(bytes);
    else p.reply.reject(new Error(`rpc ${reqId} to node ${p.target}: answer without bytes or error`));
  }

  /** Rejects everything in flight and refuses new sends. */
  close(): void {
    this.closed = true;
    for (const [reqId, p] of this.pending) {
      this.pending.delete(reqId);
      clearTimeout(p.timer);
      p.reply.reject(new UnreachableError(p.target, 'this node is stopping'));
    }
  }
}

/** The network actor: answers `send` with a DeferredReply the link settles. */
export class IpcNetworkEndpoint implements Actor<NetworkMsg> {
  constructor(private readonly link: IpcLink) {}

  receive(msg: NetworkMsg, _ctx: ActorContext): unknown {
    if (msg.type !== 'send') throw new TypeError(`unknown network message ${String((msg as { type?: unknown }).type)}`);
    return this.link.send(msg.target, msg.rpc, msg.timeoutMs);
  }
}
