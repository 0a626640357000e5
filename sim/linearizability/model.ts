/**
 * Sequential specifications for the linearizability checker. A model says which outputs an
 * operation may return from a given state; the checker searches for an order of the history's
 * operations that the model accepts.
 */
import { isUnknown, Operation, Unknown } from './history';

/**
 * A sequential specification. `step` must be pure: the checker calls it many times on the same
 * state while backtracking. When `output` is UNKNOWN the step must accept (return ok) and apply
 * the operation's effect as if it took effect now; "never took effect" is covered by the search
 * placing it last.
 *
 * @example
 * const counter: Model<number, 'inc', undefined> = {
 *   name: 'counter', init: () => 0, step: (s) => [true, s + 1],
 *   describe: () => 'inc', describeState: (s) => String(s),
 * };
 */
export interface Model<State, Input, Output> {
  name: string;
  init(): State;
  step(state: State, input: Input, output: Output | Unknown): [boolean, State];
  /** State equality for memoization; defaults to Object.is, which suits primitive states. */
  equal?(a: State, b: State): boolean;
  /** Optional state hash mixed into the memo key; equal states must hash equally. */
  hash?(state: State): number;
  /**
   * Splits a history into independent sub-histories (for example one per key). The history is
   * linearizable exactly when every part is, and the search is exponential in part size, so
   * this is what makes large key-value histories tractable.
   */
  partition?(ops: Operation<Input, Output>[]): Operation<Input, Output>[][];
  describe(input: Input, output: Output | Unknown): string;
  describeState(state: State): string;
}

/** Input of the key-value model. @example const i: KvInput = { op: 'append', key: 'k', value: 'x' }; */
export type KvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'append'; key: string; value: string }
  /** Compare-and-set: sets `value` if the key holds `expected` ('' matches a missing key). */
  | { op: 'cas'; key: string; expected: string; value: string };

/**
 * `get` returns the value (missing keys read as ''); `cas` whether it set the value; `put` and
 * `append` return nothing.
 */
export type KvOutput = string | boolean | undefined;

/**
 * One key's value in a key-value map: get/put/append/cas, with the history partitioned by key
 * (the state of each partition is that key's string).
 *
 * @example
 * const result = checkOperations(kvModel, ops, { timeoutMs: 10_000 });
 */
export const kvModel: Model<string, KvInput, KvOutput> = {
  name: 'kv',
  init: () => '',
  // Different append orders give different strings for the same linearized set, so without a
  // state hash those configurations pile up in one memo bucket and are compared char by char.
  hash: hashString,
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        return [isUnknown(output) || output === state, state];
      case 'put':
        return [true, input.value];
      case 'append':
        return [true, state + input.value];
      case 'cas': {
        const matches = state === input.expected;
        if (isUnknown(output)) return [true, matches ? input.value : state];
        return output === true ? [matches, matches ? input.value : state] : [!matches, state];
      }
    }
  },
  partition(ops) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of ops) {
      const part = byKey.get(op.input.key);
      if (part) part.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },
  describe(input, output) {
    const out = isUnknown(output) ? '?' : JSON.stringify(output ?? null);
    switch (input.op) {
      case 'get': return `get(${input.key}) -> ${out}`;
      case 'cas': return `cas(${input.key}, ${JSON.stringify(input.expected)}, ${JSON.stringify(input.value)}) -> ${out}`;
      default: return `${input.op}(${input.key}, ${JSON.stringify(input.value)})`;
    }
  },
  describeState: (state) => JSON.stringify(state),
};

/** A register value; `null` is "never written" (Jepsen's `nil`). */
export type RegisterValue = number | string | null;

/** Input of the register model. @example const i: RegisterInput = { op: 'cas', from: 1, to: 2 }; */
export type RegisterInput =
  | { op: 'read' }
  | { op: 'write'; value: RegisterValue }
  | { op: 'cas'; from: RegisterValue; to: RegisterValue };

/** `read` returns the value, `cas` whether it swapped, `write` nothing. */
export type RegisterOutput = RegisterValue | boolean | undefined;

/**
 * A single register with read, write and compare-and-swap, starting at `null`. A cas that
 * returned false observed a different value and changed nothing; a cas with unknown outcome
 * swaps if the value matches at the point the search places it.
 *
 * @example
 * checkOperations(registerModel, parseEtcdLog(text, 'etcd_000.log'), { timeoutMs: 5_000 });
 */
export const registerModel: Model<RegisterValue, RegisterInput, RegisterOutput> = {
  name: 'register',
  init: () => null,
  hash: (state) => (state === null ? 0x9e3779b9 : hashString(String(state))),
  step(state, input, output) {
    switch (input.op) {
      case 'read':
        return [isUnknown(output) || output === state, state];
      case 'write':
        return [true, input.value];
      case 'cas': {
        const matches = state === input.from;
        if (isUnknown(output)) return [true, matches ? input.to : state];
        return output === true ? [matches, matches ? input.to : state] : [!matches, state];
      }
    }
  },
  describe(input, output) {
    const out = isUnknown(output) ? '?' : JSON.stringify(output ?? null);
    switch (input.op) {
      case 'read':
        return `read() -> ${out}`;
      case 'write':
        return `write(${JSON.stringify(input.value)})`;
      case 'cas':
        return `cas(${JSON.stringify(input.from)}, ${JSON.stringify(input.to)}) -> ${out}`;
    }
  },
  describeState: (state) => JSON.stringify(state),
};

/** FNV-1a over UTF-16 code units. @example hashString('abc') */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
