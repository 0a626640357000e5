/**
 * Polling for a condition with a deadline: the tests wait on what the nodes report, never for a
 * fixed time.
 *
 * @example
 * const leader = await pollUntil(async () => (await status(1)).currentLeader ?? undefined, { timeoutMs: 30_000, what: 'a leader' });
 */
export interface PollOptions {
  readonly timeoutMs: number;
  readonly what: string;
  /** Pause between attempts (default 50 ms). */
  readonly intervalMs?: number;
  /** Describes the last observed state for the timeout's message. */
  readonly describe?: () => Promise<string> | string;
}

/** Calls `probe` until it returns something other than undefined; throws after the deadline. */
export async function pollUntil<T>(probe: () => Promise<T | undefined> | T | undefined, o: PollOptions): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let lastError: unknown = undefined;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
  }
  let state = '';
  if (o.describe) { try { state = `; last state: ${await o.describe()}`; } catch (err) { state = `; describe failed: ${String(err)}`; } }
  const err = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what}${state}${err}`);
}
