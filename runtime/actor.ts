/**
 * The actor model every part of actor-raft is written against (DESIGN.md section 2).
 *
 * An actor owns its state and handles one message at a time: when `receive` returns a promise, the
 * next message waits for it. `tell` sends; `ask` sends and awaits the value `receive` returns.
 * Where an actor runs (its placement) is decided when it is spawned, never in its code.
 */
import type { Logger } from 'pino';

/** An address. Holds no reference to the actor, so it can be copied to any thread. */
export interface ActorRef<M> {
  readonly id: string;
  /** Fire and forget. Messages from one sender to one actor arrive in the order sent. */
  tell(msg: M): void;
  /**
   * Send and await the reply. Rejects with `AskTimeoutError` after `timeoutMs` (default 30 000),
   * `ActorGoneError` when the actor is stopped or crashed, or the error the actor replied with
   * (see `replyError`).
   */
  ask<R = unknown>(msg: M, timeoutMs?: number): Promise<R>;
}

export type TimerId = number;

/** Time as actors see it. Real on worker threads; virtual under the simulator. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** A seeded source of chance. Never Math.random on a path that must replay. */
export interface Random {
  /** Uniform in [0, 1). */
  nextFloat(): number;
  /** Uniform integer in [min, max). */
  nextInt(min: number, max: number): number;
}

/** What an actor is given to act on the world. */
export interface ActorContext {
  readonly self: ActorRef<any>;
  /** Timers set through this clock are cleared when the actor stops. */
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** An address for any actor in the process, whatever thread it lives on. */
  ref<M>(id: string): ActorRef<M>;
  /** Stop this actor as crashed: the supervisor applies its policy (restart or fail the node). */
  crash(error: Error): void;
}

export interface Actor<M> {
  /** Handles one message. Its return value (or resolved value) answers an `ask`. Throwing crashes the actor. */
  receive(msg: M, ctx: ActorContext): unknown;
  /** Runs before the first message. Throwing fails the spawn. */
  started?(ctx: ActorContext): void | Promise<void>;
  /** Runs once when the actor stops, however it stops. */
  stopped?(ctx: ActorContext): void | Promise<void>;
}

/**
 * How to build an actor. A module spec works under any placement (the module is loaded on the
 * actor's thread and `module[export](args, ctx)` builds it; args must survive a structured clone).
 * A factory works only under `local` placement (functions cannot cross threads).
 */
export type ActorSpec<A = unknown> =
  | { readonly module: string; readonly export: string; readonly args: A }
  | { readonly factory: (ctx: ActorContext) => Actor<any> };

/** Where an actor runs: on the caller's thread, or on a named arbiter (a worker thread). */
export type Placement = { readonly kind: 'local' } | { readonly kind: 'worker'; readonly arbiter: string };

export const LOCAL: Placement = Object.freeze({ kind: 'local' as const });
export const onArbiter = (arbiter: string): Placement => ({ kind: 'worker', arbiter });

/**
 * A reply that rejects the asker's promise with `error` without crashing the actor.
 * Typed errors survive the thread crossing when their class is registered (`registerErrorClass`).
 * @example receive(msg) { if (!this.isLeader) return replyError(new ForwardToLeaderError(this.leader)); ... }
 */
export class ErrorReply {
  constructor(readonly error: Error) {}
}
export const replyError = (error: Error): ErrorReply => new ErrorReply(error);

/**
 * A reply given later. When `receive` returns a DeferredReply, the mailbox moves on to the next
 * message at once and the asker is answered when `resolve` or `reject` is called. This is how an
 * actor answers a request that waits on another message to itself (the Raft actor answers an
 * AppendEntries only after storage has acknowledged the write, and that ack is a message).
 * A tell that returns one simply ignores it.
 * @example const d = new DeferredReply<Uint8Array>(); this.pending.set(reqId, d); return d;
 */
export class DeferredReply<R = unknown> {
  private settled = false;
  private sink: { resolve(v: R): void; reject(e: Error): void } | null = null;
  private early: { ok: true; value: R } | { ok: false; error: Error } | null = null;

  resolve(value: R): void { this.settle({ ok: true, value }); }
  reject(error: Error): void { this.settle({ ok: false, error }); }
  get isSettled(): boolean { return this.settled; }

  /** Called by the mailbox: where the answer goes. An answer given before attach is kept. */
  attach(sink: { resolve(v: R): void; reject(e: Error): void }): void {
    this.sink = sink;
    if (this.early) { const e = this.early; this.early = null; this.deliver(e); }
  }

  private settle(outcome: { ok: true; value: R } | { ok: false; error: Error }): void {
    if (this.settled) return;
    this.settled = true;
    if (this.sink) this.deliver(outcome); else this.early = outcome;
  }
  private deliver(o: { ok: true; value: R } | { ok: false; error: Error }): void {
    if (o.ok) this.sink!.resolve(o.value); else this.sink!.reject(o.error);
  }
}
