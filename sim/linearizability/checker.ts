/**
 * Linearizability checking by the Wing & Gong search with Lowe's memoization (the approach
 * Porcupine takes): walk a linked list of call/return events, tentatively linearize any call
 * whose operation the model accepts, backtrack when a return is reached whose call has not been
 * linearized, and skip any (linearized set, state) configuration already explored.
 */
import { Operation } from './history';
import { Model } from './model';

/** 'unknown' means the time budget ran out: it is never a pass. */
export type Verdict = 'ok' | 'illegal' | 'unknown';

/** Outcome for one independent sub-history (e.g. one key). */
export interface PartitionResult<Input, Output> {
  index: number;
  verdict: Verdict;
  operations: number;
  elapsedMs: number;
  /**
   * For an illegal partition: the longest sequence of operations the search could linearize,
   * in linearization order, which points at where the history goes wrong.
   */
  longestLinearization?: Operation<Input, Output>[];
}

/** Overall outcome; `partitions` lists the parts checked, in order. */
export interface CheckResult<Input, Output> {
  verdict: Verdict;
  partitions: PartitionResult<Input, Output>[];
  elapsedMs: number;
  /** Index of the first illegal partition, when the verdict is 'illegal'. */
  illegalPartition?: number;
}

export interface CheckOptions {
  /** Budget for the whole check; exhausting it yields 'unknown'. Default: no limit. */
  timeoutMs?: number;
}

/** Search steps one partition takes before the next gets a turn. */
const SLICE_STEPS = 4096;

/**
 * Checks whether `ops` is linearizable with respect to `model`. Partitions (if the model
 * defines them) are searched round-robin in fixed slices of steps, the way Porcupine runs them
 * in parallel: one illegal part decides the whole history, and it must not wait behind a part
 * whose search happens to explode. Step-counted slices keep the result deterministic apart
 * from where a timeout hits. Partitions abandoned because another was illegal, or because the
 * budget ran out, report 'unknown'.
 *
 * @example
 * const r = checkOperations(registerModel, ops, { timeoutMs: 10_000 });
 * if (r.verdict !== 'ok') throw new Error(`not proven linearizable: ${r.verdict}`);
 */
export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  const start = performance.now();
  const deadline = start + (options.timeoutMs ?? Infinity);
  const parts = model.partition ? model.partition([...ops]) : [[...ops]];
  const searches = parts.map((part) => new PartitionSearch(model, part));
  const partitions: PartitionResult<Input, Output>[] = parts.map((part, index) => ({
    index,
    verdict: 'unknown',
    operations: part.length,
    elapsedMs: 0,
  }));
  let active = searches.map((_, i) => i);
  let illegalPartition: number | undefined;
  let timedOut = false;
  while (active.length > 0 && illegalPartition === undefined && !timedOut) {
    const still: number[] = [];
    for (const i of active) {
      const sliceStart = performance.now();
      const outcome = searches[i].advance(SLICE_STEPS, deadline);
      partitions[i].elapsedMs += performance.now() - sliceStart;
      if (outcome === 'running') {
        still.push(i);
      } else if (outcome === 'unknown') {
        timedOut = true;
        break;
      } else {
        partitions[i].verdict = outcome;
        if (outcome === 'illegal') {
          partitions[i].longestLinearization = searches[i].longest();
          illegalPartition = i;
          break;
        }
      }
    }
    active = still;
  }
  const verdict: Verdict =
    illegalPartition !== undefined ? 'illegal' : partitions.every((p) => p.verdict === 'ok') ? 'ok' : 'unknown';
  const out: CheckResult<Input, Output> = { verdict, partitions, elapsedMs: performance.now() - start };
  if (illegalPartition !== undefined) out.illegalPartition = illegalPartition;
  return out;
}

/** The search over one partition, resumable so partitions can share time. */
class PartitionSearch<State, Input, Output> {
  // Nodes 1..2n are events, node 0 is the list head; -1 ends the list. Typed arrays keep the
  // hot loop free of object allocation.
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly opOf: Int32Array;
  private readonly isCall: Uint8Array;
  private readonly match: Int32Array;
  private readonly linearized: Uint32Array;
  private readonly cache = new Map<number, { bits: Uint32Array; state: State }[]>();
  private readonly equal: (a: State, b: State) => boolean;
  private readonly stackNode: number[] = [];
  private readonly stackState: State[] = [];
  private state: State;
  private entry: number;
  private best: number[] = [];
  private done: Verdict | undefined;

  constructor(
    private readonly model: Model<State, Input, Output>,
    private readonly ops: readonly Operation<Input, Output>[],
  ) {
    const n = ops.length;
    const events: { op: number; call: boolean; time: number }[] = [];
    for (let i = 0; i < n; i++) {
      events.push({ op: i, call: true, time: ops[i].call });
      events.push({ op: i, call: false, time: ops[i].return });
    }
    // At equal times calls come first, so touching operations count as concurrent (the
    // permissive reading: never call a history illegal on a tie). Op index breaks further
    // ties so the order, and hence the search, is deterministic.
    events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
    const size = 2 * n + 1;
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.opOf = new Int32Array(size);
    this.isCall = new Uint8Array(size);
    this.match = new Int32Array(size);
    const callNode = new Int32Array(n);
    for (let k = 0; k < events.length; k++) {
      const node = k + 1;
      this.opOf[node] = events[k].op;
      if (events[k].call) {
        this.isCall[node] = 1;
        callNode[events[k].op] = node;
      } else {
        this.match[callNode[events[k].op]] = node;
      }
      this.prev[node] = node - 1;
      this.next[node] = node + 1 < size ? node + 1 : -1;
    }
    this.next[0] = n > 0 ? 1 : -1;
    this.linearized = new Uint32Array((n + 31) >>> 5);
    this.equal = model.equal ?? Object.is;
    this.state = model.init();
    this.entry = this.next[0];
  }

  /** The longest linearization found so far, in order. */
  longest(): Operation<Input, Output>[] {
    return this.best.map((i) => this.ops[i]);
  }

  /** Runs up to `steps` search steps; 'running' means call again. */
  advance(steps: number, deadline: number): Verdict | 'running' {
    if (this.done) return this.done;
    const { next, opOf, isCall, linearized, model, ops, stackNode, stackState } = this;
    let entry = this.entry;
    for (let i = 0; i < steps; i++) {
      if (next[0] === -1) return (this.done = 'ok');
      // Clock reads are comparatively slow; sampling every 1024 steps keeps the overhead
      // negligible while a budget of 0 still stops at the first step.
      if ((i & 1023) === 0 && performance.now() >= deadline) {
        this.entry = entry;
        return 'unknown';
      }
      if (isCall[entry]) {
        const id = opOf[entry];
        const op = ops[id];
        const [ok, newState] = model.step(this.state, op.input, op.output);
        if (ok) {
          linearized[id >>> 5] |= 1 << (id & 31);
          const key = memoKey(linearized, model.hash ? model.hash(newState) : 0);
          if (remember(this.cache, key, linearized, newState, this.equal)) {
            stackNode.push(entry);
            stackState.push(this.state);
            this.state = newState;
            this.lift(entry);
            if (stackNode.length > this.best.length) this.best = stackNode.map((node) => opOf[node]);
            entry = next[0];
            continue;
          }
          linearized[id >>> 5] &= ~(1 << (id & 31));
        }
        entry = next[entry];
      } else {
        // A return whose call is still in the list: that operation had to take effect by now
        // and could not, so undo the most recent choice and try the next candidate after it.
        if (stackNode.length === 0) return (this.done = 'illegal');
        const node = stackNode.pop() as number;
        this.state = stackState.pop() as State;
        const id = opOf[node];
        linearized[id >>> 5] &= ~(1 << (id & 31));
        this.unlift(node);
        entry = next[node];
      }
    }
    this.entry = entry;
    if (next[0] === -1) return (this.done = 'ok');
    return 'running';
  }

  private lift(node: number): void {
    const { next, prev } = this;
    next[prev[node]] = next[node];
    prev[next[node]] = prev[node];
    const ret = this.match[node];
    next[prev[ret]] = next[ret];
    if (next[ret] !== -1) prev[next[ret]] = prev[ret];
  }

  // Reinsert in the reverse order of removal so each node's saved neighbours are valid again.
  private unlift(node: number): void {
    const { next, prev } = this;
    const ret = this.match[node];
    next[prev[ret]] = ret;
    if (next[ret] !== -1) prev[next[ret]] = ret;
    next[prev[node]] = node;
    prev[next[node]] = node;
  }
}

function memoKey(bits: Uint32Array, stateHash: number): number {
  // FNV-1a over the words; collisions only cost an extra equality check.
  let h = 0x811c9dc5 ^ stateHash;
  for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i], 0x01000193);
  return h >>> 0;
}

/** Records (bits, state); returns false when that configuration was already explored. */
function remember<State>(
  cache: Map<number, { bits: Uint32Array; state: State }[]>,
  key: number,
  bits: Uint32Array,
  state: State,
  equal: (a: State, b: State) => boolean,
): boolean {
  let bucket = cache.get(key);
  if (!bucket) {
    bucket = [];
    cache.set(key, bucket);
  }
  for (const seen of bucket) {
    if (equal(seen.state, state) && sameBits(seen.bits, bits)) return false;
  }
  bucket.push({ bits: bits.slice(), state });
  return true;
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
