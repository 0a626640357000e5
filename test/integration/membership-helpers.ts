/**
 * Helpers of the membership suite (t70): membership predicates, finding the leader while the
 * config moves, proposing a change on whoever leads, and a pool of writers that keeps appending
 * tokens while the cluster changes and can prove afterwards that nothing acknowledged was lost or
 * applied twice. Not a test file: mocha only picks up *.test.ts. Everything waits on metrics or on
 * replies, never on a fixed sleep.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import type { RaftNode } from '../../actors/node';
import { isMembershipCommitted, type RaftMetrics } from '../../actors/metrics/metrics';
import {
  ConfigChangeAbortedError, ForwardToLeaderError, NodeNotLeaderError, NoopConfigChangeError, ProposalDroppedError,
} from '../../actors/raft/core/errors';
import type { Membership, NodeId } from '../../actors/raft/core/types';
import type { ClientWriteResponse, ConfigChangeResult } from '../../actors/raft/raft-actor';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { waitUntil } from './helpers';

/** What proposeConfigChange takes (the shape the application passes). */
export type ConfigChange = Parameters<RaftNode['proposeConfigChange']>[0];

export const put = (key: string, value: string): Uint8Array => encodeKv({ op: 'put', key, value });

const sorted = (ids: readonly number[]): number[] => [...ids].sort((a, b) => a - b);

/** A membership as plain sorted arrays, for deep equality and for messages. */
export function shape(m: Membership): { members: number[]; nonVoters: number[]; membersAfterConsensus: number[] | null } {
  return {
    members: sorted(m.members), nonVoters: sorted(m.nonVoters),
    membersAfterConsensus: m.membersAfterConsensus === null ? null : sorted(m.membersAfterConsensus),
  };
}

/** True when `m` is the uniform config with exactly these voters and non-voters. */
export function isUniform(m: Membership, voters: readonly number[], nonVoters: readonly number[] = []): boolean {
  return JSON.stringify(shape(m)) === JSON.stringify({ members: sorted(voters), nonVoters: sorted(nonVoters), membersAfterConsensus: null });
}

/** Waits until node `id` holds the uniform config (voters, nonVoters) and knows it is committed. */
export function waitForConfig(cluster: LocalCluster, id: number, voters: readonly number[], nonVoters: readonly number[] = [], timeoutMs = 15_000): Promise<RaftMetrics> {
  return waitUntil(cluster.node(id), (m) => isUniform(m.membership, voters, nonVoters) && isMembershipCommitted(m),
    `committed config voters ${JSON.stringify(sorted(voters))} non-voters ${JSON.stringify(sorted(nonVoters))}`, timeoutMs);
}

/** Resolves on the next published metrics of any node in `ids`, or after `capMs` (a bounded wait for an event, not a sleep). */
export function nextMetricsOfAny(cluster: LocalCluster, ids: readonly number[], capMs = 100): Promise<void> {
  return new Promise<void>((resolve) => {
    const offs: (() => void)[] = [];
    const done = () => { clearTimeout(t); for (const off of offs) off(); resolve(); };
    const t = setTimeout(done, capMs);
    for (const id of ids) if (cluster.ids.includes(id as NodeId)) offs.push(cluster.node(id).onMetrics(done));
  });
}

/**
 * The running node whose latest published metrics say Leader, in the highest term (a deposed
 * leader may not know yet). Waits for one until `timeoutMs`. Looser than cluster.waitForLeader:
 * it does not need every node to agree, which nodes being added or removed never do.
 */
export async function findLeader(cluster: LocalCluster, timeoutMs = 15_000): Promise<NodeId> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let best: RaftMetrics | null = null;
    for (const n of cluster.all()) {
      const m = n.metrics();
      if (m !== null && m.state === 'Leader' && (best === null || m.currentTerm > best.currentTerm)) best = m;
    }
    if (best !== null) return best.id;
    if (Date.now() > deadline) throw new Error(`no node claims leadership within ${timeoutMs} ms: ${JSON.stringify(cluster.all().map((n) => n.metrics() && { id: n.id, state: n.metrics()!.state, term: n.metrics()!.currentTerm }))}`);
    await nextMetricsOfAny(cluster, cluster.ids, 100);
  }
}

/**
 * Proposes `change` on whoever leads, following leadership while it moves (NodeNotLeaderError, or
 * ConfigChangeAbortedError because leadership was lost). After an abort that may still complete,
 * a NoopConfigChangeError means the change did happen: that is then the result. Returns the result
 * and how many proposals it took (1 when nothing moved).
 */
export async function proposeOnLeader(cluster: LocalCluster, change: ConfigChange, opts: { attempts?: number; timeoutMs?: number } = {}): Promise<{ result: ConfigChangeResult; attempts: number }> {
  const attempts = opts.attempts ?? 5;
  let mayHaveHappened = false;
  for (let attempt = 1; ; attempt++) {
    const leader = await findLeader(cluster);
    try {
      return { result: await cluster.node(leader).proposeConfigChange(change, { timeoutMs: opts.timeoutMs ?? 60_000 }), attempts: attempt };
    } catch (err) {
      if (err instanceof NoopConfigChangeError && mayHaveHappened) {
        const m = await cluster.node(leader).currentMetrics();
        return { result: { index: m.membershipIndex, membership: m.membership }, attempts: attempt };
      }
      const retriable = err instanceof NodeNotLeaderError || err instanceof ConfigChangeAbortedError;
      if (!retriable || attempt >= attempts) throw err;
      if (err instanceof ConfigChangeAbortedError && err.mayStillComplete) mayHaveHappened = true;
      await nextMetricsOfAny(cluster, cluster.ids, 200);
    }
  }
}

/**
 * One write to whoever leads, retried while it is definitely not applied (ForwardToLeaderError,
 * ProposalDroppedError). Any other error (outcome unknown) is thrown.
 */
export async function writeToLeader(cluster: LocalCluster, payload: Uint8Array, timeoutMs = 15_000): Promise<ClientWriteResponse> {
  const deadline = Date.now() + timeoutMs;
  let target: number | null = null;
  for (;;) {
    if (target === null || !cluster.ids.includes(target as NodeId)) target = await findLeader(cluster, Math.max(1, deadline - Date.now()));
    try {
      return await cluster.node(target).clientWrite(payload, { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (err instanceof ForwardToLeaderError) {
        target = err.leaderId;
        if (target === null) await nextMetricsOfAny(cluster, cluster.ids, 100);
        continue;
      }
      if (err instanceof ProposalDroppedError) continue;
      throw err;
    }
  }
}

/** Tokens per key: appends copy the value, so keys are kept short. */
const TOKENS_PER_KEY = 100;

/**
 * Writers that append tokens while the cluster changes. Client `c` appends `i;` to key
 * `w<c>.<i / 100>` for i = 0, 1, 2, ... one at a time, at most one write per `paceMs` (a rate
 * limit on the load, so that thousands of writes a second do not starve worker threads that are
 * starting; nothing waits on it). A write refused as ForwardToLeaderError or ProposalDroppedError
 * was definitely not applied and is retried (at the leader named, or the one found); any other
 * error (a timeout, NodeStoppedError, NodeRemovedError) leaves its outcome unknown: the token is
 * never retried, so it may be applied at most once. `verify` checks every member afterwards.
 */
export class Writers {
  private running = false;
  private loops: Promise<void>[] = [];
  private failure: Error | null = null;
  private readonly acked: Set<number>[];
  private readonly unknown: Set<number>[];
  private ackCount = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  redirects = 0;
  dropped = 0;
  unknownErrors = new Map<string, number>();

  private maxToken = -1;

  constructor(private readonly cluster: LocalCluster, readonly clients = 3, private readonly writeTimeoutMs = 5_000, private readonly paceMs = 5) {
    this.acked = Array.from({ length: clients }, () => new Set<number>());
    this.unknown = Array.from({ length: clients }, () => new Set<number>());
  }

  get acks(): number { return this.ackCount; }
  get unknowns(): number { return this.unknown.reduce((s, u) => s + u.size, 0); }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: this.clients }, (_, c) => this.client(c).catch((err: Error) => { this.failure ??= err; this.running = false; }));
  }

  /** Resolves once `more` further writes have been acknowledged; rejects after `timeoutMs` or if a writer failed. */
  async waitForMoreAcks(more: number, timeoutMs = 20_000, what = 'writes'): Promise<void> {
    const target = this.ackCount + more;
    if (this.failure) throw this.failure;
    let timer: NodeJS.Timeout | undefined;
    const reached = new Promise<void>((resolve) => { this.waiters.push({ n: target, resolve }); });
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: only ${this.ackCount - (target - more)} of ${more} more writes acknowledged within ${timeoutMs} ms (failure: ${this.failure?.message ?? 'none'})`)), timeoutMs);
    });
    try { await Promise.race([reached, expired]); } finally { clearTimeout(timer); }
    if (this.failure) throw this.failure;
  }

  /** Stops the writers (each finishes the write it is waiting on) and rethrows a writer's failure. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    if (this.failure) throw this.failure;
  }

  private acknowledge(c: number, i: number): void {
    this.acked[c].add(i);
    this.ackCount++;
    this.waiters = this.waiters.filter((w) => { if (this.ackCount >= w.n) { w.resolve(); return false; } return true; });
  }

  private async client(c: number): Promise<void> {
    let target: number | null = null;
    let redirectsInARow = 0;
    for (let i = 0; this.running; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, this.paceMs));
      this.maxToken = Math.max(this.maxToken, i);
      const payload = encodeKv({ op: 'append', key: `w${c}.${Math.floor(i / TOKENS_PER_KEY)}`, value: `${i};` });
      while (this.running) {
        if (target === null || !this.cluster.ids.includes(target as NodeId)) target = await findLeader(this.cluster, 20_000);
        try {
          await this.cluster.node(target).clientWrite(payload, { timeoutMs: this.writeTimeoutMs });
          this.acknowledge(c, i);
          redirectsInARow = 0;
          break;
        } catch (err) {
          if (err instanceof ForwardToLeaderError) {
            // Not applied: retry at the leader named, or wait for news of one.
            this.redirects++;
            target = err.leaderId;
            if (target === null || ++redirectsInARow > 10) { redirectsInARow = 0; target = null; await nextMetricsOfAny(this.cluster, this.cluster.ids, 100); }
            continue;
          }
          if (err instanceof ProposalDroppedError) { this.dropped++; continue; }
          // Outcome unknown: never retry this token; look for the leader again.
          const name = (err as { code?: string }).code ?? (err as Error).name;
          this.unknownErrors.set(name, (this.unknownErrors.get(name) ?? 0) + 1);
          this.unknown[c].add(i);
          target = null;
          break;
        }
      }
    }
  }

  /**
   * Checks node `id`'s state machine: per client, the tokens applied are strictly increasing (so
   * none twice and in the order written), every acknowledged token is there, and every token
   * there was acknowledged or of unknown outcome.
   */
  async verify(id: number): Promise<void> {
    for (let c = 0; c < this.clients; c++) {
      const seq: number[] = [];
      for (let b = 0; b <= Math.floor(this.maxToken / TOKENS_PER_KEY); b++) {
        const value = await this.cluster.node(id).query<string | null>({ q: 'get', key: `w${c}.${b}` });
        seq.push(...(value ?? '').split(';').filter((x) => x.length > 0).map(Number));
      }
      const notIncreasing = seq.filter((v, k) => k > 0 && v <= seq[k - 1]);
      expect(notIncreasing, `node ${id}, client ${c}: tokens applied twice or out of order`).to.deep.equal([]);
      const present = new Set(seq);
      const lost = [...this.acked[c]].filter((t) => !present.has(t));
      expect(lost, `node ${id}, client ${c}: acknowledged tokens missing`).to.deep.equal([]);
      const strangers = seq.filter((t) => !this.acked[c].has(t) && !this.unknown[c].has(t));
      expect(strangers, `node ${id}, client ${c}: tokens neither acknowledged nor of unknown outcome`).to.deep.equal([]);
    }
  }

  summary(): string {
    const unknown = [...this.unknownErrors].map(([k, v]) => `${k} ${v}`).join(', ');
    return `acked ${this.acks}, unknown ${this.unknowns}${unknown ? ` (${unknown})` : ''}, redirects ${this.redirects}, dropped ${this.dropped}`;
  }
}
