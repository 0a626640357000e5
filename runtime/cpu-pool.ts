/**
 * The process's pool of threads for CPU-heavy work (DESIGN.md: piscina for parallel CPU offload):
 * packing and unpacking large snapshots (gzip, crc32) off the actors' threads, so the Apply actor
 * and everything sharing its thread stay responsive while a 100 MB snapshot is compressed.
 *
 * One CpuPoolActor per ActorSystem, on the main thread, shared by every node of the process; any
 * actor reaches it by id (`CPU_POOL_ID`). Its piscina pool starts on first use (small work never
 * starts it: the simulator stays on one thread) and stops with the actor. Work below
 * `CPU_OFFLOAD_BYTES` runs inline on the caller's thread: a thread hop costs more than it saves.
 *
 * @example
 * await ensureCpuPool(system);
 * const { bytes, checksum } = await packSnapshot(ctx, [data], 1); // gzip level 1, on a pool thread when large
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Piscina } from 'piscina';
import type { Actor, ActorContext } from './actor';
import { LOCAL } from './actor';
import type { ActorSystem } from './system';
import { ActorExistsError } from './errors';

export const CPU_POOL_ID = 'system/cpu';
/** Below this many bytes, packing runs inline. */
export const CPU_OFFLOAD_BYTES = 1024 * 1024;

export interface PackResult { readonly bytes: Uint8Array; readonly checksum: number }
export interface UnpackResult { readonly data: Uint8Array; readonly checksum: number }

export type CpuTask =
  | { readonly op: 'pack'; readonly chunks: readonly Uint8Array[]; readonly level: number }
  | { readonly op: 'unpack'; readonly chunks: readonly Uint8Array[] }
  /** Answer: true (the pool actor is there). */
  | { readonly op: 'ping' };

interface Tasks {
  pack(t: { chunks: readonly Uint8Array[]; level: number }): PackResult;
  unpack(t: { chunks: readonly Uint8Array[] }): UnpackResult;
}
const TASKS_FILE = path.join(__dirname, 'cpu-tasks.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the pool's plain-JS task module, also run inline
const tasks = require(TASKS_FILE) as Tasks;

/** The pool actor: runs CpuTasks on piscina threads. */
export class CpuPoolActor implements Actor<CpuTask> {
  private pool: Piscina | null = null;
  /** Tasks run on the pool so far. */
  tasksRun = 0;

  receive(task: CpuTask): Promise<unknown> {
    if (task !== null && typeof task === 'object' && task.op === 'ping') return Promise.resolve(true);
    if (task === null || typeof task !== 'object' || (task.op !== 'pack' && task.op !== 'unpack')) {
      return Promise.reject(new TypeError(`unknown cpu task ${JSON.stringify((task as { op?: unknown } | null)?.op)}`));
    }
    this.pool ??= new Piscina({ filename: TASKS_FILE, minThreads: 0, maxThreads: Math.max(1, os.availableParallelism() - 1), idleTimeout: 10_000 });
    // Copied to the pool thread, not transferred: on the calling thread (local placement) the
    // chunks are the caller's own buffers, which a transfer would empty under it.
    this.tasksRun++;
    return this.pool.run(task);
  }

  async stopped(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    if (p !== null) await p.destroy();
  }
}

/** Spawns the process's pool actor on `system` unless it runs already. */
export async function ensureCpuPool(system: ActorSystem): Promise<void> {
  if (system.has(CPU_POOL_ID)) return;
  // Nodes of one system start in parallel: the first call spawns, the others wait for it.
  let spawning = starting.get(system);
  if (spawning === undefined) {
    spawning = system.spawn(CPU_POOL_ID, { factory: () => new CpuPoolActor() }, LOCAL).then(
      () => undefined,
      (err: unknown) => { if (!(err instanceof ActorExistsError)) throw err; },
    ).finally(() => starting.delete(system));
    starting.set(system, spawning);
  }
  await spawning;
}
const starting = new WeakMap<ActorSystem, Promise<void>>();

const size = (chunks: readonly Uint8Array[]): number => chunks.reduce((n, c) => n + c.byteLength, 0);

/**
 * Wraps a snapshot's bytes in its envelope (a format byte, then the bytes, gzipped at `level` when
 * it is 1-9, as they are at 0) and returns it with its crc32. Large ones go to the pool when this
 * system has one.
 */
export async function packSnapshot(ctx: ActorContext, chunks: readonly Uint8Array[], level: number): Promise<PackResult> {
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`compression level must be 0-9, got ${level}`);
  // Without compression packing is one copy and a crc32: cheaper here than two copies to a pool thread and back.
  if (level > 0 && size(chunks) >= CPU_OFFLOAD_BYTES && await hasPool(ctx)) {
    return ctx.ref<CpuTask>(CPU_POOL_ID).ask<PackResult>({ op: 'pack', chunks, level }, Infinity);
  }
  return tasks.pack({ chunks, level });
}

/** Opens a snapshot envelope: the bytes inside, and the crc32 of the envelope as stored. */
export async function unpackSnapshot(ctx: ActorContext, chunks: readonly Uint8Array[]): Promise<UnpackResult> {
  const compressed = chunks.length > 0 && chunks[0].byteLength > 0 && chunks[0][0] !== 0;
  if (compressed && size(chunks) >= CPU_OFFLOAD_BYTES && await hasPool(ctx)) {
    return ctx.ref<CpuTask>(CPU_POOL_ID).ask<UnpackResult>({ op: 'unpack', chunks }, Infinity);
  }
  return tasks.unpack({ chunks });
}

/** Whether the pool actor is reachable from this thread (a node started by RaftNode.start has one). */
async function hasPool(ctx: ActorContext): Promise<boolean> {
  const probe = probes.get(ctx);
  if (probe !== undefined) return probe;
  const p = ctx.ref<CpuTask>(CPU_POOL_ID).ask<boolean>({ op: 'ping' }, 5_000).then((yes) => yes === true, () => false);
  probes.set(ctx, p);
  return p;
}
const probes = new WeakMap<ActorContext, Promise<boolean>>();
