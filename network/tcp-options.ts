/**
 * TcpNetwork's options: the address types, "host:port" parsing for command lines, and the check
 * of every option at the boundary (`validateTcpNetworkOptions`, which `tcpNetworkSpec` calls in
 * the caller and the actor calls again on its own thread).
 */
import { CLUSTER_ID_PATTERN } from './tcp-frames';
import { TcpNetworkStats } from './tcp-stats';

export interface TcpAddress { readonly host: string; readonly port: number }

/** PEM material for mutual TLS. Strings or bytes (files read by the caller). */
export interface TcpTlsOptions {
  readonly key: string | Uint8Array;
  readonly cert: string | Uint8Array;
  /** The cluster's CA: peers' certificates must chain to it. */
  readonly ca: string | Uint8Array;
  /** Require the peer certificate's common name to be `node-<id>` for the id it claims (default true). */
  readonly checkNodeIdentity?: boolean;
}

export interface TcpNetworkOptions {
  /** This node's id. */
  readonly self: number;
  /** Carried by every handshake; a connection with another id is refused. 1..64 of [A-Za-z0-9._-]. */
  readonly clusterId: string;
  /** Where this node accepts connections from its peers. */
  readonly listen: TcpAddress;
  /** The address book: every node that may be a member (this one may be included). Others are refused. */
  readonly peers: Readonly<Record<number, TcpAddress>>;
  readonly tls?: TcpTlsOptions;
  /** Largest frame accepted or sent (default 80 MiB: the codec's 64 MiB payloads plus headers). */
  readonly maxFrameBytes?: number;
  /** A dial that has not connected by then fails (default 3000 ms). */
  readonly connectTimeoutMs?: number;
  /** A connection that has not completed the handshake by then is closed (default 5000 ms). */
  readonly handshakeTimeoutMs?: number;
  /** A frame that stops arriving half way for this long closes its connection (default 30000 ms). */
  readonly stallTimeoutMs?: number;
  /** Backoff between dials of a peer that is down: first delay and cap (defaults 50 and 2000 ms), with jitter. */
  readonly backoffMs?: { readonly initial: number; readonly max: number };
  /** Connections still in their handshake at once; more are closed on arrival (default 64). */
  readonly maxPendingHandshakes?: number;
  /** `TcpNetworkStats.create().buffer`, to read the counters from any thread. */
  readonly stats?: SharedArrayBuffer;
}


export interface Resolved {
  readonly self: number;
  readonly clusterId: string;
  readonly listen: TcpAddress;
  readonly peers: Map<number, TcpAddress>;
  readonly tls: TcpTlsOptions | null;
  readonly maxFrameBytes: number;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly backoffMs: { readonly initial: number; readonly max: number };
  readonly maxPendingHandshakes: number;
  readonly stats: SharedArrayBuffer;
}

const DEFAULT_MAX_FRAME_BYTES = 80 * 1024 * 1024;
const MIN_FRAME_BYTES = 64 * 1024;
const MAX_FRAME_BYTES = 1024 * 1024 * 1024;
const HOST_PATTERN = /^[A-Za-z0-9.\-:[\]]{1,253}$/;

export function isId(v: unknown): v is number { return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= 0xffff_ffff; }

/**
 * "host:port" (IPv6 as "[::1]:7001") to an address; throws TypeError or RangeError saying what is wrong.
 * @example parseAddress('127.0.0.1:7001') // { host: '127.0.0.1', port: 7001 }
 */
export function parseAddress(text: string, what = 'address'): TcpAddress {
  if (typeof text !== 'string') throw new TypeError(`${what} must be a string "host:port", got ${typeof text}`);
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new RangeError(`${what} must be "host:port" (IPv6 as "[::1]:port"), got ${JSON.stringify(text)}`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return validAddress({ host, port: Number(m[2]) }, what);
}

/**
 * "1=host:port,2=host:port" to an address book; ids are integers >= 1, each given once.
 * @example parsePeers('1=127.0.0.1:7001,2=127.0.0.1:7002')
 */
export function parsePeers(text: string): Record<number, TcpAddress> {
  if (typeof text !== 'string' || text.trim() === '') throw new TypeError('peers must be a non-empty list "1=host:port,2=host:port"');
  const out: Record<number, TcpAddress> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new RangeError(`peer ${JSON.stringify(part)} must be "id=host:port"`);
    const idText = part.slice(0, eq).trim();
    const id = Number(idText);
    if (!/^\d+$/.test(idText) || !isId(id)) throw new RangeError(`peer id ${JSON.stringify(idText)} must be an integer in 1..2^32-1`);
    if (out[id] !== undefined) throw new RangeError(`peer ${id} is given twice`);
    const addr = parseAddress(part.slice(eq + 1), `address of peer ${id}`);
    if (addr.port === 0) throw new RangeError(`address of peer ${id} needs a real port, not 0`);
    out[id] = addr;
  }
  return out;
}

function validAddress(a: unknown, what: string): TcpAddress {
  if (a === null || typeof a !== 'object') throw new TypeError(`${what} must be { host, port }`);
  const { host, port } = a as { host?: unknown; port?: unknown };
  if (typeof host !== 'string' || !HOST_PATTERN.test(host)) throw new RangeError(`${what} host must be a host name or IP address, got ${JSON.stringify(host)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`${what} port must be an integer in 0..65535, got ${String(port)}`);
  return { host, port };
}

export function validPeers(peers: unknown): Map<number, TcpAddress> {
  if (peers === null || typeof peers !== 'object' || Array.isArray(peers)) throw new TypeError('TcpNetwork peers must be an object { [id]: { host, port } }');
  const out = new Map<number, TcpAddress>();
  for (const [k, v] of Object.entries(peers)) {
    const id = Number(k);
    if (!/^\d+$/.test(k) || !isId(id)) throw new RangeError(`TcpNetwork peer id ${JSON.stringify(k)} must be an integer in 1..2^32-1`);
    const addr = validAddress(v, `TcpNetwork peer ${id}`);
    if (addr.port === 0) throw new RangeError(`TcpNetwork peer ${id} needs a real port, not 0`);
    out.set(id, addr);
  }
  return out;
}

function pem(v: unknown, what: string): string | Uint8Array {
  if (typeof v === 'string' ? v.length === 0 : !(v instanceof Uint8Array) || v.length === 0) throw new TypeError(`TcpNetwork tls.${what} must be PEM text or bytes`);
  return v as string | Uint8Array;
}

const positive = (v: unknown, dflt: number, what: string, max = 3_600_000): number => {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`TcpNetwork ${what} must be an integer in 1..${max}, got ${String(v)}`);
  return v;
};

const KNOWN = new Set(['self', 'clusterId', 'listen', 'peers', 'tls', 'maxFrameBytes', 'connectTimeoutMs', 'handshakeTimeoutMs', 'stallTimeoutMs', 'backoffMs', 'maxPendingHandshakes', 'stats']);

/** Checks every option at the boundary; throws TypeError or RangeError naming the field. */
export function validateTcpNetworkOptions(o: TcpNetworkOptions): Resolved {
  if (o === null || typeof o !== 'object') throw new TypeError('TcpNetwork options must be an object');
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new TypeError(`unknown TcpNetwork option ${JSON.stringify(k)}`);
  if (!isId(o.self)) throw new RangeError(`TcpNetwork self must be a node id (integer in 1..2^32-1), got ${String(o.self)}`);
  if (typeof o.clusterId !== 'string' || !CLUSTER_ID_PATTERN.test(o.clusterId)) throw new RangeError(`TcpNetwork clusterId must match ${CLUSTER_ID_PATTERN}, got ${JSON.stringify(o.clusterId)}`);
  const listen = validAddress(o.listen, 'TcpNetwork listen');
  const peers = validPeers(o.peers);
  const mine = peers.get(o.self);
  if (mine && listen.port !== 0 && mine.port !== listen.port) throw new RangeError(`TcpNetwork peers[${o.self}] (this node) has port ${mine.port}, but it listens on ${listen.port}`);
  let tlsOpts: TcpTlsOptions | null = null;
  if (o.tls !== undefined) {
    if (o.tls === null || typeof o.tls !== 'object') throw new TypeError('TcpNetwork tls must be { key, cert, ca }');
    if (o.tls.checkNodeIdentity !== undefined && typeof o.tls.checkNodeIdentity !== 'boolean') throw new TypeError('TcpNetwork tls.checkNodeIdentity must be a boolean');
    tlsOpts = { key: pem(o.tls.key, 'key'), cert: pem(o.tls.cert, 'cert'), ca: pem(o.tls.ca, 'ca'), checkNodeIdentity: o.tls.checkNodeIdentity ?? true };
  }
  const maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < MIN_FRAME_BYTES || maxFrameBytes > MAX_FRAME_BYTES) {
    throw new RangeError(`TcpNetwork maxFrameBytes must be an integer in ${MIN_FRAME_BYTES}..${MAX_FRAME_BYTES}, got ${String(o.maxFrameBytes)}`);
  }
  const b = o.backoffMs ?? { initial: 50, max: 2000 };
  if (b === null || typeof b !== 'object') throw new TypeError('TcpNetwork backoffMs must be { initial, max }');
  const backoffMs = { initial: positive(b.initial, 50, 'backoffMs.initial', 60_000), max: positive(b.max, 2000, 'backoffMs.max', 600_000) };
  if (backoffMs.max < backoffMs.initial) throw new RangeError('TcpNetwork backoffMs.max must be >= backoffMs.initial');
  if (o.stats !== undefined) TcpNetworkStats.over(o.stats); // throws TypeError when it is not one
  return {
    self: o.self, clusterId: o.clusterId, listen, peers, tls: tlsOpts, maxFrameBytes,
    connectTimeoutMs: positive(o.connectTimeoutMs, 3000, 'connectTimeoutMs'),
    handshakeTimeoutMs: positive(o.handshakeTimeoutMs, 5000, 'handshakeTimeoutMs'),
    stallTimeoutMs: positive(o.stallTimeoutMs, 30_000, 'stallTimeoutMs'),
    backoffMs,
    maxPendingHandshakes: positive(o.maxPendingHandshakes, 64, 'maxPendingHandshakes', 100_000),
    stats: o.stats ?? TcpNetworkStats.create().buffer,
  };
}
