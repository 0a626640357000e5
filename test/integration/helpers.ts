/**
 * Shared helpers of the integration suite (not a test file: mocha only picks up *.test.ts).
 * Everything here waits on metrics or on replies, never on a fixed sleep.
 */
import { expect } from 'chai';
import { LocalCluster, type LocalClusterOptions } from '../../actors/local-cluster';
import type { RaftNode } from '../../actors/node';
import type { RaftMetrics } from '../../actors/metrics/metrics';
import type { Entry } from '../../actors/raft/core/types';
import { decodeEntries } from '../../actors/raft/codec';
import { KV_MODULE } from '../../examples/kv/kv-state-machine';
import type { StorageMsg } from '../../storage/storage';
import { SeededRandom } from '../../runtime/random';

export const PLACEMENTS = ['local', 'worker'] as const;
export type Placement = (typeof PLACEMENTS)[number];

export const KV_SPEC = { module: KV_MODULE, export: 'createKv', args: {} } as const;

export interface KvDigest { readonly appliedIndex: number; readonly keys: number; readonly sha256: string }

/** Starts a KV cluster with a fixed seed (deterministic election timeouts). */
export function startKvCluster(opts: Omit<LocalClusterOptions, 'stateMachine'>): Promise<LocalCluster> {
  return LocalCluster.start({ seed: 7, ...opts, stateMachine: KV_SPEC });
}

/**
 * Shuts a cluster down and checks the lifecycle contract: afterwards the actor system knows no
 * actor and no arbiter, and no worker thread is alive.
 */
export async function shutdownAndCheck(cluster: LocalCluster): Promise<void> {
  await cluster.shutdown();
  const stats = await cluster.system.stats();
  expect(cluster.system.arbiterNames(), 'arbiters left after shutdown').to.deep.equal([]);
  expect(cluster.system.actorIds(), 'actors left after shutdown').to.deep.equal([]);
  expect(stats.actors, 'actors in stats after shutdown').to.equal(0);
  expect(stats.workers, 'worker threads after shutdown').to.equal(0);
  expect(stats.main.actors, 'main-thread actors after shutdown').to.equal(0);
  expect(cluster.system.isShutDown).to.equal(true);
}

/**
 * Resolves with the node's fresh metrics once `pred` holds. Re-checks on every published metrics
 * update, and asks the Raft actor directly at least every 50 ms (periodic metrics are published
 * only every `metricsIntervalMs`, 1 s by default). Rejects after `timeoutMs` with the last metrics.
 */
export async function waitUntil(node: RaftNode, pred: (m: RaftMetrics) => boolean, what: string, timeoutMs = 15_000): Promise<RaftMetrics> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await node.currentMetrics();
    if (pred(m)) return m;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`node ${node.id}: ${what} not reached within ${timeoutMs} ms; last metrics ${JSON.stringify(m)}`);
    await node.waitForMetrics(pred, { timeoutMs: Math.min(50, left), what }).catch(() => undefined);
  }
}

/** The KV digest of every node in `ids`, in that order. */
export function digests(cluster: LocalCluster, ids: readonly number[] = cluster.ids): Promise<KvDigest[]> {
  return Promise.all(ids.map((id) => cluster.node(id).query<KvDigest>({ q: 'digest' })));
}

/**
 * Waits until one leader is agreed by every node, then until every node has applied the leader's
 * commit index, and returns the leader and that index.
 */
export async function converge(cluster: LocalCluster, timeoutMs = 20_000): Promise<{ leader: number; commitIndex: number }> {
  const leader = await cluster.waitForLeader({ timeoutMs });
  const { commitIndex } = await cluster.node(leader).currentMetrics();
  await cluster.waitForApplied(commitIndex, { timeoutMs });
  return { leader, commitIndex };
}

/** Reads log entries [from, toExclusive) straight from a node's storage actor (read-only). */
export async function storedEntries(cluster: LocalCluster, id: number, from: number, toExclusive: number): Promise<Entry[]> {
  const bytes = await cluster.system.ref<StorageMsg>(`n${id}/storage`).ask<Uint8Array>({ type: 'getEntries', from: from as never, toExclusive: toExclusive as never });
  return decodeEntries(bytes);
}

/** Awaits a promise that must reject, checks the error's class, and returns the error. */
export async function rejectsWith<E extends Error>(p: Promise<unknown>, cls: abstract new (...args: never[]) => E, what = 'the call'): Promise<E> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    expect(err, `${what}: ${(err as Error)?.name}: ${(err as Error)?.message}`).to.be.instanceOf(cls);
    return err as E;
  }
  throw new Error(`${what} resolved with ${JSON.stringify(value)} instead of rejecting with ${cls.name}`);
}

/** Seeded floats in [0, 1): the same on every run (the runtime's SeededRandom). */
export function seededRandom(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.nextFloat();
}
