/**
 * The actor system as the main thread sees it: the directory of every actor (id -> thread), the
 * arbiters and the mesh of direct links between them, spawn/stop, crash reporting, shutdown.
 */
import { randomInt } from 'node:crypto';
import { MessageChannel } from 'node:worker_threads';
import { type Actor, type ActorRef, type ActorSpec, type Clock, LOCAL, type Placement } from './actor';
import { Arbiter } from './arbiter';
import type { ControlResult } from './arbiter-host';
import { RealClock } from './clock';
import { type Dispatcher, ImmediateDispatcher } from './dispatcher';
import { ActorCrashedError, ActorExistsError, ActorGoneError, PlacementError, reviveError } from './errors';
import { isModuleSpec, validateModuleSpec } from './loader';
import { createLogger, type Logger, type LogLevel } from './logging';
import { type ThreadStats, ThreadRuntime } from './thread';
import { Serial } from './serial';

/** The main thread's name in route tables; no arbiter may take it. */
export const MAIN_THREAD = 'main';

export interface ActorSystemOptions {
  /** Clock of main-thread actors and of asks made from the main thread. Default: RealClock. */
  readonly clock?: Clock;
  /** Seeds every actor's ctx.random (forked by actor id, so the same on any thread). Default: random. */
  readonly seed?: number;
  /** Default: createLogger({ name: 'actor-raft' }). Arbiters log at the same level. */
  readonly logger?: Logger;
  /** Runs main-thread mailboxes. Default: ImmediateDispatcher; ManualDispatcher for simulation. */
  readonly dispatcher?: Dispatcher;
}

export interface StartArbiterOptions {
  /** Absolute paths of modules to load on the thread first, e.g. ones registering error classes. */
  readonly preload?: readonly string[];
}

/** Called when an actor crashes, with the error that crashed it. */
export type CrashListener = (id: string, error: Error) => void;

export interface SystemStats {
  /** Live actors on every thread. */
  readonly actors: number;
  /** Live worker threads. */
  readonly workers: number;
  readonly main: ThreadStats;
  readonly arbiters: Record<string, ThreadStats>;
}

/**
 * Spawns actors on the main thread or on arbiters and routes messages between them.
 * @example
 * const system = ActorSystem.create({ seed: 42 });
 * await system.startArbiter('w1');
 * const counter = await system.spawn<CounterMsg>('n1/counter', { module: path.join(__dirname, 'counter.ts'), export: 'counter', args: {} }, onArbiter('w1'));
 * await counter.ask({ type: 'inc' });
 * await system.shutdown();
 */
export class ActorSystem {
  readonly clock: Clock;
  readonly seed: number;
  readonly logger: Logger;
  readonly dispatcher: Dispatcher;
  private readonly runtime: ThreadRuntime;
  /** Every live actor -> the thread hosting it, in spawn order. */
  private readonly directory = new Map<string, string>();
  private readonly spawning = new Set<string>();
  /** Crashes reported for actors whose spawn has not finished registering yet. */
  private readonly earlyCrashes = new Map<string, Error>();
  private readonly arbiters = new Map<string, Arbiter>();
  private readonly startingArbiters = new Set<string>();
  private readonly crashListeners = new Set<CrashListener>();
  /** Topology changes (routes, mesh) run one at a time, so every thread sees the same table. */
  private readonly topology = new Serial();
  private shutdownPromise: Promise<void> | undefined;

  private constructor(options: ActorSystemOptions) {
    this.clock = options.clock ?? new RealClock();
    this.seed = options.seed ?? randomInt(0, 2 ** 32);
    this.logger = options.logger ?? createLogger({ name: 'actor-raft' });
    this.dispatcher = options.dispatcher ?? new ImmediateDispatcher();
    this.runtime = new ThreadRuntime({
      name: MAIN_THREAD,
      clock: this.clock,
      dispatcher: this.dispatcher,
      seed: this.seed,
      logger: this.logger,
      onCrash: (id, error) => this.actorCrashed(id, MAIN_THREAD, error),
    });
  }

  static create(options: ActorSystemOptions = {}): ActorSystem {
    return new ActorSystem(options);
  }

  /**
   * Builds and starts an actor. Resolves once every thread can route to it; rejects with
   * ActorExistsError for a taken id, PlacementError for an impossible placement, or the error
   * its builder or `started` threw.
   */
  async spawn<M>(id: string, spec: ActorSpec, placement: Placement = LOCAL): Promise<ActorRef<M>> {
    this.assertOpen();
    if (typeof id !== 'string' || id.length === 0) throw new PlacementError('an actor id must be a non-empty string');
    if (this.directory.has(id) || this.spawning.has(id)) throw new ActorExistsError(id);
    const thread = placement.kind === 'local' ? MAIN_THREAD : placement.arbiter;
    let arbiter: Arbiter | undefined;
    if (placement.kind === 'worker') {
      arbiter = this.arbiters.get(placement.arbiter);
      if (arbiter === undefined) throw new PlacementError(`no arbiter named '${placement.arbiter}'`);
      if (!isModuleSpec(spec)) throw new PlacementError(`actor ${id}: a factory cannot cross to arbiter '${placement.arbiter}'; use a { module, export, args } spec`);
    }
    if (isModuleSpec(spec)) validateModuleSpec(spec);
    this.spawning.add(id);
    try {
      if (arbiter === undefined) {
        await this.runtime.spawn(id, spec);
      } else {
        const result = await arbiter.call((c) => c.spawn(id, spec) as Promise<ControlResult>);
        if (!result.ok) throw reviveError(result.error);
      }
      await this.topology.run(() => this.publishRoute(id, thread));
    } finally {
      this.spawning.delete(id);
    }
    const early = this.earlyCrashes.get(id);
    if (early !== undefined) {
      this.earlyCrashes.delete(id);
      this.actorCrashed(id, thread, early);
    }
    return this.runtime.ref<M>(id);
  }

  /** An address for `id`, valid on the main thread. Routing happens per message. */
  ref<M>(id: string): ActorRef<M> {
    return this.runtime.ref<M>(id);
  }

  has(id: string): boolean {
    return this.directory.has(id);
  }

  /**
   * The object of an actor running on the calling (main) thread, for synchronous inspection by a
   * simulator or a test. Undefined for actors on arbiters, unknown ids and actors not yet started.
   * Never send it messages this way: use `ref` so the one-message-at-a-time rule holds.
   */
  localActor<A = Actor<unknown>>(id: string): A | undefined {
    return this.runtime.localActor(id) as A | undefined;
  }

  /** Ids of live actors, in spawn order. */
  actorIds(): string[] {
    return [...this.directory.keys()];
  }

  /**
   * Stops an actor: runs its `stopped`, clears its timers, fails its pending and queued asks with
   * ActorGoneError. Stopping an unknown or already stopped actor resolves at once.
   */
  async stop(id: string): Promise<void> {
    const thread = this.directory.get(id);
    if (thread === undefined) return;
    this.directory.delete(id); // first: a crash reported while stopping is not a crash
    await this.topology.run(() => this.unpublishRoutes([id]));
    if (thread === MAIN_THREAD) await this.runtime.stop(id);
    else await this.arbiters.get(thread)?.call((c) => c.stop(id)).catch(() => undefined);
  }

  /** Starts a worker thread named `name` and links it directly to every other arbiter. */
  async startArbiter(name: string, options: StartArbiterOptions = {}): Promise<void> {
    this.assertOpen();
    if (name === MAIN_THREAD || name.length === 0) throw new PlacementError(`'${name}' cannot name an arbiter`);
    if (this.arbiters.has(name) || this.startingArbiters.has(name)) throw new PlacementError(`arbiter '${name}' already exists`);
    this.startingArbiters.add(name);
    try {
      const arbiter = await Arbiter.start({
        name,
        seed: this.seed,
        logLevel: this.logger.level as LogLevel,
        preload: options.preload ?? [],
        onActorCrash: (id, error) => this.actorCrashed(id, name, error),
        onDeath: (dead, error) => this.arbiterDied(dead, error),
      });
      await this.topology.run(async () => {
        try {
          const links: Promise<void>[] = [];
          for (const peer of this.arbiters.values()) {
            const { port1, port2 } = new MessageChannel();
            links.push(peer.connectPeer(name, port1), arbiter.connectPeer(peer.name, port2));
          }
          await Promise.all(links);
          await arbiter.call((c) => c.addRoutes([...this.directory]));
        } catch (e) {
          await arbiter.stop(); // half-joined (a peer died meanwhile): do not leak the thread
          throw e;
        }
        this.runtime.transport.attach(name, arbiter.dataPort);
        this.arbiters.set(name, arbiter);
      });
    } finally {
      this.startingArbiters.delete(name);
    }
  }

  hasArbiter(name: string): boolean {
    return this.arbiters.has(name);
  }

  arbiterNames(): string[] {
    return [...this.arbiters.keys()];
  }

  /** Stops the arbiter's actors (newest first), then its thread. Unknown names resolve at once. */
  async stopArbiter(name: string): Promise<void> {
    const arbiter = this.arbiters.get(name);
    if (arbiter === undefined) return;
    for (const id of this.actorIds().reverse()) if (this.directory.get(id) === name) await this.stop(id);
    await this.topology.run(async () => {
      this.arbiters.delete(name);
      await arbiter.stop();
      this.runtime.peerGone(name);
      await Promise.all([...this.arbiters.values()].map((peer) => peer.call((c) => c.peerGone(name)).catch(() => undefined)));
    });
  }

  /** True once shutdown() was called: spawns and arbiter starts are refused from then on. */
  get isShutDown(): boolean {
    return this.shutdownPromise !== undefined;
  }

  /** Registers a crash listener (supervisors use it). Returns a function that removes it. */
  onCrash(listener: CrashListener): () => void {
    this.crashListeners.add(listener);
    return () => this.crashListeners.delete(listener);
  }

  async stats(): Promise<SystemStats> {
    const arbiters: Record<string, ThreadStats> = {};
    for (const a of this.arbiters.values()) {
      if (a.isAlive) arbiters[a.name] = await a.call((c) => c.stats());
    }
    return { actors: this.directory.size, workers: [...this.arbiters.values()].filter((a) => a.isAlive).length, main: this.runtime.stats(), arbiters };
  }

  /**
   * Stops every actor (newest first), then every arbiter, then the main thread's links and
   * dispatcher. Afterwards no timer, port or thread of the system remains. Idempotent.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      for (const id of this.actorIds().reverse()) await this.stop(id);
      for (const name of this.arbiterNames()) await this.stopArbiter(name);
      await this.runtime.shutdown();
      this.crashListeners.clear();
    })();
    return this.shutdownPromise;
  }

  private assertOpen(): void {
    if (this.shutdownPromise !== undefined) throw new ActorGoneError('*', 'the actor system is shut down');
  }

  private async publishRoute(id: string, thread: string): Promise<void> {
    this.directory.set(id, thread);
    if (thread !== MAIN_THREAD) this.runtime.addRoutes([[id, thread]]);
    const others = [...this.arbiters.values()].filter((a) => a.name !== thread);
    // An arbiter that dies meanwhile needs no route; its death is reported on its own.
    await Promise.all(others.map((a) => a.call((c) => c.addRoutes([[id, thread]])).catch(() => undefined)));
  }

  private async unpublishRoutes(ids: string[]): Promise<void> {
    this.runtime.removeRoutes(ids);
    await Promise.all([...this.arbiters.values()].map((a) => a.call((c) => c.removeRoutes(ids)).catch(() => undefined)));
  }

  private actorCrashed(id: string, thread: string, error: Error): void {
    if (this.spawning.has(id)) {
      this.earlyCrashes.set(id, error);
      return;
    }
    if (this.directory.get(id) !== thread) return; // stopped on purpose meanwhile, or a stale report
    this.directory.delete(id);
    this.logger.warn({ actor: id, err: error }, 'actor crashed');
    void this.topology.run(() => this.unpublishRoutes([id])).catch(() => undefined);
    for (const listener of [...this.crashListeners]) {
      try {
        listener(id, error);
      } catch (e) {
        this.logger.error({ err: e, actor: id }, 'crash listener threw');
      }
    }
  }

  private arbiterDied(name: string, error: Error): void {
    this.logger.error({ arbiter: name, err: error }, 'arbiter died');
    this.arbiters.delete(name);
    this.runtime.peerGone(name);
    for (const peer of this.arbiters.values()) void peer.call((c) => c.peerGone(name)).catch(() => undefined);
    for (const id of this.actorIds()) {
      if (this.directory.get(id) === name) this.actorCrashed(id, name, new ActorCrashedError(id, `arbiter ${name} died: ${error.message}`, { cause: error }));
    }
  }
}
