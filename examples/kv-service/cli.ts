/**
 * actor-raft-kv: one node of the replicated key-value service, as a process. It runs a RaftNode
 * with FileStorage in --data and TcpNetwork on --raft, and the HTTP API (http-api.ts) on --http.
 * Once both listen it prints one JSON line on stdout, `{"event":"listening",...}`; logs are pino
 * JSON on stderr. SIGINT or SIGTERM stops it cleanly (exit 0; a second signal exits at once). Bad
 * usage exits 2, a node that fails or cannot start exits 1.
 *
 * @example
 * actor-raft-kv --id 1 --raft 127.0.0.1:7001 --http 127.0.0.1:8001 \
 *   --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data ./data/1
 */
import { readFileSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { NodePlacement, RaftNode } from '../../actors/node';
import { createLogger, type LogLevel } from '../../runtime/logging';
import { CLUSTER_ID_PATTERN } from '../../network/tcp-frames';
import { parseAddress, parsePeers, type TcpAddress, type TcpTlsOptions } from '../../network/tcp-network';
import { DEFAULT_MAX_BODY_BYTES, MAX_MAX_BODY_BYTES } from './http-api';
import type { KvMetrics } from './metrics';

/** Bad usage: the message goes to stderr and the process exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CliOptions {
  readonly id: number;
  readonly raft: TcpAddress;
  readonly http: TcpAddress;
  readonly peers: Readonly<Record<number, TcpAddress>>;
  readonly dataDir: string;
  readonly clusterId: string;
  readonly placement: NodePlacement;
  /** The PEM files' contents (read while parsing, so a bad path is bad usage), all three or none. */
  readonly tls: TcpTlsOptions | null;
  readonly maxBodyBytes: number;
  readonly logLevel: LogLevel;
}

const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** How long a clean shutdown may take before the process gives up and exits 1. */
const SHUTDOWN_DEADLINE_MS = 15_000;
/** Signals closer than this to the first are one Ctrl-C delivered twice, not a second one. */
const REPEAT_SIGNAL_MS = 500;

export const USAGE = `actor-raft-kv: one node of a replicated key-value store (Raft over TCP, an HTTP API)

Usage:
  actor-raft-kv --id N --raft HOST:PORT --http HOST:PORT --peers ID=HOST:PORT,... --data DIR [options]

Required:
  --id N                  this node's id, an integer >= 1
  --raft HOST:PORT        where this node listens for its peers (Raft RPCs over TCP)
  --http HOST:PORT        where this node serves the HTTP API (port 0: any free port)
  --peers ID=HOST:PORT,...
                          the address book: every node that may ever be a member, this one
                          included with the same address as --raft; connections from others are refused
  --data DIR              this node's data directory (FileStorage), created if missing; one node per directory

Options:
  --cluster-id S          carried by every peer handshake; a peer with another is refused
                          (1..64 of A-Z a-z 0-9 . _ -; default actor-raft-kv)
  --placement local|worker
                          worker (default): Raft, storage and the state machine on worker threads;
                          local: everything on the main thread
  --tls-key FILE          this node's private key (PEM)      \\  mutual TLS between the nodes:
  --tls-cert FILE         this node's certificate (PEM)       > give all three or none; the
  --tls-ca FILE           the cluster's CA certificate (PEM) /  certificate's CN must be node-<id>
  --max-body BYTES        largest HTTP request body accepted, else 413 (default ${DEFAULT_MAX_BODY_BYTES}, at most ${MAX_MAX_BODY_BYTES})
  --log-level LEVEL       fatal|error|warn|info|debug|trace|silent (default info); pino JSON on stderr
  -h, --help              print this help and exit

Once Raft and HTTP both listen it prints one line on stdout:
  {"event":"listening","id":1,"raft":"127.0.0.1:7001","http":"127.0.0.1:8001","pid":1234}
SIGINT or SIGTERM stops the node cleanly and exits 0. Bad usage exits 2; a failed node exits 1.

Example (node 1 of 3; then POST /admin/init {"members":[1,2,3]} to each of the three):
  actor-raft-kv --id 1 --raft 127.0.0.1:7001 --http 127.0.0.1:8001 \\
    --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data ./data/1

The HTTP API, metrics and a 3-node walk-through: examples/kv-service/README.md
`;

const OPTIONS = {
  id: { type: 'string' },
  raft: { type: 'string' },
  http: { type: 'string' },
  peers: { type: 'string' },
  data: { type: 'string' },
  'cluster-id': { type: 'string' },
  placement: { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-ca': { type: 'string' },
  'max-body': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses and checks the flags; 'help' when --help was given. Throws UsageError naming the flag. */
export function parseCliArgs(argv: readonly string[]): CliOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  const str = (name: string): string | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} needs a value`);
    return v.trim();
  };
  const required = (name: string): string => {
    const v = str(name);
    if (v === undefined) throw new UsageError(`--${name} is required`);
    return v;
  };
  const wrap = <T>(flag: string, f: () => T): T => {
    try { return f(); } catch (err) { throw new UsageError(`--${flag}: ${(err as Error).message}`); }
  };

  const idText = required('id');
  const id = Number(idText);
  if (!/^\d+$/.test(idText) || !Number.isSafeInteger(id) || id < 1 || id > 0xffff_ffff) throw new UsageError(`--id must be an integer in 1..4294967295, got ${JSON.stringify(idText)}`);

  const raftText = required('raft');
  const raft = wrap('raft', () => parseAddress(raftText, 'the Raft address'));
  if (raft.port === 0) throw new UsageError('--raft needs a real port, not 0: the peers dial it from their --peers');
  const httpText = required('http');
  const http = wrap('http', () => parseAddress(httpText, 'the HTTP address'));
  const peersText = required('peers');
  const peers = wrap('peers', () => parsePeers(peersText));
  const mine = peers[id];
  if (mine === undefined) throw new UsageError(`--peers must include this node (--id ${id}) with its --raft address, e.g. ${id}=${formatAddress(raft)}`);
  if (mine.host !== raft.host || mine.port !== raft.port) {
    throw new UsageError(`--peers gives node ${id} the address ${formatAddress(mine)}, but --raft is ${formatAddress(raft)}: they must be the same`);
  }
  for (const [pid, a] of Object.entries(peers)) {
    if (a.port === 0) throw new UsageError(`--peers: node ${pid} needs a real port, not 0`);
  }
  if (http.port !== 0 && http.port === raft.port && http.host === raft.host) throw new UsageError(`--http and --raft are the same address ${formatAddress(raft)}`);

  const dataDir = required('data');
  try {
    if (!statSync(dataDir).isDirectory()) throw new UsageError(`--data ${dataDir} exists and is not a directory`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`--data ${dataDir}: ${(err as Error).message}`);
  }

  const clusterId = str('cluster-id') ?? 'actor-raft-kv';
  if (!CLUSTER_ID_PATTERN.test(clusterId)) throw new UsageError(`--cluster-id must be 1..64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(clusterId)}`);

  const placement = str('placement') ?? 'worker';
  if (placement !== 'worker' && placement !== 'local') throw new UsageError(`--placement must be local or worker, got ${JSON.stringify(placement)}`);

  const tlsFiles = { key: str('tls-key'), cert: str('tls-cert'), ca: str('tls-ca') };
  const given = Object.entries(tlsFiles).filter(([, v]) => v !== undefined).map(([k]) => `--tls-${k}`);
  if (given.length !== 0 && given.length !== 3) {
    const missing = ['--tls-key', '--tls-cert', '--tls-ca'].filter((f) => !given.includes(f));
    throw new UsageError(`TLS needs all three of --tls-key, --tls-cert and --tls-ca; ${given.join(' and ')} given without ${missing.join(' and ')}`);
  }
  const tls = given.length === 3 ? readTls({ key: tlsFiles.key!, cert: tlsFiles.cert!, ca: tlsFiles.ca! }) : null;

  const maxBodyText = str('max-body') ?? String(DEFAULT_MAX_BODY_BYTES);
  const maxBodyBytes = Number(maxBodyText);
  if (!/^\d+$/.test(maxBodyText) || !Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1 || maxBodyBytes > MAX_MAX_BODY_BYTES) {
    throw new UsageError(`--max-body must be a number of bytes in 1..${MAX_MAX_BODY_BYTES}, got ${JSON.stringify(maxBodyText)}`);
  }

  const logLevel = (str('log-level') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);

  return { id, raft, http, peers, dataDir, clusterId, placement, tls, maxBodyBytes, logLevel: logLevel as LogLevel };
}

/** "host:port", IPv6 hosts in brackets (the form --raft and --peers take). */
export function formatAddress(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Reads the three PEM files; a missing or unreadable file is bad usage. */
function readTls(files: { key: string; cert: string; ca: string }): TcpTlsOptions {
  const read = (flag: string, path: string): Buffer => {
    try {
      const b = readFileSync(path);
      if (!b.toString('latin1').includes('-----BEGIN')) throw new Error('not a PEM file (no -----BEGIN line)');
      return b;
    } catch (err) {
      throw new UsageError(`--${flag} ${path}: ${(err as Error).message}`);
    }
  };
  return { key: read('tls-key', files.key), cert: read('tls-cert', files.cert), ca: read('tls-ca', files.ca) };
}

/** Runs the process: parses `argv`, starts the node and the server, and handles signals. Sets the exit code itself. */
export async function main(argv: readonly string[]): Promise<void> {
  let opts: CliOptions;
  try {
    const parsed = parseCliArgs(argv);
    if (parsed === 'help') { process.stdout.write(USAGE); return; }
    opts = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`actor-raft-kv: ${err.message}\nRun actor-raft-kv --help for the flags.\n`);
    process.exit(2);
  }
  const log = createLogger({ level: opts.logLevel, name: 'actor-raft-kv' }).child({ nodeId: opts.id });
  await run(opts, log);
}

async function run(opts: CliOptions, log: Logger): Promise<void> {
  const tls = opts.tls ?? undefined;
  // Loaded here, not at the top: --help and bad usage answer without loading the node (~0.5 s).
  const { RaftNode } = await import('../../actors/node');
  const { ActorSystem } = await import('../../runtime/system');
  const { tcpNetworkSpec, TcpNetworkStats } = await import('../../network/tcp-network');
  const { FileStorageStats, fileStorageSpec } = await import('../../storage/file-storage');
  const { KV_MODULE } = await import('../kv/kv-state-machine');
  const { createKvHttpServer } = await import('./http-api');
  const { KvMetrics } = await import('./metrics');
  const system = ActorSystem.create({ logger: log });
  const tcpStats = TcpNetworkStats.create();
  const storageStats = FileStorageStats.create();
  let node: RaftNode | null = null;
  let server: Server | null = null;
  let metrics: KvMetrics | null = null;
  let stopping = false;

  /** Closes what is open, in order; each step is bounded by the one deadline. */
  const shutdown = async (code: number, why: string): Promise<never> => {
    if (stopping) return new Promise<never>(() => {}); // the first shutdown exits
    stopping = true;
    log.info({ why }, 'shutting down');
    const deadline = setTimeout(() => {
      log.error({ afterMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    const closing = server === null ? Promise.resolve() : new Promise<void>((resolve) => server!.close(() => resolve()));
    server?.closeIdleConnections();
    metrics?.close();
    try {
      // Requests still waiting on the node are answered 503 when it stops; then their sockets close.
      await node?.stop();
    } catch (err) {
      log.warn({ err }, 'the node did not stop cleanly');
    }
    server?.closeAllConnections();
    await closing;
    try {
      await system.shutdown();
    } catch (err) {
      log.warn({ err }, 'the actor system did not shut down cleanly');
    }
    log.info({ code }, 'stopped');
    process.exit(code);
  };

  let firstSignalAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    // One Ctrl-C can arrive twice at once (from the terminal, and forwarded by npm or a parent):
    // only a second signal a moment later means "exit now".
    if (firstSignalAt > 0 && Date.now() - firstSignalAt < REPEAT_SIGNAL_MS) return;
    if (firstSignalAt > 0) {
      log.warn({ signal: sig }, 'second signal: exiting at once');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    firstSignalAt = Date.now();
    void shutdown(0, `received ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    node = await RaftNode.start({
      system,
      id: opts.id,
      placement: opts.placement,
      forwardToLeader: true,
      stateMachine: { module: KV_MODULE, export: 'createKv', args: {} },
      storage: fileStorageSpec({ dir: opts.dataDir, stats: storageStats.buffer }),
      network: tcpNetworkSpec({
        self: opts.id,
        clusterId: opts.clusterId,
        listen: opts.raft,
        peers: opts.peers,
        ...(tls === undefined ? {} : { tls }),
        stats: tcpStats.buffer,
      }),
      onFailed: (cause) => {
        log.fatal({ err: cause }, 'the node failed');
        void shutdown(1, 'the node failed');
      },
    });
  } catch (err) {
    log.fatal({ err }, 'the node could not start');
    await shutdown(1, 'the node could not start');
  }
  if (stopping) return; // a signal came while the node started

  metrics = new KvMetrics({ node: node!, tcpStats, storageStats });
  server = createKvHttpServer(node!, { maxBodyBytes: opts.maxBodyBytes, metrics, logger: log.child({ component: 'http' }), knownIds: Object.keys(opts.peers).map(Number) });
  const srv = server;
  try {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(opts.http.port, opts.http.host, () => { srv.off('error', reject); resolve(); });
    });
  } catch (err) {
    log.fatal({ err }, `cannot serve HTTP on ${formatAddress(opts.http)}`);
    server = null;
    await shutdown(1, 'the HTTP server could not listen');
  }
  if (stopping) return;
  srv.on('error', (err) => log.error({ err }, 'HTTP server error'));
  const bound = srv.address() as AddressInfo;
  const http = formatAddress({ host: opts.http.host, port: bound.port });
  log.info({ raft: formatAddress(opts.raft), http, placement: opts.placement, tls: tls !== undefined, dataDir: opts.dataDir }, 'listening');
  process.stdout.write(`${JSON.stringify({ event: 'listening', id: opts.id, raft: formatAddress(opts.raft), http, pid: process.pid })}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`actor-raft-kv: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
