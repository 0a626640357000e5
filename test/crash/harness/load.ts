/**
 * Concurrent clients writing unique ids (`c<client>-<n>`) to the cluster's leader, and the record
 * of what each attempt got. Every attempt uses a fresh id, so the record says exactly what may be
 * applied: an acknowledged id exactly once (at the index of its acknowledgement), a definitely
 * refused one (ForwardToLeader, ProposalDropped) never, and one with an unknown outcome (the node
 * died, stopped or timed out) at most once.
 */
import { ForwardToLeaderError, ProposalDroppedError } from '../../../actors/raft/core/errors';
import type { CrashCluster } from './cluster';

export interface Ack { readonly index: number; readonly term: number; readonly node: number }

export class Load {
  readonly acked = new Map<string, Ack>();
  /** Never applied, by the library's contract. */
  readonly refused = new Set<string>();
  /** May or may not have been applied. */
  readonly unknown = new Map<string, string>();
  /** Error names of unknown outcomes, counted (for the report). */
  readonly unknownKinds = new Map<string, number>();
  inflight = 0;
  private leaderHint: number | null = null;
  private finding: Promise<number> | null = null;
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly waiters = new Set<() => void>();
  private failure: Error | null = null;

  constructor(private readonly cluster: CrashCluster, private readonly writeTimeoutMs = 4_000) {}

  start(clients: number): void {
    for (let c = 1; c <= clients; c++) this.loops.push(this.client(c));
  }

  /** Stops the clients and waits for every write in flight to get its answer. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    if (this.failure) throw this.failure;
  }

  /** Resolves once at least `n` writes are acknowledged in all. */
  waitForAcked(n: number, timeoutMs = 20_000): Promise<void> {
    if (this.acked.size >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) { done(); reject(this.failure); return; }
        if (this.acked.size >= n) { done(); resolve(); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`only ${this.acked.size} of ${n} writes acknowledged within ${timeoutMs} ms (inflight ${this.inflight}, unknown ${this.unknown.size})`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
    });
  }

  private notify(): void { for (const w of [...this.waiters]) w(); }

  private async leader(): Promise<number> {
    if (this.leaderHint !== null && this.cluster.isAlive(this.leaderHint)) return this.leaderHint;
    this.finding ??= this.cluster.findLeader().finally(() => { this.finding = null; });
    const id = await this.finding;
    this.leaderHint = id;
    return id;
  }

  private async client(c: number): Promise<void> {
    let n = 0;
    try {
      while (!this.stopped) {
        const node = await this.leader();
        if (this.stopped) break;
        const id = `c${c}-${++n}`;
        this.inflight++;
        try {
          const r = await this.cluster.write(node, id, this.writeTimeoutMs);
          this.acked.set(id, { index: r.index, term: r.term, node });
        } catch (err) {
          if (err instanceof ForwardToLeaderError) {
            this.refused.add(id);
            this.leaderHint = err.leaderId !== null && err.leaderId !== node ? err.leaderId : null;
          } else if (err instanceof ProposalDroppedError) {
            this.refused.add(id);
          } else {
            const kind = (err as Error)?.name ?? 'non-error';
            this.unknown.set(id, `${kind}: ${(err as Error)?.message}`);
            this.unknownKinds.set(kind, (this.unknownKinds.get(kind) ?? 0) + 1);
            if (this.leaderHint === node) this.leaderHint = null;
          }
        } finally {
          this.inflight--;
        }
        this.notify();
      }
    } catch (err) {
      // findLeader gave up: the cluster stayed without a leader past its deadline.
      this.failure ??= err as Error;
      this.stopped = true;
      this.notify();
    }
  }
}
