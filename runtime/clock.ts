/**
 * Clocks: real time for production threads, virtual time for the simulator, and a scope that
 * clears every timer of an actor when it stops.
 */
import { performance } from 'node:perf_hooks';
import type { Actor, ActorContext, ActorSpec, Clock, TimerId } from './actor';
import { buildActor } from './loader';

/**
 * Wall time from the OS, monotonic within a thread.
 *
 * `performance.now()` is relative to each thread's start, so `timeOrigin` is added to keep values
 * from different threads comparable. Timers stay ref'd (an actor waiting on one is real work), so
 * whoever owns a RealClock must clear them; `pendingTimers()` makes a leak visible in tests.
 * @example const clock = new RealClock(); const id = clock.setTimeout(() => tick(), 150); clock.clearTimeout(id);
 */
export class RealClock implements Clock {
  private readonly timers = new Map<TimerId, NodeJS.Timeout>();
  private nextId = 1;

  now(): number {
    return performance.timeOrigin + performance.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.nextId++;
    const handle = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, Math.max(0, delayMs));
    this.timers.set(id, handle);
    return id;
  }

  clearTimeout(id: TimerId): void {
    const handle = this.timers.get(id);
    if (handle === undefined) return;
    clearTimeout(handle);
    this.timers.delete(id);
  }

  pendingTimers(): number {
    return this.timers.size;
  }
}

interface VirtualTimer {
  readonly id: TimerId;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * Time that moves only when told to. Timers fire in deadline order, ties in creation order, so
 * one seed replays one history.
 * @example
 * const clock = new VirtualClock();
 * clock.setTimeout(() => console.log('late'), 20);
 * clock.setTimeout(() => console.log('early'), 10);
 * clock.advance(25); // logs early, then late; clock.now() === 25
 */
export class VirtualClock implements Clock {
  private current = 0;
  private nextId = 1;
  /** Binary min-heap on (at, id); ids grow with creation, which gives the tie order. */
  private heap: VirtualTimer[] = [];
  /** Live timers; a cleared timer stays in the heap until popped (lazy deletion). */
  private readonly live = new Set<TimerId>();

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const timer: VirtualTimer = { id: this.nextId++, at: this.current + delay, fn };
    this.live.add(timer.id);
    this.heapPush(timer);
    return timer.id;
  }

  clearTimeout(id: TimerId): void {
    this.live.delete(id);
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way, including timers that those
   * timers set. `now()` reads each timer's deadline while it fires.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): ms must be >= 0`);
    this.advanceTo(this.current + ms);
  }

  /** Moves time to `timeMs` (never backwards), firing due timers as `advance` does. */
  advanceTo(timeMs: number): void {
    if (!(timeMs >= this.current)) throw new RangeError(`advanceTo(${timeMs}): time is already ${this.current}`);
    for (;;) {
      const top = this.peekLive();
      if (top === undefined || top.at > timeMs) break;
      this.heapPop();
      this.live.delete(top.id);
      this.current = top.at;
      top.fn();
    }
    this.current = timeMs;
  }

  /** Deadline of the earliest live timer, or undefined when none is set. */
  nextTimerAt(): number | undefined {
    return this.peekLive()?.at;
  }

  pendingTimers(): number {
    return this.live.size;
  }

  private peekLive(): VirtualTimer | undefined {
    while (this.heap.length > 0 && !this.live.has(this.heap[0].id)) this.heapPop();
    return this.heap[0];
  }

  private static before(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.id < b.id);
  }

  private heapPush(t: VirtualTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!VirtualClock.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  private heapPop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < h.length && VirtualClock.before(h[l], h[min])) min = l;
      if (r < h.length && VirtualClock.before(h[r], h[min])) min = r;
      if (min === i) return;
      [h[i], h[min]] = [h[min], h[i]];
      i = min;
    }
  }
}

/** Options for a ScopedClock. */
export interface ScopedClockOptions {
  /**
   * Runs a due callback. The actor system passes one that queues the callback in the actor's
   * mailbox, so timer callbacks never interleave with a running `receive`.
   */
  readonly run?: (fn: () => void) => void;
}

/**
 * A view of another clock that remembers the timers set through it and clears them all on
 * `dispose()`. Each actor's `ctx.clock` is one, which is how stopping an actor leaves no timer.
 * After dispose, setTimeout is a no-op (a late callback of a stopped actor must not revive work).
 * @example
 * const scope = new ScopedClock(new RealClock());
 * scope.setTimeout(() => retry(), 1000);
 * scope.dispose(); // the retry never runs
 */
export class ScopedClock implements Clock {
  private readonly timers = new Set<TimerId>();
  private disposed = false;

  constructor(
    private readonly base: Clock,
    private readonly options: ScopedClockOptions = {},
  ) {}

  now(): number {
    return this.base.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    if (this.disposed) return -1;
    const run = this.options.run;
    const id: TimerId = this.base.setTimeout(() => {
      this.timers.delete(id);
      if (run) run(fn);
      else fn();
    }, delayMs);
    this.timers.add(id);
    return id;
  }

  clearTimeout(id: TimerId): void {
    if (!this.timers.delete(id)) return;
    this.base.clearTimeout(id);
  }

  pendingTimers(): number {
    return this.timers.size;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    this.disposed = true;
    for (const id of this.timers) this.base.clearTimeout(id);
    this.timers.clear();
  }
}

/** How a node's clock departs from the clock it is built on (see SkewedClock). */
export interface ClockDrift {
  /** How fast it runs relative to the base clock: 1 keeps pace, 0.5 runs at half speed, 2 at double. Must be > 0. */
  readonly rate: number;
  /** Added to every reading (default 0). */
  readonly offsetMs?: number;
}

/**
 * A clock that drifts from its base: `now()` is `offsetMs + rate * base.now()`, and a timer of
 * `delayMs` on it fires after `delayMs / rate` of base time, so when it fires `now()` has moved on by
 * (at least) `delayMs`. The simulator gives each node one over the shared virtual clock, to test what
 * rests on bounded clock drift (lease reads). Timers go through the base clock, so a ScopedClock base
 * still clears them when its actor stops.
 * @example
 * const slow = new SkewedClock(virtualClock, { rate: 0.5 });
 * slow.setTimeout(fire, 100); // fires after 200 ms of virtual time
 */
export class SkewedClock implements Clock {
  private readonly offsetMs: number;
  constructor(private readonly base: Clock, readonly drift: ClockDrift) {
    if (typeof drift?.rate !== 'number' || !(drift.rate > 0) || !Number.isFinite(drift.rate)) throw new RangeError(`clock drift rate must be a finite number > 0, got ${String(drift?.rate)}`);
    this.offsetMs = drift.offsetMs ?? 0;
    if (typeof this.offsetMs !== 'number' || !Number.isFinite(this.offsetMs)) throw new RangeError(`clock drift offsetMs must be a finite number, got ${String(drift.offsetMs)}`);
  }

  now(): number {
    return this.offsetMs + this.drift.rate * this.base.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const d = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    // A hair more than d / rate of base time: rounding in now() must never read a deadline as not yet
    // reached when its timer fires (a caller re-arming for the remaining 1e-13 ms would spin).
    return this.base.setTimeout(fn, d === 0 ? 0 : d / this.drift.rate + 1e-6);
  }

  clearTimeout(id: TimerId): void {
    this.base.clearTimeout(id);
  }
}

/**
 * An actor spec whose actor sees `clock(ctx.clock)` as its clock instead of the one its thread gives
 * it (`ctx.clock`, which still clears the actor's timers when it stops). The actor is built from
 * `spec` with that context and wrapped so that `started`, `receive` and `stopped` get it too; every
 * other property reads through to the actor (a simulator's synchronous `inspect()` still works).
 * Local placement only: the result is a factory spec.
 * @example await system.spawn('n1/raft', clockedSpec(raftSpec, (c) => new SkewedClock(c, { rate: 0.9 })));
 */
export function clockedSpec(spec: ActorSpec, clock: (base: Clock) => Clock): ActorSpec {
  // buildActor awaits what a factory returns (a promise of the actor is allowed at run time).
  const factory = async (ctx: ActorContext): Promise<Actor<unknown>> => {
    const own: ActorContext = { ...ctx, clock: clock(ctx.clock) };
    const inner = await buildActor(spec, own);
    return new Proxy(inner, {
      get(target, prop) {
        if (prop === 'receive') return (msg: unknown) => target.receive(msg, own);
        if (prop === 'started') return target.started === undefined ? undefined : () => target.started!(own);
        if (prop === 'stopped') return target.stopped === undefined ? undefined : () => target.stopped!(own);
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Actor<unknown>;
  };
  return { factory: factory as unknown as (ctx: ActorContext) => Actor<unknown> };
}
