/**
 * A concurrent client load on the KV service: each client loops put / get / cas on a few shared
 * keys (few keys so clients collide), sends each request to a random node of the live set (any
 * node forwards to the leader), and records it in a History. Every written value is unique.
 *
 * The load never sleeps: a phase runs until some number of requests have completed (see
 * `waitFor`), so its length is counted in operations, not in time.
 *
 * @example
 * const load = new ClientLoad({ http, history, keys: ['a', 'b'], clients: 6, targets: () => cluster.liveHttp() });
 * load.start();
 * await load.waitFor((s) => s.ok >= 200, 30_000, '200 ok requests');
 * await load.stop();
 */
import type { History } from './history';
import type { Address, KvHttpClient } from './http';
import { SeededRandom } from '../../../runtime/random';

export interface LoadTarget { readonly id: number; readonly http: Address }

export interface LoadOptions {
  readonly http: KvHttpClient;
  readonly history: History;
  readonly keys: readonly string[];
  readonly clients: number;
  /** The nodes to send to, asked before every request (the test changes it as nodes come and go). */
  readonly targets: () => readonly LoadTarget[];
  /** Prefix of every written value, so values stay unique across loads (default 'v'). */
  readonly valuePrefix?: string;
  /** Shares of gets, puts and cas (default 0.4 / 0.3 / 0.3). */
  readonly mix?: { get: number; put: number; cas: number };
  /** Pseudo-random seed (default 1): the choices are reproducible, the timing of course is not. */
  readonly seed?: number;
}

export interface LoadStats {
  completed: number;
  ok: number;
  fail: number;
  unknown: number;
  /** Writes the service acknowledged: puts answered 200 and cas that swapped. */
  okWrites: number;
}

export class ClientLoad {
  readonly stats: LoadStats = { completed: 0, ok: 0, fail: 0, unknown: 0, okWrites: 0 };
  /** The first error a client loop threw (a harness bug); it stops the load and fails waitFor and stop. */
  private failure: Error | null = null;
  private running = false;
  private loops: Promise<void>[] = [];
  private waiters: { pred: (s: LoadStats) => boolean; resolve: () => void; reject: (err: Error) => void }[] = [];
  private rand: () => number;
  private readonly prefix: string;
  private readonly mix: { get: number; put: number; cas: number };

  constructor(private readonly o: LoadOptions) {
    const random = new SeededRandom(o.seed ?? 1);
    this.rand = () => random.nextFloat();
    this.prefix = o.valuePrefix ?? 'v';
    this.mix = o.mix ?? { get: 0.4, put: 0.3, cas: 0.3 };
  }

  start(): void {
    if (this.running) throw new Error('load already running');
    this.running = true;
    for (let c = 0; c < this.o.clients; c++) {
      this.loops.push(this.client(c).catch((err: unknown) => this.fail(err)));
    }
  }

  /** Stops issuing requests and waits for those in flight (each ends by its own deadline). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    if (this.failure) throw this.failure;
  }

  private fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    this.running = false;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  /**
   * Resolves once `pred(stats)` holds (checked after every completion); rejects after
   * `timeoutMs` with the stats so far.
   */
  waitFor(pred: (s: LoadStats) => boolean, timeoutMs: number, what: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (pred(this.stats)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        pred,
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (err: Error) => { clearTimeout(timer); reject(err); },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`load: ${what} not reached within ${timeoutMs} ms; stats ${JSON.stringify(this.stats)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  private async client(c: number): Promise<void> {
    const { http, history, keys } = this.o;
    let n = 0;
    /** What this client last saw in each key ('' = missing), its guess for a cas. */
    const seen = new Map<string, string>();
    while (this.running) {
      const targets = this.o.targets();
      if (targets.length === 0) { await pause(); continue; } // every node is down for a moment
      const t = targets[Math.floor(this.rand() * targets.length)];
      const key = keys[Math.floor(this.rand() * keys.length)];
      const p = this.rand();
      if (p < this.mix.get) {
        const r = history.invoke(c, { op: 'get', key }, t.id);
        const out = await http.get(t.http, key);
        history.complete(r, out);
        if (out.outcome === 'ok') seen.set(key, out.output as string);
        await this.settle(out.outcome);
      } else if (p < this.mix.get + this.mix.put) {
        const value = `${this.prefix}.c${c}.${++n}`;
        const r = history.invoke(c, { op: 'put', key, value }, t.id);
        const out = await http.put(t.http, key, value);
        history.complete(r, out);
        if (out.outcome === 'ok') { seen.set(key, value); this.stats.okWrites++; }
        await this.settle(out.outcome);
      } else {
        const value = `${this.prefix}.c${c}.${++n}`;
        const expected = seen.get(key) ?? '';
        const r = history.invoke(c, { op: 'cas', key, expected, value }, t.id);
        const out = await http.cas(t.http, key, expected === '' ? null : expected, value);
        history.complete(r, out);
        if (out.outcome === 'ok') seen.set(key, out.output === true ? value : (out.current ?? ''));
        if (out.outcome === 'ok' && out.output === true) this.stats.okWrites++;
        await this.settle(out.outcome);
      }
    }
  }

  /**
   * Counts a completion; after a request that did not succeed the client pauses briefly, so that
   * during an election or against a dead node it does not spin on instant refusals.
   */
  private async settle(outcome: 'ok' | 'fail' | 'unknown'): Promise<void> {
    this.count(outcome);
    if (outcome !== 'ok' && this.running) await pause();
  }

  private count(outcome: 'ok' | 'fail' | 'unknown'): void {
    this.stats.completed++;
    this.stats[outcome]++;
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.pred(this.stats));
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}

/** The pause after a request that did not succeed. */
const RETRY_PAUSE_MS = 25;
function pause(): Promise<void> { return new Promise((r) => setTimeout(r, RETRY_PAUSE_MS)); }
