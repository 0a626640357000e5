/** Helpers for runtime tests that involve real threads: wait on conditions, never sleep a fixed time. */

/** Resolves once `cond()` is true; rejects with `what` after `timeoutMs` (generous: CI machines are slow). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** How a promise has settled so far, observed without awaiting it. */
export function track<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const t: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (value) => Object.assign(t, { state: 'resolved', value }),
    (error) => Object.assign(t, { state: 'rejected', error }),
  );
  return t;
}

/** Lets every queued microtask and immediate run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Event-loop resources of a kind (e.g. 'MessagePort'), to prove a shutdown left nothing behind. */
export function resourceCount(kind: string): number {
  return process.getActiveResourcesInfo().filter((r) => r === kind).length;
}
