/**
 * SimNetwork: the simulated network between the nodes of a Simulation. Every RPC and every answer
 * crosses it as a packet with its own fate, drawn from the simulation's seeded random source:
 * lost, duplicated, delayed (a base latency plus an exponential tail, so packets overtake each
 * other), held back by a clogged link until it is unclogged, or dropped by a partition (full,
 * one-way, or any shape of partial connectivity). Timing is virtual: deliveries are timers on the
 * simulation's clock.
 *
 * A node's endpoint actor hands packets to the network; delivery asks the target's Raft actor and
 * sends its answer back as another packet. A node that crashed neither sends nor receives, and
 * packets addressed to its previous incarnation are dropped.
 */
import type { Actor, ActorContext, ActorSpec, Clock } from '../runtime/actor';
import { DeferredReply } from '../runtime/actor';
import type { SeededRandom } from '../runtime/random';
import type { NodeId } from '../actors/raft/core/types';
import type { NetworkMsg } from '../network/network';

/** Packet-level faults. Probabilities are per packet, in [0, 1]; times are virtual milliseconds. */
export interface NetworkFaults {
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  /** Every packet takes at least this long. */
  readonly minDelayMs: number;
  /** Mean of the exponential delay added to minDelayMs. */
  readonly meanExtraDelayMs: number;
  /** Chance that a packet is held back by up to `reorderWindowMs` more, overtaken by later ones. */
  readonly reorderProbability: number;
  readonly reorderWindowMs: number;
  /**
   * Chance that an answer (never a request) is held back by a long delay, uniform in
   * [longAnswerDelayMinMs, longAnswerDelayMaxMs): the 6.824 lab's "long reordering". Default 0.
   */
  readonly longAnswerDelayProbability?: number;
  readonly longAnswerDelayMinMs?: number;
  readonly longAnswerDelayMaxMs?: number;
}

/** A reliable, fast network: what the heal phase and the 6.824 "reliable" tests use. */
export const RELIABLE_NETWORK: NetworkFaults = Object.freeze({
  lossProbability: 0, duplicateProbability: 0, minDelayMs: 0.5, meanExtraDelayMs: 1, reorderProbability: 0, reorderWindowMs: 0,
});

/** The 6.824 "unreliable" network, and the chaos phase's default. */
export const UNRELIABLE_NETWORK: NetworkFaults = Object.freeze({
  lossProbability: 0.1, duplicateProbability: 0.05, minDelayMs: 0.5, meanExtraDelayMs: 8, reorderProbability: 0.1, reorderWindowMs: 100,
});

export function validateFaults(f: NetworkFaults): NetworkFaults {
  for (const k of ['lossProbability', 'duplicateProbability', 'reorderProbability'] as const) {
    if (typeof f[k] !== 'number' || !(f[k] >= 0 && f[k] <= 1)) throw new RangeError(`network fault ${k} must be a number in [0, 1], got ${String(f[k])}`);
  }
  for (const k of ['minDelayMs', 'meanExtraDelayMs', 'reorderWindowMs'] as const) {
    if (typeof f[k] !== 'number' || !(f[k] >= 0 && Number.isFinite(f[k]))) throw new RangeError(`network fault ${k} must be a finite number >= 0, got ${String(f[k])}`);
  }
  const p = f.longAnswerDelayProbability ?? 0;
  const [lo, hi] = [f.longAnswerDelayMinMs ?? 0, f.longAnswerDelayMaxMs ?? 0];
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`network fault longAnswerDelayProbability must be a number in [0, 1], got ${String(p)}`);
  if (!(lo >= 0 && Number.isFinite(lo)) || !(hi >= lo && Number.isFinite(hi))) {
    throw new RangeError(`network faults longAnswerDelayMinMs/MaxMs must be finite with 0 <= min <= max, got ${String(lo)}/${String(hi)}`);
  }
  return Object.freeze({ ...f });
}

/** Counters of what the network did. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  partitionDrops: number;
  /** Packets dropped because the sender or target node was down (or restarted since). */
  deadNodeDrops: number;
  reordered: number;
  clogged: number;
}

/** How the simulation hands a packet to a node: the answer, or null when the node is not up. */
export type DeliverFn = (target: NodeId, bytes: Uint8Array, timeoutMs: number) => Promise<Uint8Array> | null;

interface Packet {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly fromIncarnation: number;
  /** The target's incarnation when sent; an answer goes only to the incarnation that asked. */
  readonly toIncarnation: number;
  readonly run: () => void;
  readonly label: string;
  /** An RPC's answer (or error) on its way back, rather than a request. */
  readonly answer: boolean;
}

export class SimNetwork {
  faults: NetworkFaults = RELIABLE_NETWORK;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, partitionDrops: 0, deadNodeDrops: 0, reordered: 0, clogged: 0 };
  private readonly blocked = new Set<string>();
  private readonly clogs = new Map<string, Packet[]>();
  private readonly incarnations = new Map<NodeId, number>();
  private readonly up = new Set<NodeId>();
  private deliver: DeliverFn = () => null;
  /** @internal Told of every answer (a response, not an error) that reached the node that asked: the simulation's check-quorum invariant. */
  onAnswer: ((to: NodeId, from: NodeId) => void) | null = null;

  constructor(private readonly clock: Clock, private readonly random: SeededRandom, private readonly trace: (line: string) => void) {}

  /** @internal The simulation says how packets reach a node. */
  setDeliver(fn: DeliverFn): void { this.deliver = fn; }

  /** @internal Node `id` (re)started: a new incarnation, reachable. */
  nodeUp(id: NodeId): number {
    const inc = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, inc);
    this.up.add(id);
    return inc;
  }

  /** @internal Node `id` crashed: its packets in flight die with it. */
  nodeDown(id: NodeId): void { this.up.delete(id); }

  incarnation(id: NodeId): number { return this.incarnations.get(id) ?? 0; }

  // ---- partitions and clogs ----

  /** Drops packets from `from` to `to` (one direction) until restored. */
  cut(from: NodeId, to: NodeId): void { this.blocked.add(linkKey(from, to)); }
  uncut(from: NodeId, to: NodeId): void { this.blocked.delete(linkKey(from, to)); }
  isCut(from: NodeId, to: NodeId): boolean { return this.blocked.has(linkKey(from, to)); }

  /** Cuts every link between different groups, both ways; nodes in no group are cut from all. */
  partition(groups: readonly (readonly NodeId[])[], all: readonly NodeId[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((n) => groupOf.set(n, i)));
    for (const a of all) for (const b of all) {
      if (a !== b && (groupOf.get(a) === undefined || groupOf.get(a) !== groupOf.get(b))) this.cut(a, b);
    }
  }

  /** Cuts `id` off from everyone, both ways. */
  isolate(id: NodeId, all: readonly NodeId[]): void {
    for (const o of all) if (o !== id) { this.cut(id, o); this.cut(o, id); }
  }

  /** Restores every link of `id`, both ways. */
  reconnect(id: NodeId, all: readonly NodeId[]): void {
    for (const o of all) if (o !== id) { this.uncut(id, o); this.uncut(o, id); }
  }

  /** Holds packets from `from` to `to` (they are neither lost nor delivered) until unclogged. */
  clog(from: NodeId, to: NodeId): void { if (!this.clogs.has(linkKey(from, to))) this.clogs.set(linkKey(from, to), []); }

  /** Releases a clogged link: the held packets leave now, each with a fresh delay. */
  unclog(from: NodeId, to: NodeId): void {
    const held = this.clogs.get(linkKey(from, to));
    if (held === undefined) return;
    this.clogs.delete(linkKey(from, to));
    for (const p of held) this.schedule(p);
  }

  isClogged(from: NodeId, to: NodeId): boolean { return this.clogs.has(linkKey(from, to)); }

  /** Restores every link and releases every clog. Packet faults stay as set (`faults`). */
  heal(): void {
    this.blocked.clear();
    for (const key of [...this.clogs.keys()]) {
      const [from, to] = key.split('>').map(Number) as [NodeId, NodeId];
      this.unclog(from, to);
    }
  }

  // ---- packets ----

  /** @internal An endpoint sends `rpc` from `from` (incarnation `inc`) to `to`; `reply` hears the answer. */
  send(from: NodeId, inc: number, to: NodeId, rpc: Uint8Array, timeoutMs: number, reply: DeferredReply<Uint8Array>): void {
    if (!this.up.has(from) || this.incarnation(from) !== inc) { this.stats.deadNodeDrops++; return; }
    const toInc = this.incarnation(to);
    const request = (): void => {
      if (!this.up.has(to) || this.incarnation(to) !== toInc) { this.stats.deadNodeDrops++; this.trace(`drop dead ${from}>${to}`); return; }
      const answer = this.deliver(to, rpc, timeoutMs);
      if (answer === null) { this.stats.deadNodeDrops++; return; }
      this.stats.delivered++;
      answer.then(
        (bytes) => this.transmit({ from: to, to: from, fromIncarnation: toInc, toIncarnation: inc, answer: true, label: `resp ${to}>${from}`, run: () => deliverAnswer(() => { this.onAnswer?.(from, to); reply.resolve(bytes); }) }),
        (err: Error) => this.transmit({ from: to, to: from, fromIncarnation: toInc, toIncarnation: inc, answer: true, label: `err ${to}>${from}`, run: () => deliverAnswer(() => reply.reject(err)) }),
      );
    };
    const deliverAnswer = (settle: () => void): void => {
      if (!this.up.has(from) || this.incarnation(from) !== inc) { this.stats.deadNodeDrops++; return; }
      this.stats.delivered++;
      settle();
    };
    this.transmit({ from, to, fromIncarnation: inc, toIncarnation: toInc, answer: false, label: `req ${from}>${to}`, run: request });
  }

  private transmit(p: Packet): void {
    this.stats.sent++;
    if (!this.up.has(p.from) || this.incarnation(p.from) !== p.fromIncarnation) { this.stats.deadNodeDrops++; return; }
    if (this.blocked.has(linkKey(p.from, p.to))) { this.stats.partitionDrops++; this.trace(`cut ${p.label}`); return; }
    const f = this.faults;
    if (f.lossProbability > 0 && this.random.nextFloat() < f.lossProbability) { this.stats.lost++; this.trace(`lost ${p.label}`); return; }
    const held = this.clogs.get(linkKey(p.from, p.to));
    if (held !== undefined) { this.stats.clogged++; held.push(p); this.trace(`clog ${p.label}`); return; }
    this.schedule(p);
    if (f.duplicateProbability > 0 && this.random.nextFloat() < f.duplicateProbability) {
      this.stats.duplicated++;
      this.trace(`dup ${p.label}`);
      this.schedule(p);
    }
  }

  private schedule(p: Packet): void {
    const f = this.faults;
    let delay = f.minDelayMs + (f.meanExtraDelayMs > 0 ? -Math.log(1 - this.random.nextFloat()) * f.meanExtraDelayMs : 0);
    if (f.reorderProbability > 0 && this.random.nextFloat() < f.reorderProbability) {
      this.stats.reordered++;
      delay += this.random.nextFloat() * f.reorderWindowMs;
    }
    if (p.answer && (f.longAnswerDelayProbability ?? 0) > 0 && this.random.nextFloat() < f.longAnswerDelayProbability!) {
      this.stats.reordered++;
      const lo = f.longAnswerDelayMinMs ?? 0;
      delay += lo + this.random.nextFloat() * ((f.longAnswerDelayMaxMs ?? lo) - lo);
    }
    this.clock.setTimeout(() => {
      // A partition made while the packet was in flight catches it too.
      if (this.blocked.has(linkKey(p.from, p.to))) { this.stats.partitionDrops++; this.trace(`cut in flight ${p.label}`); return; }
      this.trace(`deliver ${p.label}`);
      p.run();
    }, delay);
  }

  /** The spec of node `id`'s network actor (local placement: it holds this object). */
  endpointSpec(id: NodeId, incarnation: number): ActorSpec {
    return { factory: () => new SimEndpoint(this, id, incarnation) };
  }
}

function linkKey(from: NodeId, to: NodeId): string { return `${from}>${to}`; }

/** A node's network actor in a simulation: hands each RPC to the SimNetwork. */
class SimEndpoint implements Actor<NetworkMsg> {
  constructor(private readonly net: SimNetwork, private readonly self: NodeId, private readonly incarnation: number) {}

  receive(msg: NetworkMsg, _ctx: ActorContext): unknown {
    if (msg === null || typeof msg !== 'object' || msg.type !== 'send') throw new TypeError(`unknown network message ${JSON.stringify((msg as { type?: unknown } | null)?.type)}`);
    const reply = new DeferredReply<Uint8Array>();
    this.net.send(this.self, this.incarnation, msg.target, msg.rpc, msg.timeoutMs, reply);
    return reply;
  }
}
