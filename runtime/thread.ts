/**
 * The part of the actor system every thread runs, the main thread and each arbiter alike: its
 * mailboxes, its route table (actor id -> thread), its links to the other threads, and the asks
 * it is waiting on.
 */
import type { Actor, ActorRef, ActorSpec, Clock, TimerId } from './actor';
import type { Dispatcher } from './dispatcher';
import { ASK, type Envelope, REPLY_ERR, REPLY_OK, TELL } from './envelope';
import { ActorExistsError, ActorGoneError, AskTimeoutError, reviveError, type SerializedError, serializeError } from './errors';
import { buildActor } from './loader';
import type { Logger } from './logging';
import { Mailbox, type MailboxHost } from './mailbox';
import { SeededRandom } from './random';
import { type LinkStats, Transport, type TransportHost } from './transport';

/** Default ask timeout (ActorRef.ask). */
export const DEFAULT_ASK_TIMEOUT_MS = 30_000;

export interface ThreadRuntimeOptions {
  /** 'main', or the arbiter's name. */
  readonly name: string;
  readonly clock: Clock;
  readonly dispatcher: Dispatcher;
  readonly seed: number;
  readonly logger: Logger;
  /** An actor of this thread crashed (after its `stopped` ran). */
  readonly onCrash: (id: string, error: Error) => void;
}

/** Counters of one thread. */
export interface ThreadStats {
  readonly thread: string;
  readonly actors: number;
  readonly messagesHandled: number;
  readonly deadLetters: number;
  readonly pendingAsks: number;
  /** Per peer thread. */
  readonly links: Record<string, LinkStats>;
}

interface PendingAsk {
  readonly to: string;
  /** Thread hosting the target, so that asks can be failed when that thread dies. */
  readonly thread: string;
  readonly resolve: (value: any) => void;
  readonly reject: (error: Error) => void;
  timer: TimerId;
}

/**
 * An address bound to the runtime of the thread that made it. The runtime is held in a private
 * field, which a structured clone skips: a ref sent to another thread arrives as `{ id }`.
 */
class Ref<M> implements ActorRef<M> {
  readonly #rt: ThreadRuntime;
  constructor(
    readonly id: string,
    rt: ThreadRuntime,
  ) {
    this.#rt = rt;
  }
  tell(msg: M): void {
    this.#rt.tell(this.id, msg);
  }
  ask<R = unknown>(msg: M, timeoutMs?: number): Promise<R> {
    return this.#rt.ask<R>(this.id, msg, timeoutMs);
  }
}

/**
 * One thread's share of the actor system. Internal: applications use ActorSystem and ActorRef.
 * @example const rt = new ThreadRuntime({ name: 'main', clock, dispatcher, seed: 1, logger, onCrash });
 */
export class ThreadRuntime implements MailboxHost, TransportHost {
  readonly name: string;
  readonly clock: Clock;
  readonly dispatcher: Dispatcher;
  readonly random: SeededRandom;
  readonly logger: Logger;
  readonly transport = new Transport(this);
  private readonly mailboxes = new Map<string, Mailbox>();
  /** Where actors of other threads live. */
  private readonly routes = new Map<string, string>();
  private readonly pending = new Map<number, PendingAsk>();
  private nextCorrelation = 1;
  private messagesHandled = 0;
  private deadLetters = 0;
  private closed = false;

  constructor(private readonly options: ThreadRuntimeOptions) {
    this.name = options.name;
    this.clock = options.clock;
    this.dispatcher = options.dispatcher;
    this.random = new SeededRandom(options.seed);
    this.logger = options.logger;
  }

  ref<M>(id: string): ActorRef<M> {
    return new Ref<M>(id, this);
  }

  hasLocal(id: string): boolean {
    return this.mailboxes.has(id);
  }

  /** The running actor object of a local actor (undefined while starting, after it ended, or when absent). */
  localActor(id: string): Actor<unknown> | undefined {
    const mailbox = this.mailboxes.get(id);
    return mailbox === undefined || mailbox.ended ? undefined : mailbox.actor;
  }

  tell(to: string, msg: unknown): void {
    this.route({ k: TELL, to, m: msg, c: 0, r: '' });
  }

  ask<R>(to: string, msg: unknown, timeoutMs = DEFAULT_ASK_TIMEOUT_MS): Promise<R> {
    if (!(timeoutMs > 0)) return Promise.reject(new RangeError(`ask timeout must be > 0 ms, got ${timeoutMs}`));
    const thread = this.mailboxes.has(to) ? this.name : this.routes.get(to);
    if (thread === undefined || this.closed) return Promise.reject(new ActorGoneError(to, this.closed ? 'the actor system is shut down' : 'no such actor'));
    const c = this.nextCorrelation++;
    return new Promise<R>((resolve, reject) => {
      const p: PendingAsk = { to, thread, resolve, reject, timer: -1 };
      if (Number.isFinite(timeoutMs)) {
        p.timer = this.clock.setTimeout(() => {
          if (this.pending.delete(c)) reject(new AskTimeoutError(to, timeoutMs));
        }, timeoutMs);
      }
      this.pending.set(c, p);
      this.route({ k: ASK, to, m: msg, c, r: this.name });
    });
  }

  /** Builds, starts and registers an actor on this thread. Rejects if the builder or `started` fails. */
  async spawn(id: string, spec: ActorSpec): Promise<void> {
    if (this.mailboxes.has(id)) throw new ActorExistsError(id);
    if (this.closed) throw new ActorGoneError(id, 'the actor system is shut down');
    const mailbox = new Mailbox(id, this);
    this.mailboxes.set(id, mailbox);
    try {
      mailbox.actor = await buildActor(spec, mailbox.ctx);
      await mailbox.actor.started?.(mailbox.ctx);
      if (mailbox.ended) throw mailbox.crashError ?? new ActorGoneError(id, 'stopped while starting');
      mailbox.ready();
    } catch (e) {
      await mailbox.end('failed to start');
      throw e;
    }
  }

  /** Stops a local actor (no-op when absent); resolves after its `stopped` ran. */
  async stop(id: string, reason = 'stopped'): Promise<void> {
    await this.mailboxes.get(id)?.end(reason);
  }

  addRoutes(entries: readonly (readonly [id: string, thread: string])[]): void {
    for (const [id, thread] of entries) this.routes.set(id, thread);
  }

  removeRoutes(ids: readonly string[]): void {
    for (const id of ids) this.routes.delete(id);
  }

  /** Thread `thread` is gone: forget its routes and link, fail the asks waiting on it. */
  peerGone(thread: string): void {
    this.transport.detach(thread);
    for (const [id, t] of this.routes) if (t === thread) this.routes.delete(id);
    for (const [c, p] of this.pending) {
      if (p.thread !== thread) continue;
      this.pending.delete(c);
      this.clock.clearTimeout(p.timer);
      p.reject(new ActorGoneError(p.to, `its thread ${thread} is gone`));
    }
  }

  stats(): ThreadStats {
    return {
      thread: this.name,
      actors: this.mailboxes.size,
      messagesHandled: this.messagesHandled,
      deadLetters: this.deadLetters,
      pendingAsks: this.pending.size,
      links: this.transport.stats(),
    };
  }

  /** Stops every actor (newest first), fails every pending ask, closes every link. */
  async shutdown(reason = 'the actor system is shut down'): Promise<void> {
    this.closed = true;
    for (const id of [...this.mailboxes.keys()].reverse()) await this.stop(id, reason);
    for (const [c, p] of this.pending) {
      this.pending.delete(c);
      this.clock.clearTimeout(p.timer);
      p.reject(new ActorGoneError(p.to, reason));
    }
    this.transport.flush(); // replies owed by the stopped actors leave before the links close
    this.transport.close();
    this.dispatcher.close();
  }

  // --- MailboxHost ---

  handled(): void {
    this.messagesHandled++;
  }

  forget(mailbox: Mailbox): void {
    if (this.mailboxes.get(mailbox.id) === mailbox) this.mailboxes.delete(mailbox.id);
  }

  crashed(id: string, error: Error): void {
    this.options.onCrash(id, error);
  }

  reply(env: Envelope, value: unknown): void {
    if (env.r === this.name) return this.settle(env.c, true, value);
    env.k = REPLY_OK; // the ask's envelope is ours now (cloned on arrival): reuse it
    env.to = '';
    env.m = value;
    this.transport.send(env.r, env);
  }

  replyError(env: Envelope, error: Error): void {
    if (env.r === this.name) return this.settle(env.c, false, error);
    env.k = REPLY_ERR;
    env.to = '';
    env.m = serializeError(error);
    this.transport.send(env.r, env);
  }

  // --- TransportHost ---

  inbound(env: Envelope): void {
    switch (env.k) {
      case TELL:
      case ASK: {
        const mailbox = this.mailboxes.get(env.to);
        if (mailbox !== undefined) mailbox.enqueue(env);
        // Never forward: a stale route must not bounce an envelope between threads.
        else this.undeliverable(env, new ActorGoneError(env.to, `not on thread ${this.name}`));
        return;
      }
      case REPLY_OK:
        return this.settle(env.c, true, env.m);
      case REPLY_ERR:
        return this.settle(env.c, false, reviveError(env.m as SerializedError));
      default:
        this.logger.error({ kind: env.k }, 'unknown envelope kind dropped');
    }
  }

  undeliverable(env: Envelope, error: Error): void {
    switch (env.k) {
      case ASK:
        return this.replyError(env, error);
      case REPLY_OK:
        // The value could not be cloned: the asker still deserves an answer.
        return this.replyError(env, error);
      case TELL:
        this.deadLetters++;
        this.logger.debug({ to: env.to, err: error }, 'dead letter');
        return;
      default:
        this.logger.warn({ err: error }, 'reply dropped: its thread is unreachable');
    }
  }

  linkClosed(thread: string): void {
    this.peerGone(thread);
  }

  private route(env: Envelope): void {
    const mailbox = this.mailboxes.get(env.to);
    if (mailbox !== undefined) return mailbox.enqueue(env);
    const thread = this.routes.get(env.to);
    if (thread === undefined || !this.transport.send(thread, env)) {
      this.undeliverable(env, new ActorGoneError(env.to, thread === undefined ? 'no such actor' : `its thread ${thread} is unreachable`));
    }
  }

  private settle(c: number, ok: boolean, value: unknown): void {
    const p = this.pending.get(c);
    if (p === undefined) return; // timed out, or its target's thread was declared gone
    this.pending.delete(c);
    this.clock.clearTimeout(p.timer);
    if (ok) p.resolve(value);
    else p.reject(value as Error);
  }
}
