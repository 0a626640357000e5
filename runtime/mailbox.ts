/**
 * A mailbox runs one actor: it queues envelopes and hands them to `receive` one at a time,
 * waiting for a returned promise before the next. It also owns how the actor ends (stop or crash):
 * who gets which error, which timers are cleared, when `stopped` runs.
 */
import { type Actor, type ActorContext, type ActorRef, type Clock, DeferredReply, ErrorReply } from './actor';
import { ScopedClock } from './clock';
import type { Dispatcher, Runnable } from './dispatcher';
import { ASK, type Envelope, TIMER } from './envelope';
import { ActorGoneError } from './errors';
import { Fifo } from './fifo';
import type { Logger } from './logging';
import type { SeededRandom } from './random';

/** What a mailbox needs from the thread that hosts it. */
export interface MailboxHost {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly random: SeededRandom;
  readonly logger: Logger;
  ref<M>(id: string): ActorRef<M>;
  reply(env: Envelope, value: unknown): void;
  replyError(env: Envelope, error: Error): void;
  /** Counts a handled message (stats). */
  handled(): void;
  /** The mailbox ended; forget it (called synchronously, before `stopped` runs). */
  forget(mailbox: Mailbox): void;
  /** The actor crashed after its start; called once `stopped` has run. */
  crashed(id: string, error: Error): void;
}

const STARTING = 0; // built, `started` not done: messages queue but do not run
const IDLE = 1; // nothing queued
const SCHEDULED = 2; // in the dispatcher's run queue
const BUSY = 3; // an async `receive` is in flight
const ENDED = 4;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * One actor's queue and lifecycle. Internal to the runtime: actors see only ActorContext.
 * @example const mb = new Mailbox('n1/raft', host); mb.actor = actor; mb.ready(); mb.enqueue(env);
 */
export class Mailbox implements Runnable {
  readonly ctx: ActorContext;
  readonly clock: ScopedClock;
  actor: Actor<unknown> | undefined;
  /** Set when the actor crashed; a crash during `started` fails the spawn with it. */
  crashError: Error | undefined;
  private readonly queue = new Fifo<Envelope>();
  private state = STARTING;
  private current: Envelope | undefined;
  /** Asks answered later through a DeferredReply; failed with ActorGoneError if the actor ends first. */
  private deferred: Set<Envelope> | undefined;

  constructor(
    readonly id: string,
    private readonly host: MailboxHost,
  ) {
    // Timer callbacks go through the mailbox so they never run during an async `receive`.
    this.clock = new ScopedClock(host.clock, { run: (fn) => this.enqueue({ k: TIMER, to: id, m: fn, c: 0, r: '' }) });
    this.ctx = {
      self: host.ref(id),
      clock: this.clock,
      random: host.random.fork(id),
      logger: host.logger.child({ actor: id }),
      ref: (other) => host.ref(other),
      crash: (error) => void this.end('crashed', error),
    };
  }

  get ended(): boolean {
    return this.state === ENDED;
  }

  /** `started` is done: begin handling messages, including any that queued meanwhile. */
  ready(): void {
    if (this.state !== STARTING) return;
    this.state = IDLE;
    this.next();
  }

  enqueue(env: Envelope): void {
    if (this.state === ENDED) {
      if (env.k === ASK) this.host.replyError(env, new ActorGoneError(this.id, 'stopped'));
      return;
    }
    this.queue.push(env);
    if (this.state === IDLE) {
      this.state = SCHEDULED;
      this.host.dispatcher.schedule(this);
    }
  }

  run(): void {
    if (this.state !== SCHEDULED) return;
    const env = this.queue.shift();
    if (env === undefined) {
      this.state = IDLE;
      return;
    }
    this.host.handled();
    if (env.k === TIMER) return this.runTimer(env.m as () => unknown);
    this.current = env;
    let result: unknown;
    try {
      result = this.actor!.receive(env.m, this.ctx);
    } catch (e) {
      void this.end('crashed', toError(e));
      return;
    }
    if (isThenable(result)) {
      this.state = BUSY;
      result.then(
        (value) => this.settle(env, value),
        (e) => {
          if (this.current === env) void this.end('crashed', toError(e));
        },
      );
    } else {
      this.settle(env, result);
    }
  }

  /**
   * Ends the actor once, however it ends: the message in flight gets `error` (or ActorGoneError),
   * queued asks get ActorGoneError, timers are cleared, then `stopped` runs. A crash is reported
   * to the host after `stopped`, unless the actor had not finished starting (the spawn fails instead).
   */
  async end(reason: string, error?: Error): Promise<void> {
    if (this.state === ENDED) return;
    const wasStarting = this.state === STARTING;
    this.state = ENDED;
    this.crashError = error;
    this.host.forget(this);
    const inFlight = this.current;
    this.current = undefined;
    if (inFlight !== undefined && inFlight.k === ASK) this.host.replyError(inFlight, error ?? new ActorGoneError(this.id, reason));
    for (const env of this.queue.drain()) {
      if (env.k === ASK) this.host.replyError(env, new ActorGoneError(this.id, reason));
    }
    if (this.deferred !== undefined) {
      const owed = [...this.deferred];
      this.deferred.clear(); // a later resolve() finds nothing to answer
      for (const env of owed) this.host.replyError(env, new ActorGoneError(this.id, reason));
    }
    this.clock.dispose();
    if (this.actor?.stopped) {
      try {
        await this.actor.stopped(this.ctx);
      } catch (e) {
        this.ctx.logger.error({ err: e }, 'stopped() threw');
      }
    }
    if (error !== undefined && !wasStarting) this.host.crashed(this.id, error);
  }

  private runTimer(fn: () => unknown): void {
    try {
      const result = fn();
      // A timer callback is not awaited (it is not a message with an asker), but its failure is a crash.
      if (isThenable(result)) result.then(undefined, (e) => void this.end('crashed', toError(e)));
    } catch (e) {
      void this.end('crashed', toError(e));
      return;
    }
    this.next();
  }

  private settle(env: Envelope, value: unknown): void {
    if (this.state === ENDED) return; // stopped while `receive` was in flight; its asker already heard
    this.current = undefined;
    if (env.k === ASK) this.answer(env, value);
    this.next();
  }

  private answer(env: Envelope, value: unknown): void {
    if (value instanceof ErrorReply) this.host.replyError(env, value.error);
    else if (value instanceof DeferredReply) this.defer(env, value);
    else this.host.reply(env, value);
  }

  private defer(env: Envelope, reply: DeferredReply): void {
    const deferred = (this.deferred ??= new Set());
    deferred.add(env);
    reply.attach({
      resolve: (value) => {
        if (deferred.delete(env)) this.answer(env, value);
      },
      reject: (error) => {
        if (deferred.delete(env)) this.host.replyError(env, error);
      },
    });
  }

  private next(): void {
    if (this.queue.length > 0) {
      this.state = SCHEDULED;
      this.host.dispatcher.schedule(this);
    } else {
      this.state = IDLE;
    }
  }
}

/** Anything thrown, as an Error (a thrown string still needs a stack and a name to travel). */
export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(`non-error thrown: ${String(e)}`);
}
