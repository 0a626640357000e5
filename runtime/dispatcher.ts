/**
 * Dispatchers decide when runnable mailboxes run. Every thread has one FIFO run queue, so
 * delivery is never re-entrant (a tell made inside `receive` is handled after it returns) and the
 * order of work on a thread is a function of the order it was scheduled in.
 */
import { Fifo } from './fifo';

/** A unit of work the dispatcher runs: a mailbox handling one message. */
export interface Runnable {
  run(): void;
}

/** Runs scheduled work later, in the order scheduled. */
export interface Dispatcher {
  /** Queues `task` to run after the current one; never runs it synchronously. */
  schedule(task: Runnable): void;
  /** Drops queued work and releases any pending event-loop handle. */
  close(): void;
}

/** Most tasks an ImmediateDispatcher runs per macrotask before yielding to timers and I/O. */
export const DEFAULT_SLICE_TASKS = 1000;

/**
 * The production dispatcher: drains the run queue on setImmediate, at most `sliceTasks` tasks per
 * macrotask, so a busy thread still serves its timers and ports between slices.
 * @example const system = ActorSystem.create({ dispatcher: new ImmediateDispatcher(256) });
 */
export class ImmediateDispatcher implements Dispatcher {
  private readonly queue = new Fifo<Runnable>();
  private pending: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly drain = (): void => {
    this.pending = undefined;
    for (let n = 0; n < this.sliceTasks; n++) {
      const task = this.queue.shift();
      if (task === undefined) return;
      task.run();
    }
    if (this.queue.length > 0 && !this.closed) this.pending = setImmediate(this.drain);
  };

  constructor(private readonly sliceTasks = DEFAULT_SLICE_TASKS) {
    if (!(sliceTasks >= 1)) throw new RangeError(`sliceTasks must be >= 1, got ${sliceTasks}`);
  }

  schedule(task: Runnable): void {
    if (this.closed) return;
    this.queue.push(task);
    this.pending ??= setImmediate(this.drain);
  }

  close(): void {
    this.closed = true;
    if (this.pending !== undefined) clearImmediate(this.pending);
    this.pending = undefined;
    this.queue.drain();
  }
}

/**
 * A dispatcher driven by hand, for the simulator: nothing runs until `runOne` or `runUntilIdle`
 * is called. With a VirtualClock, one seed gives one order of events.
 * @example
 * const dispatcher = new ManualDispatcher();
 * const system = ActorSystem.create({ clock: new VirtualClock(), dispatcher, seed: 7 });
 * ref.tell({ type: 'tick' });
 * await dispatcher.runUntilIdle();
 */
export class ManualDispatcher implements Dispatcher {
  private readonly queue = new Fifo<Runnable>();
  private closed = false;
  /** Tasks run since creation. */
  steps = 0;

  /** @param beforeRun sees each task just before it runs (the simulator traces the actor's id). */
  constructor(private readonly beforeRun?: (task: Runnable) => void) {}

  schedule(task: Runnable): void {
    if (!this.closed) this.queue.push(task);
  }

  /** Tasks waiting to run. */
  pending(): number {
    return this.queue.length;
  }

  /** Runs the oldest task; false when there was none. */
  runOne(): boolean {
    const task = this.queue.shift();
    if (task === undefined) return false;
    this.steps++;
    this.beforeRun?.(task);
    task.run();
    return true;
  }

  /**
   * Runs tasks until none is left, letting promise continuations (async `receive`, ask replies)
   * settle in between, or until `maxSteps` tasks ran. Returns how many ran.
   */
  async runUntilIdle(maxSteps = 1_000_000): Promise<number> {
    let ran = 0;
    while (ran < maxSteps) {
      if (this.runOne()) {
        ran++;
        continue;
      }
      // Continuations of async handlers are microtasks; a macrotask hop lets all of them run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.queue.length === 0) break;
    }
    return ran;
  }

  close(): void {
    this.closed = true;
    this.queue.drain();
  }
}
