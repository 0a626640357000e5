/**
 * A supervisor watches the actors of one node and applies a policy when one crashes: restart it
 * with backoff (replication streams, network), or fail the whole node stop-wise (Raft, storage,
 * apply: like a crashed process, the node must come back from durable state, not limp on).
 */
import { EventEmitter } from 'node:events';
import type { ActorRef, ActorSpec, Placement, TimerId } from './actor';
import { ScopedClock } from './clock';
import { ActorCrashedError, ActorExistsError, ActorGoneError } from './errors';
import { childLogger, type Logger } from './logging';
import type { ActorSystem, StartArbiterOptions } from './system';

/**
 * Restart the actor under the same id after `min(max, initial * 2^n)` ms; fail the node after
 * `maxRestarts` crashes in a row. A crash after `healthyResetMs` (default 60 s) of running since the
 * last restart starts the count again: rare crashes over a long life must not add up to a failure.
 */
export interface RestartPolicy {
  readonly kind: 'restart';
  readonly backoffMs: { readonly initial: number; readonly max: number };
  readonly maxRestarts: number;
  readonly healthyResetMs?: number;
}

export const DEFAULT_HEALTHY_RESET_MS = 60_000;

/** A crash of this actor fails the node: every actor of the supervisor stops. */
export interface FailNodePolicy {
  readonly kind: 'fail-node';
}

export type SupervisionPolicy = RestartPolicy | FailNodePolicy;

export type SupervisorState = 'running' | 'stopping' | 'stopped' | 'failed';

/** Events a Supervisor emits. */
export type SupervisorEvents = {
  /** The node failed and all its actors are stopped. */
  failed: [cause: Error];
  /** A watched actor crashed (before its policy is applied). */
  crashed: [id: string, error: Error];
  /** A crashed actor runs again; `attempt` counts restarts of this id. */
  restarted: [id: string, attempt: number];
};

export interface SupervisorOptions {
  readonly name: string;
  readonly logger?: Logger;
}

interface Child {
  readonly id: string;
  readonly spec: ActorSpec;
  readonly placement: Placement;
  readonly policy: SupervisionPolicy;
  restarts: number;
  timer: TimerId | undefined;
  /** When the actor last (re)started, on the supervisor's clock. */
  startedAtMs: number;
}

function validatePolicy(policy: SupervisionPolicy): void {
  if (policy.kind === 'fail-node') return;
  if (policy.kind !== 'restart') throw new TypeError(`unknown supervision policy ${String((policy as { kind?: unknown }).kind)}`);
  const { initial, max } = policy.backoffMs;
  if (!(initial >= 0) || !(max >= initial)) throw new RangeError(`backoffMs needs 0 <= initial <= max, got ${initial}..${max}`);
  if (!Number.isInteger(policy.maxRestarts) || policy.maxRestarts < 0) throw new RangeError(`maxRestarts must be an integer >= 0, got ${policy.maxRestarts}`);
  if (policy.healthyResetMs !== undefined && !(policy.healthyResetMs >= 0)) throw new RangeError(`healthyResetMs must be >= 0, got ${policy.healthyResetMs}`);
}

/**
 * Supervises one node's actors.
 * @example
 * const sup = new Supervisor(system, { name: 'n1' });
 * await sup.startArbiter('n1-raft');
 * await sup.spawn('n1/storage', storageSpec, onArbiter('n1-raft'), { kind: 'fail-node' });
 * await sup.spawn('n1/stream/2', streamSpec, onArbiter('n1-raft'), { kind: 'restart', backoffMs: { initial: 10, max: 1000 }, maxRestarts: 20 });
 * sup.on('failed', (cause) => log.error({ err: cause }, 'node n1 failed'));
 * await sup.stop(); // streams first, storage last, then the arbiter
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly name: string;
  private current: SupervisorState = 'running';
  /** First-spawn order; a restarted actor keeps its place. */
  private readonly children = new Map<string, Child>();
  private readonly ownedArbiters: string[] = [];
  private readonly arbiterRestarts = new Map<string, Promise<void>>();
  private readonly restarting = new Set<Promise<void>>();
  private readonly clock: ScopedClock;
  private readonly logger: Logger;
  private readonly unwatch: () => void;
  private teardown: Promise<void> | undefined;

  constructor(
    private readonly system: ActorSystem,
    options: SupervisorOptions,
  ) {
    super();
    this.name = options.name;
    this.logger = options.logger ?? childLogger(system.logger, { supervisor: options.name });
    this.clock = new ScopedClock(system.clock);
    this.unwatch = system.onCrash((id, error) => this.crashed(id, error));
  }

  get state(): SupervisorState {
    return this.current;
  }

  /** Ids of the supervised actors, in first-spawn order (including ones waiting to restart). */
  childIds(): string[] {
    return [...this.children.keys()];
  }

  /** How many times `id` was restarted. */
  restartCount(id: string): number {
    return this.children.get(id)?.restarts ?? 0;
  }

  /** Starts an arbiter this supervisor owns: stopped after its actors, restarted if it dies and a child needs it. */
  async startArbiter(name: string, options?: StartArbiterOptions): Promise<void> {
    this.assertRunning();
    await this.system.startArbiter(name, options);
    if (this.current !== 'running') {
      await this.system.stopArbiter(name); // the node stopped while the thread was starting
      this.assertRunning();
    }
    this.ownedArbiters.push(name);
  }

  /** Spawns a supervised actor. */
  async spawn<M>(id: string, spec: ActorSpec, placement: Placement, policy: SupervisionPolicy): Promise<ActorRef<M>> {
    this.assertRunning();
    validatePolicy(policy);
    if (this.children.has(id)) throw new ActorExistsError(id);
    // Watched before it exists: a crash right after its start must find its policy.
    this.children.set(id, { id, spec, placement, policy, restarts: 0, timer: undefined, startedAtMs: this.clock.now() });
    try {
      return await this.system.spawn<M>(id, spec, placement);
    } catch (e) {
      this.children.delete(id);
      throw e;
    }
  }

  /** Stops one supervised actor for good (no restart). */
  async stopActor(id: string): Promise<void> {
    const child = this.children.get(id);
    if (child === undefined) return;
    this.children.delete(id);
    if (child.timer !== undefined) this.clock.clearTimeout(child.timer);
    await this.system.stop(id);
  }

  /** Stops the node: its actors newest first, then its arbiters. No timer or thread of it remains. */
  async stop(): Promise<void> {
    if (this.current === 'running') this.teardown = this.tearDown('stopped');
    await this.teardown;
  }

  private crashed(id: string, error: Error): void {
    const child = this.children.get(id);
    if (child === undefined || this.current !== 'running') return;
    this.logger.warn({ actor: id, err: error, policy: child.policy.kind }, 'supervised actor crashed');
    this.emit('crashed', id, error);
    if (this.system.isShutDown) return void this.stop(); // nothing may restart in a system going away
    const policy = child.policy;
    if (policy.kind === 'fail-node') return this.fail(error);
    if (this.clock.now() - child.startedAtMs >= (policy.healthyResetMs ?? DEFAULT_HEALTHY_RESET_MS)) child.restarts = 0;
    if (child.restarts >= policy.maxRestarts) {
      return this.fail(new ActorCrashedError(id, `gave up after ${child.restarts} restarts: ${error.message}`, { cause: error }));
    }
    const delayMs = Math.min(policy.backoffMs.max, policy.backoffMs.initial * 2 ** child.restarts);
    child.restarts++;
    child.timer = this.clock.setTimeout(() => {
      child.timer = undefined;
      const attempt = this.restart(child).finally(() => this.restarting.delete(attempt));
      this.restarting.add(attempt);
    }, delayMs);
  }

  private async restart(child: Child): Promise<void> {
    if (this.current !== 'running' || this.children.get(child.id) !== child) return;
    try {
      if (child.placement.kind === 'worker') await this.ensureArbiter(child.placement.arbiter);
      await this.system.spawn(child.id, child.spec, child.placement);
    } catch (e) {
      // A failed restart is one more crash: back off again, or give up.
      this.crashed(child.id, e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (this.current !== 'running' || this.children.get(child.id) !== child) {
      await this.system.stop(child.id); // the node stopped while this restart was in flight
      return;
    }
    child.startedAtMs = this.clock.now();
    this.emit('restarted', child.id, child.restarts);
  }

  /** Restarts an owned arbiter that died (once, however many of its actors need it). */
  private ensureArbiter(name: string): Promise<void> {
    if (this.system.hasArbiter(name) || !this.ownedArbiters.includes(name)) return Promise.resolve();
    let starting = this.arbiterRestarts.get(name);
    if (starting === undefined) {
      starting = this.system.startArbiter(name).finally(() => this.arbiterRestarts.delete(name));
      this.arbiterRestarts.set(name, starting);
    }
    return starting;
  }

  private fail(cause: Error): void {
    if (this.current !== 'running') return;
    this.logger.error({ err: cause }, 'node failed');
    this.teardown = this.tearDown('failed').then(() => {
      this.emit('failed', cause);
    });
  }

  private async tearDown(final: 'stopped' | 'failed'): Promise<void> {
    this.current = 'stopping';
    this.clock.dispose(); // pending restarts never fire
    await Promise.allSettled([...this.restarting]);
    for (const id of this.childIds().reverse()) {
      try {
        await this.system.stop(id);
      } catch (e) {
        this.logger.error({ err: e, actor: id }, 'stop failed');
      }
    }
    this.children.clear();
    for (const name of [...this.ownedArbiters].reverse()) await this.system.stopArbiter(name).catch(() => undefined);
    this.ownedArbiters.length = 0;
    this.unwatch();
    this.current = final;
  }

  private assertRunning(): void {
    if (this.current !== 'running') throw new ActorGoneError(this.name, `supervisor is ${this.current}`);
  }
}
