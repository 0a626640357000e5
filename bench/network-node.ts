/**
 * One node of the network suite's TCP cluster (bench/network.ts): a child process, forked with
 * `-r ts-node/register/transpile-only` and an IPC channel, that runs one RaftNode over TcpNetwork
 * on loopback and, when the parent asks, concurrent clients writing to it. The parent controls it
 * through IPC only (start, init, metrics and counters, a load, stop); the Raft traffic goes over
 * TCP between the children. It exits when the parent goes away, so a crashed bench leaves no node.
 */
import { ActorSystem } from '../runtime/system';
import { createLogger } from '../runtime/logging';
import { serializeError } from '../runtime/errors';
import { RaftNode, type NodePlacement } from '../actors/node';
import { ForwardToLeaderError } from '../actors/raft/core/errors';
import type { RaftMetrics } from '../actors/metrics/metrics';
import { tcpNetworkSpec, TcpNetworkStats, type TcpAddress, type TcpNetworkStatsSnapshot } from '../network/tcp-network';
import { fileStorageSpec, FileStorageStats } from '../storage/file-storage';
import { encodeKv, KV_MODULE } from '../examples/kv/kv-state-machine';
import { COUNT_MODULE } from './count-state-machine';
import { percentile, type StorageKind } from './common';

export type NetStateMachine = 'count' | 'kv';

export interface NodeStartArgs {
  readonly id: number;
  readonly clusterId: string;
  readonly peers: Readonly<Record<number, TcpAddress>>;
  readonly placement: NodePlacement;
  readonly storage: StorageKind;
  /** The node's FileStorage directory (unused on memory). */
  readonly dir: string;
  readonly stateMachine: NetStateMachine;
}

export interface LoadArgs {
  readonly clients: number;
  readonly warmupMs: number;
  readonly seconds: number;
  readonly payloadBytes: number;
  /** KV state machine: puts cycle over this many keys. */
  readonly keys: number;
}

export interface LoadResult {
  /** Writes started after the warm-up and answered within the measured window. */
  readonly ops: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Terms the node saw go by during the load (a healthy run has none). */
  readonly termChanges: number;
}

export interface NodeCounters {
  readonly tcp: TcpNetworkStatsSnapshot;
  readonly fsyncs: number | null;
  readonly metrics: RaftMetrics;
}

export type ParentToNode =
  | { readonly t: 'start'; readonly args: NodeStartArgs }
  | { readonly t: 'init'; readonly reqId: number; readonly members: readonly number[] }
  | { readonly t: 'counters'; readonly reqId: number }
  | { readonly t: 'load'; readonly reqId: number; readonly args: LoadArgs }
  | { readonly t: 'stop'; readonly reqId: number };

export type NodeToParent =
  | { readonly t: 'ready'; readonly pid: number }
  | { readonly t: 'startFailed'; readonly err: unknown }
  | { readonly t: 'res'; readonly reqId: number; readonly value?: unknown; readonly err?: unknown }
  /** Sent during a load, at the end of the warm-up and of the measured window: the parent reads every node's counters then. */
  | { readonly t: 'mark'; readonly reqId: number; readonly at: 'start' | 'end' }
  | { readonly t: 'failed'; readonly err: unknown };

if (typeof process.send !== 'function') {
  process.stderr.write('bench/network-node.ts must be started with child_process.fork (it needs an IPC channel)\n');
  process.exit(2);
}

function post(m: NodeToParent, then?: () => void): void {
  if (!process.connected) { then?.(); return; }
  process.send!(m, undefined, {}, () => then?.());
}

let system: ActorSystem | null = null;
let node: RaftNode | null = null;
let stateMachine: NetStateMachine = 'count';
const tcpStats = TcpNetworkStats.create();
let fsStats: FileStorageStats | null = null;

async function start(a: NodeStartArgs): Promise<void> {
  stateMachine = a.stateMachine;
  // Raft's info lines would drown the parent's progress; RAFT_LOG_LEVEL brings them back.
  const logger = createLogger({ name: `bench-n${a.id}`, level: process.env.RAFT_LOG_LEVEL ? undefined : 'warn' });
  system = ActorSystem.create({ logger });
  if (a.storage === 'file') fsStats = FileStorageStats.create();
  node = await RaftNode.start({
    system, id: a.id, placement: a.placement,
    network: tcpNetworkSpec({ self: a.id, clusterId: a.clusterId, listen: a.peers[a.id], peers: a.peers, stats: tcpStats.buffer }),
    storage: fsStats === null ? undefined : fileStorageSpec({ dir: a.dir, stats: fsStats.buffer }),
    stateMachine: a.stateMachine === 'kv' ? { module: KV_MODULE, export: 'createKv', args: {} } : { module: COUNT_MODULE, export: 'createCount', args: {} },
    onFailed: (cause) => post({ t: 'failed', err: serializeError(cause) }),
  });
}


/** A put of one of `keys` keys whose encoded command is `payloadBytes` long (or as short as it can be). */
function kvPut(i: number, keys: number, payloadBytes: number): Uint8Array {
  const key = `key-${String(i % keys).padStart(6, '0')}`;
  const bare = encodeKv({ op: 'put', key, value: '' }).length;
  return encodeKv({ op: 'put', key, value: 'v'.repeat(Math.max(0, payloadBytes - bare)) });
}

/** `clients` concurrent writers on this node, each sending its next write once the last is committed. */
async function load(reqId: number, a: LoadArgs): Promise<LoadResult> {
  const n = node!;
  const termBefore = (await n.currentMetrics()).currentTerm;
  const fixed = new Uint8Array(a.payloadBytes).fill(7);
  const warmupEnd = performance.now() + a.warmupMs;
  const end = warmupEnd + a.seconds * 1000;
  // Each mark is posted once: by its timer, or before the answer when the last client finished first (IPC keeps the order).
  const pending = new Set<'start' | 'end'>(['start', 'end']);
  const mark = (at: 'start' | 'end') => { if (pending.delete(at)) post({ t: 'mark', reqId, at }); };
  const marks = [setTimeout(() => mark('start'), a.warmupMs), setTimeout(() => mark('end'), a.warmupMs + a.seconds * 1000)];
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const client = async () => {
    for (;;) {
      const t = performance.now();
      if (t >= end) return;
      const payload = stateMachine === 'kv' ? kvPut(next++, a.keys, a.payloadBytes) : fixed;
      try {
        await n.clientWrite(payload, { responseMode: 'committed', timeoutMs: 10_000 });
        const done = performance.now();
        if (t >= warmupEnd && done <= end) latencies.push(done - t);
      } catch (err) {
        errors++;
        // Not the leader any more: the parent sees the term change; back off instead of spinning on refusals.
        if (err instanceof ForwardToLeaderError) await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: a.clients }, client));
  } finally {
    for (const m of marks) clearTimeout(m);
    mark('start');
    mark('end');
  }
  const sorted = Float64Array.from(latencies).sort();
  return {
    ops: latencies.length, opsPerSec: latencies.length / a.seconds, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), errors,
    termChanges: (await n.currentMetrics()).currentTerm - termBefore,
  };
}

async function counters(): Promise<NodeCounters> {
  return { tcp: tcpStats.read(), fsyncs: fsStats === null ? null : fsStats.read().fsyncs, metrics: await node!.currentMetrics() };
}

let stopping: Promise<void> | null = null;
function stop(): Promise<void> {
  stopping ??= (async () => {
    try { if (node) await node.stop(); } finally { if (system) await system.shutdown(); }
  })();
  return stopping;
}

function answer(reqId: number, p: Promise<unknown>): void {
  p.then(
    (value) => post({ t: 'res', reqId, value }),
    (err: unknown) => post({ t: 'res', reqId, err: serializeError(err) }),
  );
}

process.on('message', (raw: unknown) => {
  const m = raw as ParentToNode;
  switch (m.t) {
    case 'start':
      start(m.args).then(
        () => post({ t: 'ready', pid: process.pid }),
        (err: unknown) => post({ t: 'startFailed', err: serializeError(err) }, () => process.exit(1)),
      );
      return;
    case 'init': answer(m.reqId, node!.initWithConfig(m.members)); return;
    case 'counters': answer(m.reqId, counters()); return;
    case 'load': answer(m.reqId, load(m.reqId, m.args)); return;
    case 'stop': stop().then(() => post({ t: 'res', reqId: m.reqId }, () => process.exit(0)), () => process.exit(1)); return;
  }
});

// The parent gone (crashed, killed, or done without a stop): no orphan node keeps its port.
process.on('disconnect', () => { void stop().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 3000).unref(); });
// Ctrl-C reaches the whole process group: the parent cleans up; this node only stops.
process.on('SIGINT', () => { void stop().finally(() => process.exit(130)); setTimeout(() => process.exit(130), 3000).unref(); });
process.on('SIGTERM', () => { void stop().finally(() => process.exit(143)); setTimeout(() => process.exit(143), 3000).unref(); });
