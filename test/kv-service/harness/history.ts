/**
 * The client history of a multi-process run, recorded as the clients see it, and its mapping onto
 * the linearizability checker's operations (sim/linearizability).
 *
 * Times are one counter shared by every client of this (single-threaded) test process: `invoke`
 * takes the next value before the request is sent and `complete` the next after the answer is
 * read, so the order of the numbers is the real-time order the clients observed.
 *
 * Outcomes, and how the checker sees them:
 * - ok: the service answered with a definite result (a read's value, a put's index, a cas that
 *   swapped, or a cas refused with 409 CasMismatch, which is a definite "did not swap"); an
 *   operation with its output and return time.
 * - fail: the request certainly had no effect (refused connection, a definite 4xx other than 409):
 *   left out, as Porcupine and sim/workload.ts do.
 * - unknown: a write whose outcome was not observed (timeout, reset, 503): output UNKNOWN and
 *   return Infinity, so it may take effect at any time after its call, or never. An unknown read
 *   changed nothing and is left out.
 *
 * The KV model reads a missing key as '' and a cas expecting '' matches a missing key, so every
 * value the clients write must be non-empty (they are also unique, which gives the checker its
 * strength: a read names the one write it saw).
 *
 * @example
 * const h = new History();
 * const t = h.invoke(0, { op: 'put', key: 'k', value: 'c0-1' }, 1);
 * h.complete(t, { outcome: 'ok', output: undefined });
 * const verdict = h.check({ timeoutMs: 20_000 }).result.verdict;
 */
import {
  checkOperations,
  kvModel,
  UNKNOWN,
  type CheckResult,
  type KvInput,
  type KvOutput,
  type Operation,
} from '../../../sim/linearizability';

export type Outcome = 'ok' | 'fail' | 'unknown';

/** One request as a client saw it. */
export interface Recorded {
  readonly client: number;
  readonly input: KvInput;
  /** The node the request was sent to (any node forwards to the leader). */
  readonly node: number;
  readonly call: number;
  /** Time of the answer; null while open. */
  ret: number | null;
  outcome: Outcome | null;
  /** For ok: a get's value ('' when missing), a cas's swap flag, undefined for a put. */
  output?: KvOutput;
  /** What the client got: HTTP status and error name, or the socket error code. */
  detail?: string;
  /** See Completion.notApplied. */
  notApplied?: boolean;
  /** Wall-clock ms of the call and the answer, for failure reports only (the checker uses call/ret). */
  readonly callMs: number;
  retMs?: number;
}

export interface Completion {
  readonly outcome: Outcome;
  readonly output?: KvOutput;
  readonly detail?: string;
  /** The service said a write with unknown outcome was certainly not applied (503 body `"outcome":"not-applied"`). */
  readonly notApplied?: boolean;
}

/** Counts of one history, for reports and assertions. */
export interface HistorySummary {
  invoked: number;
  open: number;
  ok: number;
  fail: number;
  unknown: number;
  /** ok reads, ok puts, cas that swapped / did not, writes (put and cas) with unknown outcome. */
  reads: number;
  puts: number;
  casSwapped: number;
  casRefused: number;
  unknownWrites: number;
  /** How often each detail (status/error) was seen among fail and unknown outcomes. */
  details: Record<string, number>;
}

export class History {
  private clock = 0;
  readonly records: Recorded[] = [];

  /** Records a request about to be sent; pass the token to `complete`. */
  invoke(client: number, input: KvInput, node: number): Recorded {
    if (input.op !== 'get' && input.value === '') {
      throw new RangeError(`written values must be non-empty (the KV model reads a missing key as ''): ${JSON.stringify(input)}`);
    }
    const r: Recorded = { client, input, node, call: ++this.clock, ret: null, outcome: null, callMs: Date.now() };
    this.records.push(r);
    return r;
  }

  complete(r: Recorded, c: Completion): void {
    if (r.outcome !== null) throw new Error(`request completed twice: ${JSON.stringify(r)}`);
    r.ret = ++this.clock;
    r.retMs = Date.now();
    r.outcome = c.outcome;
    if (c.outcome === 'ok') r.output = c.output;
    if (c.detail !== undefined) r.detail = c.detail;
    if (c.notApplied === true) r.notApplied = true;
  }

  /**
   * The checker's operations. A request still open (the run stopped without its answer) counts
   * as unknown.
   */
  operations(): Operation<KvInput, KvOutput>[] {
    return toOperations(this.records);
  }

  summary(): HistorySummary {
    const s: HistorySummary = {
      invoked: this.records.length, open: 0, ok: 0, fail: 0, unknown: 0,
      reads: 0, puts: 0, casSwapped: 0, casRefused: 0, unknownWrites: 0, details: {},
    };
    for (const r of this.records) {
      if (r.outcome === null) { s.open++; continue; }
      s[r.outcome]++;
      if (r.outcome === 'ok') {
        if (r.input.op === 'get') s.reads++;
        else if (r.input.op === 'cas') (r.output === true ? s.casSwapped++ : s.casRefused++);
        else s.puts++;
      } else {
        if (r.outcome === 'unknown' && r.input.op !== 'get') s.unknownWrites++;
        const d = r.detail ?? '?';
        s.details[d] = (s.details[d] ?? 0) + 1;
      }
    }
    return s;
  }

  /** Runs the checker on the whole history. */
  check(opts: { timeoutMs: number }): { result: CheckResult<KvInput, KvOutput>; operations: number } {
    const ops = this.operations();
    return { result: checkOperations(kvModel, ops, { timeoutMs: opts.timeoutMs }), operations: ops.length };
  }
}

/** The mapping onto the checker's format, exposed for the harness's own tests. */
export function toOperations(records: readonly Recorded[]): Operation<KvInput, KvOutput>[] {
  const ops: Operation<KvInput, KvOutput>[] = [];
  for (const r of records) {
    const outcome = r.outcome ?? 'unknown';
    if (outcome === 'fail') continue;
    if (outcome === 'unknown') {
      if (r.input.op === 'get') continue; // a read has no effect
      ops.push({ clientId: r.client, input: r.input, call: r.call, output: UNKNOWN, return: Infinity });
      continue;
    }
    if (r.ret === null) throw new Error(`ok request without a return time: ${JSON.stringify(r)}`);
    ops.push({ clientId: r.client, input: r.input, call: r.call, output: r.output, return: r.ret });
  }
  return ops;
}

/**
 * Explains an illegal verdict: the partition's key, its operations in call order, and the
 * longest linearization the search found. Bounded so a failure message stays readable.
 */
export function explainIllegal(result: CheckResult<KvInput, KvOutput>, history: History, maxLines = 80): string {
  if (result.illegalPartition === undefined) return `verdict ${result.verdict}`;
  const longest = result.partitions[result.illegalPartition].longestLinearization ?? [];
  // The checker's partitions are kvModel.partition's, in the same order: one key each. (The longest
  // linearization can be empty, so it cannot name the key.)
  const key = kvModel.partition!(history.operations())[result.illegalPartition]?.[0]?.input.key;
  const ofKey = history.records.filter((r) => r.input.key === key);
  const fmt = (r: Recorded) =>
    `  [${r.call}..${r.ret ?? '-'}] c${r.client}@n${r.node} ${kvModel.describe(r.input, r.outcome === 'ok' ? r.output : UNKNOWN)} ${r.outcome ?? 'open'}${r.detail ? ` (${r.detail})` : ''}`;
  const lines = [`illegal history on key ${JSON.stringify(key)}: ${ofKey.length} requests`];
  const last = ofKey.slice(-maxLines);
  if (last.length < ofKey.length) lines.push(`  ... ${ofKey.length - last.length} earlier requests not shown`);
  lines.push(...last.map(fmt));
  lines.push(`longest linearization (${longest.length} operations), last 10:`);
  for (const op of longest.slice(-10)) lines.push(`  ${kvModel.describe(op.input, op.output)} [${op.call}..${op.return}]`);
  return lines.join('\n');
}
