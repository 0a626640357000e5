/**
 * LocalNetwork: an in-process router between the nodes of one process, with fault injection
 * (isolate/restore a node, drop one direction of a link). The fault table lives in shared memory,
 * so endpoints on any worker thread see a partition the moment the test makes it, without a message.
 *
 * @example
 * const net = new LocalNetwork();
 * net.isolate(nodeId(1));          // node 1 can neither send nor receive
 * net.restore(nodeId(1));
 * net.dropLink(nodeId(1), nodeId(2)); // 1 -> 2 lost, 2 -> 1 still delivered
 */
import type { Actor, ActorContext, ActorSpec } from '../runtime/actor';
import { DeferredReply } from '../runtime/actor';
import type { NodeId } from '../actors/raft/core/types';
import { raftActorId, UnreachableError, type InboundRpc, type NetworkMsg } from './network';

/** Most nodes one LocalNetwork routes between: a bound on the shared fault table. */
export const MAX_LOCAL_NODES = 64;

interface Tables { readonly slots: Int32Array; readonly down: Uint8Array }

function tablesOf(sab: SharedArrayBuffer): Tables {
  return {
    slots: new Int32Array(sab, 0, MAX_LOCAL_NODES + 1), // [count, id0, id1, ...]
    down: new Uint8Array(sab, (MAX_LOCAL_NODES + 1) * 4, MAX_LOCAL_NODES * MAX_LOCAL_NODES),
  };
}

function slotOf(t: Tables, id: number): number {
  const n = Atomics.load(t.slots, 0);
  for (let i = 0; i < n; i++) if (Atomics.load(t.slots, i + 1) === id) return i;
  return -1;
}

function linkUp(t: Tables, from: number, to: number): boolean {
  const a = slotOf(t, from);
  const b = slotOf(t, to);
  return a >= 0 && b >= 0 && Atomics.load(t.down, a * MAX_LOCAL_NODES + b) === 0;
}

/** The fault table and the endpoint specs of one in-process network. */
export class LocalNetwork {
  readonly sab = new SharedArrayBuffer((MAX_LOCAL_NODES + 1) * 4 + MAX_LOCAL_NODES * MAX_LOCAL_NODES);
  private readonly t = tablesOf(this.sab);

  /** Adds a node (idempotent). Every node must be registered before it can send or receive. */
  register(id: NodeId): void {
    // The shared table holds int32 ids; refuse larger ones rather than alias them.
    if (!Number.isInteger(id) || id < 1 || id > 0x7fff_ffff) throw new RangeError(`LocalNetwork node ids must be integers in 1..2^31-1, got ${id}`);
    if (slotOf(this.t, id) >= 0) return;
    const n = Atomics.load(this.t.slots, 0);
    if (n >= MAX_LOCAL_NODES) throw new RangeError(`LocalNetwork routes at most ${MAX_LOCAL_NODES} nodes`);
    Atomics.store(this.t.slots, n + 1, id);
    Atomics.store(this.t.slots, 0, n + 1);
  }

  private setLink(from: NodeId, to: NodeId, down: boolean): void {
    const a = slotOf(this.t, from);
    const b = slotOf(this.t, to);
    if (a < 0 || b < 0) throw new RangeError(`unknown node in link ${from} -> ${to}`);
    Atomics.store(this.t.down, a * MAX_LOCAL_NODES + b, down ? 1 : 0);
  }

  private ids(): number[] {
    const n = Atomics.load(this.t.slots, 0);
    return Array.from({ length: n }, (_, i) => Atomics.load(this.t.slots, i + 1));
  }

  /** Cuts every link to and from `id`. */
  isolate(id: NodeId): void {
    for (const other of this.ids()) if (other !== id) { this.setLink(id, other as NodeId, true); this.setLink(other as NodeId, id, true); }
  }
  /** Restores every link to and from `id`. */
  restore(id: NodeId): void {
    for (const other of this.ids()) if (other !== id) { this.setLink(id, other as NodeId, false); this.setLink(other as NodeId, id, false); }
  }
  /** Drops messages sent from `from` to `to` (one direction). */
  dropLink(from: NodeId, to: NodeId): void { this.setLink(from, to, true); }
  restoreLink(from: NodeId, to: NodeId): void { this.setLink(from, to, false); }
  /** Restores every link. */
  healAll(): void { this.t.down.fill(0); }
  isLinkUp(from: NodeId, to: NodeId): boolean { return linkUp(this.t, from, to); }

  /** The spec of node `id`'s network actor, for any placement. */
  endpointSpec(id: NodeId): ActorSpec<LocalEndpointArgs> {
    this.register(id);
    return { module: __filename, export: 'createLocalNetworkEndpoint', args: { self: id, sab: this.sab } };
  }
}

export interface LocalEndpointArgs { readonly self: number; readonly sab: SharedArrayBuffer }

/** The network actor of one node on a LocalNetwork. Checks the fault table both ways. */
class LocalNetworkEndpoint implements Actor<NetworkMsg> {
  private readonly t: Tables;
  constructor(private readonly args: LocalEndpointArgs) { this.t = tablesOf(args.sab); }

  receive(msg: NetworkMsg, ctx: ActorContext): unknown {
    if (msg.type !== 'send') throw new TypeError(`unknown network message ${(msg as { type?: unknown }).type}`);
    const reply = new DeferredReply<Uint8Array>();
    const { self } = this.args;
    if (!linkUp(this.t, self, msg.target)) {
      reply.reject(new UnreachableError(msg.target, `link ${self} -> ${msg.target} is down`, { notSent: true }));
      return reply;
    }
    const inbound: InboundRpc = { type: 'rpc', bytes: msg.rpc };
    ctx.ref<InboundRpc>(raftActorId(msg.target)).ask<Uint8Array>(inbound, msg.timeoutMs).then(
      (bytes) => {
        if (linkUp(this.t, msg.target, self)) reply.resolve(bytes);
        else reply.reject(new UnreachableError(msg.target, `link ${msg.target} -> ${self} is down (response lost)`));
      },
      (err: Error) => reply.reject(err),
    );
    return reply;
  }
}

export function createLocalNetworkEndpoint(args: LocalEndpointArgs): Actor<NetworkMsg> {
  return new LocalNetworkEndpoint(args);
}
