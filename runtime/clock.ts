/**
 * Clocks: real time for production threads, virtual time for the simulator, and a scope that
 * clears every timer of an actor when it stops.
 */
import { performance } from 'node:perf_hooks';
import type { Clock, TimerId } from './actor';

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
