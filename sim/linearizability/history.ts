/**
 * Histories for the linearizability checker: completed operations with call and return times,
 * operations whose outcome is unknown, and the pairing of invoke/complete events into operations.
 */

/**
 * Marks an output that was never observed (a timed-out or crashed request). A model's `step`
 * must accept any output when it sees this value, so the operation may or may not have taken
 * effect. It is a symbol so it cannot collide with any real output, including `undefined`.
 *
 * @example
 * const op: Operation<RegisterInput, RegisterOutput> =
 *   { clientId: 1, input: { op: 'write', value: 3 }, call: 5, output: UNKNOWN, return: Infinity };
 */
export const UNKNOWN: unique symbol = Symbol('linearizability.unknown-output');
export type Unknown = typeof UNKNOWN;

/**
 * One operation of a history. `call` and `return` are times on any monotonic scale; only their
 * order matters. An operation whose outcome is unknown has `return: Infinity` and
 * `output: UNKNOWN`: it may take effect at any time after its call, or never.
 *
 * @example
 * const put: Operation<KvInput, KvOutput> =
 *   { clientId: 0, input: { op: 'put', key: 'x', value: '1' }, call: 0, output: undefined, return: 1 };
 */
export interface Operation<Input, Output> {
  clientId: number;
  input: Input;
  call: number;
  output: Output | Unknown;
  return: number;
}

/** True when `output` is the unknown-outcome marker. @example isUnknown(op.output) */
export function isUnknown(output: unknown): output is Unknown {
  return output === UNKNOWN;
}

/**
 * Builds an operation whose outcome is unknown: pending forever, any output acceptable.
 *
 * @example
 * const w = pendingOperation(2, { op: 'write', value: 7 }, 10);
 */
export function pendingOperation<Input, Output>(
  clientId: number,
  input: Input,
  call: number,
): Operation<Input, Output> {
  return { clientId, input, call, output: UNKNOWN, return: Infinity };
}

/**
 * A history file (or event list) could not be read; names the source and the 1-based line so
 * the offending record can be found without re-running anything.
 *
 * @example
 * try { parseKvHistory(text, 'c01-ok.txt'); } catch (e) { if (e instanceof HistoryFormatError) console.log(e.line); }
 */
export class HistoryFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'HistoryFormatError';
  }
}

/** How a request ended, in Jepsen's vocabulary. */
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

/**
 * One line of a Jepsen-style history: a client invoking a request or its completion.
 * `ok` carries the observed output; `fail` means the request did not take effect; `info` means
 * the outcome is unknown.
 *
 * @example
 * const e: HistoryEvent<KvInput, KvOutput> = { clientId: 0, type: 'invoke', time: 0, line: 1, input: { op: 'get', key: 'k' } };
 */
export interface HistoryEvent<Input, Output> {
  clientId: number;
  type: EventType;
  time: number;
  line: number;
  input?: Input;
  output?: Output;
}

/**
 * Pairs each invoke with the same client's next completion. Failed operations are dropped
 * (they did not take effect, so they constrain nothing); `info` completions and invokes left
 * open at the end of the history become pending operations.
 *
 * @example
 * const ops = pairEvents(events, 'etcd_000.log');
 */
export function pairEvents<Input, Output>(
  events: readonly HistoryEvent<Input, Output>[],
  file: string,
): Operation<Input, Output>[] {
  const open = new Map<number, { event: HistoryEvent<Input, Output>; index: number }>();
  // Slots keep operations in invoke order; dropped (failed) ones stay null and are filtered out.
  const slots: (Operation<Input, Output> | null)[] = [];
  for (const event of events) {
    if (event.type === 'invoke') {
      if (open.has(event.clientId)) {
        throw new HistoryFormatError(file, event.line, `client ${event.clientId} invokes while a request is open`);
      }
      if (event.input === undefined) throw new HistoryFormatError(file, event.line, 'invoke without input');
      open.set(event.clientId, { event, index: slots.length });
      slots.push(null);
      continue;
    }
    const pending = open.get(event.clientId);
    if (!pending) {
      throw new HistoryFormatError(file, event.line, `client ${event.clientId} completes a request it never invoked`);
    }
    open.delete(event.clientId);
    const input = pending.event.input as Input;
    const call = pending.event.time;
    if (event.type === 'ok') {
      slots[pending.index] = { clientId: event.clientId, input, call, output: event.output as Output, return: event.time };
    } else if (event.type === 'info') {
      slots[pending.index] = pendingOperation<Input, Output>(event.clientId, input, call);
    }
  }
  // A request still open when the history ends has an unknown outcome, like an `info`.
  for (const { event, index } of open.values()) {
    slots[index] = pendingOperation<Input, Output>(event.clientId, event.input as Input, event.time);
  }
  return slots.filter((op): op is Operation<Input, Output> => op !== null);
}
