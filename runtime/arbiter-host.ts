/**
 * The code an arbiter (a worker thread) runs: one ThreadRuntime, a data link to the main thread
 * and to each peer arbiter, and a comlink-exposed control object the main thread drives.
 * Loaded by the bootstrap in arbiter.ts; never imported on the main thread except for types.
 */
import { type MessagePort, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { ActorSpec } from './actor';
import { RealClock } from './clock';
import { ImmediateDispatcher } from './dispatcher';
import { type SerializedError, serializeError } from './errors';
import { createLogger, type LogLevel } from './logging';
import { type ThreadStats, ThreadRuntime } from './thread';
import { nodeEndpoint } from './comlink-port';

/** What the main thread hands a new arbiter. */
export interface ArbiterWorkerData {
  readonly name: string;
  readonly seed: number;
  readonly logLevel: LogLevel;
  /** Absolute module paths required before anything else (e.g. to register error classes). */
  readonly preload: readonly string[];
  readonly dataPort: MessagePort;
  readonly controlPort: MessagePort;
}

/** A control call's outcome; errors travel as data so their class survives (reviveError). */
export type ControlResult = { readonly ok: true } | { readonly ok: false; readonly error: SerializedError };

/** Worker -> main notices, on the worker's parentPort (the control port only answers calls). */
export type ArbiterEvent = { readonly type: 'crash'; readonly id: string; readonly error: SerializedError };

/** The control plane of one arbiter, called by the main thread through comlink. */
export interface ArbiterControl {
  ping(): 'pong';
  spawn(id: string, spec: ActorSpec): Promise<ControlResult>;
  stop(id: string): Promise<void>;
  addRoutes(entries: [string, string][]): void;
  removeRoutes(ids: string[]): void;
  /** A direct data link to arbiter `name` (one end of a MessageChannel made by the main thread). */
  connectPeer(name: string, port: MessagePort): void;
  peerGone(name: string): void;
  stats(): ThreadStats;
  /** Stops every actor, fails pending asks, closes every link. The main thread then terminates the worker. */
  shutdown(): Promise<void>;
}

function main(data: ArbiterWorkerData): void {
  for (const file of data.preload) require(file);
  const logger = createLogger({ level: data.logLevel, name: `arbiter:${data.name}` });
  const runtime = new ThreadRuntime({
    name: data.name,
    clock: new RealClock(),
    dispatcher: new ImmediateDispatcher(),
    seed: data.seed,
    logger,
    onCrash: (id, error) => {
      const event: ArbiterEvent = { type: 'crash', id, error: serializeError(error) };
      parentPort!.postMessage(event);
    },
  });
  runtime.transport.attach('main', data.dataPort);

  const control: ArbiterControl = {
    ping: () => 'pong',
    async spawn(id, spec) {
      try {
        await runtime.spawn(id, spec);
        return { ok: true };
      } catch (e) {
        return { ok: false, error: serializeError(e) };
      }
    },
    stop: (id) => runtime.stop(id),
    addRoutes: (entries) => runtime.addRoutes(entries),
    removeRoutes: (ids) => runtime.removeRoutes(ids),
    connectPeer: (name, port) => runtime.transport.attach(name, port),
    peerGone: (name) => runtime.peerGone(name),
    stats: () => runtime.stats(),
    shutdown: () => runtime.shutdown(),
  };
  Comlink.expose(control, nodeEndpoint(data.controlPort));
}

if (!isMainThread && parentPort !== null) main(workerData as ArbiterWorkerData);
