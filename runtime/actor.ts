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
