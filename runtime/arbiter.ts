/**
 * The main thread's handle on one arbiter: starts the worker thread, drives its control plane
 * through comlink, and notices when it dies.
 */
import * as path from 'node:path';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { ArbiterControl, ArbiterEvent, ArbiterWorkerData } from './arbiter-host';
import { nodeEndpoint } from './comlink-port';
import { PlacementError, reviveError } from './errors';
import type { LogLevel } from './logging';

/** The worker's host module: .ts under ts-node (tests, dev), .js once compiled. */
const HOST_FILE = path.join(__dirname, `arbiter-host${path.extname(__filename)}`);

/** ts-node, when installed: a worker must register it itself before it can require .ts modules. */
function tsNodePath(): string | null {
  try {
    return require.resolve('ts-node');
  } catch {
    return null;
  }
}

/**
 * Inline bootstrap, so no separate .js file has to be shipped beside compiled output. ts-node is
 * registered in transpile-only mode (type checking belongs to tsc, not to every worker start).
 */
function bootstrap(): string {
  const tsNode = HOST_FILE.endsWith('.ts') ? tsNodePath() : null;
  const register = tsNode === null ? '' : `require(${JSON.stringify(tsNode)}).register({ transpileOnly: true });`;
  return `${register}require(${JSON.stringify(HOST_FILE)});`;
}

export interface ArbiterOptions {
  readonly name: string;
  readonly seed: number;
  readonly logLevel: LogLevel;
  readonly preload: readonly string[];
  /** An actor on this arbiter crashed (its error revived on the main thread). */
  readonly onActorCrash: (id: string, error: Error) => void;
  /** The thread exited without being asked to. */
  readonly onDeath: (name: string, error: Error) => void;
}

/**
 * A running arbiter. Internal: applications call ActorSystem.startArbiter.
 * @example const arbiter = await Arbiter.start({ name: 'w1', seed, logLevel: 'silent', preload: [], onActorCrash, onDeath });
 */
export class Arbiter {
  readonly control: Comlink.Remote<ArbiterControl>;
  /** The main thread's end of the data link to this arbiter. */
  readonly dataPort: MessagePort;
  private readonly controlPort: MessagePort;
  private readonly worker: Worker;
  private stopping = false;
  private alive = true;
  private lastError: Error | undefined;
  /** Rejects when the thread exits, so no control call waits forever on a dead thread. */
  private readonly exited: Promise<never>;

  private constructor(private readonly options: ArbiterOptions) {
    const data = new MessageChannel();
    const ctl = new MessageChannel();
    this.dataPort = data.port1;
    this.controlPort = ctl.port1;
    const workerData: ArbiterWorkerData = {
      name: options.name,
      seed: options.seed,
      logLevel: options.logLevel,
      preload: options.preload,
      dataPort: data.port2,
      controlPort: ctl.port2,
    };
    this.worker = new Worker(bootstrap(), { eval: true, workerData, transferList: [data.port2, ctl.port2], name: `arbiter:${options.name}` });
    this.control = Comlink.wrap<ArbiterControl>(nodeEndpoint(this.controlPort));
    this.exited = new Promise<never>((_, reject) => {
      this.worker.on('error', (e) => (this.lastError = e));
      this.worker.on('exit', (code) => {
        this.alive = false;
        this.controlPort.close();
        const error = this.lastError ?? new Error(`arbiter ${options.name} exited with code ${code}`);
        reject(new PlacementError(`arbiter ${options.name} is gone: ${error.message}`));
        if (!this.stopping) options.onDeath(options.name, error);
      });
    });
    this.exited.catch(() => undefined); // observed through call(); never an unhandled rejection
    this.worker.on('message', (event: ArbiterEvent) => {
      if (event.type === 'crash') options.onActorCrash(event.id, reviveError(event.error));
    });
  }

  /** Starts the thread and resolves once its control plane answers. */
  static async start(options: ArbiterOptions): Promise<Arbiter> {
    const arbiter = new Arbiter(options);
    await arbiter.call((c) => c.ping());
    return arbiter;
  }

  get name(): string {
    return this.options.name;
  }

  get isAlive(): boolean {
    return this.alive;
  }

  /** A control call that rejects with PlacementError if the thread dies before answering. */
  call<T>(fn: (control: Comlink.Remote<ArbiterControl>) => Promise<T>): Promise<T> {
    if (!this.alive) return Promise.reject(new PlacementError(`arbiter ${this.name} is gone`));
    return Promise.race([fn(this.control), this.exited]);
  }

  /** Hands the arbiter its end of a direct link to peer `peer`. */
  connectPeer(peer: string, port: MessagePort): Promise<void> {
    return this.call((c) => c.connectPeer(peer, Comlink.transfer(port, [port as never])));
  }

  /** Stops its actors, then ends the thread. Resolves once the thread is gone. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.stopping = true;
    try {
      await this.call((c) => c.shutdown());
    } catch {
      // Already dying: terminate below still reaps it.
    }
    this.dataPort.close();
    await this.worker.terminate();
  }
}
