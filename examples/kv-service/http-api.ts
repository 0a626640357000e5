/**
 * The KV service's HTTP API (node:http, no framework) over one RaftNode that runs the KV state
 * machine (examples/kv/kv-state-machine.ts). Every input is checked here, at the boundary: the
 * route and method, the key, the query string, the body's size (never buffered past the limit),
 * its encoding and its JSON shape. The library's typed errors become HTTP statuses; nothing a
 * client sends can crash the process.
 *
 *   PUT    /kv/{key}          body: the value (utf8)          -> 200 {"index":N}
 *   GET    /kv/{key}[?stale=true]                             -> 200 {"key","value"} | 404 NotFound
 *   DELETE /kv/{key}                                          -> 200 {"index":N,"existed":bool}
 *   POST   /cas/{key}         {"from":string|null,"to":string} -> 200 {"index":N} | 409 CasMismatch
 *   GET    /status                                            -> 200 RaftMetrics
 *   GET    /metrics                                           -> Prometheus text
 *   POST   /admin/init        {"members":[1,2,3]}             -> 200 {"members":[...]}
 *   POST   /admin/members     {"add":[4],"remove":[2]}        -> 200 {"index":N,"membership":{...}}
 *
 * Errors are {"status":N,"error":"Name","message":"..."} plus fields that help the caller act.
 *
 * @example
 * const server = createKvHttpServer(node, { maxBodyBytes: 1 << 20, metrics });
 * server.listen(8001, '127.0.0.1');
 */
import http from 'node:http';
import type { Logger } from 'pino';
import type { RaftNode } from '../../actors/node';
import { createLogger } from '../../runtime/logging';
import { encodeKv, type KvCommand, type KvQuery, type KvResult } from '../kv/kv-state-machine';
import type { KvMetrics } from './metrics';

export interface KvHttpOptions {
  /** Largest request body accepted, bytes (default 1 MiB); a larger one is answered 413. */
  readonly maxBodyBytes?: number;
  /** How long a write or read waits for the cluster (default 10 s); then 503 Timeout. */
  readonly requestTimeoutMs?: number;
  /** How long /admin/members waits for the change to commit (default 60 s). */
  readonly adminTimeoutMs?: number;
  /** Where bad requests and failures are logged (at debug). Default: a pino logger named kv-http. */
  readonly logger?: Logger;
  /** Serves GET /metrics from it and observes every request's latency; without it /metrics is 404. */
  readonly metrics?: KvMetrics;
  /**
   * The ids of the address book (--peers): /admin/init and /admin/members refuse any other id with
   * 400 UnknownNode, since this node could never reach it. Default: any id.
   */
  readonly knownIds?: readonly number[];
}

export const DEFAULT_MAX_BODY_BYTES = 1_048_576;
/** Largest --max-body: a value's JSON escaping can grow it 6x, and a Raft payload is at most 64 MiB. */
export const MAX_MAX_BODY_BYTES = 8 * 1_048_576;
export const MAX_KEY_BYTES = 256;
/** Most ids in one admin request (a typo must not make a huge config). */
const MAX_IDS = 64;
/** How long a connection whose body was refused (413) may keep sending before it is cut. */
const DRAIN_GRACE_MS = 2_000;

/** The route names that label metrics (never the raw path: keys would explode the label set). */
export type KvRoute = '/kv/:key' | '/cas/:key' | '/status' | '/metrics' | '/admin/init' | '/admin/members' | 'unknown';

/** An answer other than 200, with the JSON body `{status, error, message, ...extra}`. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly error: string, message: string, readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Builds the server; the caller listens (`server.listen(port, host)`) and closes it. */
export function createKvHttpServer(node: RaftNode, opts: KvHttpOptions = {}): http.Server {
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBody) || maxBody < 1 || maxBody > MAX_MAX_BODY_BYTES) {
    throw new RangeError(`maxBodyBytes must be an integer in 1..${MAX_MAX_BODY_BYTES}, got ${String(maxBody)}`);
  }
  const requestTimeoutMs = positive('requestTimeoutMs', opts.requestTimeoutMs ?? 10_000);
  const adminTimeoutMs = positive('adminTimeoutMs', opts.adminTimeoutMs ?? 60_000);
  const log = opts.logger ?? createLogger({ name: 'kv-http' });
  const known = opts.knownIds === undefined ? null : new Set(opts.knownIds);
  const api = new KvApi(node, { maxBody, requestTimeoutMs, adminTimeoutMs, log, metrics: opts.metrics, known });

  const server = http.createServer();
  server.on('request', (req, res) => api.handle(req, res));
  // Expect: 100-continue: refuse an announced oversized body before the client sends it.
  server.on('checkContinue', (req, res) => {
    if (announcedTooLarge(req, maxBody)) { api.handle(req, res); return; }
    res.writeContinue();
    api.handle(req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ err: err.message, code: err.code }, 'malformed HTTP request');
    if (socket.writable && !socket.destroyed) {
      const body = JSON.stringify({ status: 400, error: 'BadRequest', message: `malformed HTTP request: ${err.code ?? err.message}` });
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else {
      socket.destroy();
    }
  });
  return server;
}

function positive(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number of ms, got ${String(v)}`);
  return v;
}

function announcedTooLarge(req: http.IncomingMessage, maxBody: number): boolean {
  const cl = req.headers['content-length'];
  return cl !== undefined && /^\d+$/.test(cl) && Number(cl) > maxBody;
}

interface ApiConfig {
  readonly maxBody: number;
  readonly requestTimeoutMs: number;
  readonly adminTimeoutMs: number;
  readonly log: Logger;
  readonly metrics: KvMetrics | undefined;
  readonly known: ReadonlySet<number> | null;
}

interface Matched {
  readonly route: KvRoute;
  /** The methods the route answers (405 for others). */
  readonly allow: readonly string[];
  /** The raw (still percent-encoded) key of /kv/ and /cas/. */
  readonly rawKey?: string;
}

/** Matches the raw path, without URL normalisation: `/kv/../status` is the key `..` + `/status`, not /status. */
function match(path: string): Matched {
  if (path.startsWith('/kv/')) return { route: '/kv/:key', allow: ['GET', 'PUT', 'DELETE'], rawKey: path.slice(4) };
  if (path.startsWith('/cas/')) return { route: '/cas/:key', allow: ['POST'], rawKey: path.slice(5) };
  switch (path) {
    case '/status': return { route: '/status', allow: ['GET'] };
    case '/metrics': return { route: '/metrics', allow: ['GET'] };
    case '/admin/init': return { route: '/admin/init', allow: ['POST'] };
    case '/admin/members': return { route: '/admin/members', allow: ['POST'] };
    default: return { route: 'unknown', allow: [] };
  }
}

class KvApi {
  constructor(private readonly node: RaftNode, private readonly cfg: ApiConfig) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = process.hrtime.bigint();
    const method = req.method ?? '';
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const m = match(q < 0 ? url : url.slice(0, q));
    // A client that goes away mid-request must not become an unhandled 'error' event.
    req.on('error', (err) => this.cfg.log.debug({ err: err.message }, 'request stream failed'));
    res.on('error', (err) => this.cfg.log.debug({ err: err.message }, 'response stream failed'));
    res.once('close', () => {
      const status = res.writableFinished ? res.statusCode : 0; // 0: the client went away before the answer was out
      this.cfg.metrics?.observeHttp(m.route, method, status, Number(process.hrtime.bigint() - started) / 1e9);
    });
    this.dispatch(req, res, m, method, new URLSearchParams(q < 0 ? '' : url.slice(q + 1)))
      .catch((err: unknown) => this.fail(req, res, err));
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse, m: Matched, method: string, query: URLSearchParams): Promise<void> {
    if (m.route === 'unknown') throw new HttpError(404, 'UnknownRoute', `no route ${method} ${safePath(req.url)}; see the README for the API`);
    if (!m.allow.includes(method)) {
      throw new HttpError(405, 'MethodNotAllowed', `${m.route} answers ${m.allow.join(', ')}, not ${method}`, {}, { Allow: m.allow.join(', ') });
    }
    const stale = this.checkQuery(query, m.route === '/kv/:key' && method === 'GET' ? ['stale'] : []);
    switch (m.route) {
      case '/kv/:key': {
        const key = parseKey(m.rawKey!);
        if (method === 'GET') return this.get(res, key, stale);
        if (method === 'PUT') return this.put(req, res, key);
        return this.del(res, key);
      }
      case '/cas/:key': return this.cas(req, res, parseKey(m.rawKey!));
      case '/status': return this.status(res);
      case '/metrics': return this.metrics(res);
      case '/admin/init': return this.init(req, res);
      case '/admin/members': return this.members(req, res);
    }
  }

  /** Refuses query parameters the route does not take; returns the value of `stale`. */
  private checkQuery(query: URLSearchParams, allowed: readonly string[]): boolean {
    for (const name of new Set(query.keys())) {
      if (!allowed.includes(name)) throw new HttpError(400, 'BadRequest', `unknown query parameter '${truncate(name)}'${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
      if (query.getAll(name).length > 1) throw new HttpError(400, 'BadRequest', `query parameter '${name}' given more than once`);
    }
    const s = query.get('stale');
    if (s === null || s === 'false') return false;
    if (s === 'true' || s === '') return true;
    throw new HttpError(400, 'BadRequest', `stale must be true or false, got '${truncate(s)}'`);
  }

  private async get(res: http.ServerResponse, key: string, stale: boolean): Promise<void> {
    const query: KvQuery = { q: 'get', key };
    let value: unknown;
    try {
      value = await this.node.clientRead(query, { consistency: stale ? 'stale' : 'linearizable', timeoutMs: this.cfg.requestTimeoutMs });
    } catch (err) {
      throw libraryError(err, 'read', this.cfg.requestTimeoutMs);
    }
    if (value === null) throw new HttpError(404, 'NotFound', `no key ${JSON.stringify(key)}`);
    if (typeof value !== 'string') throw new HttpError(500, 'Internal', 'the state machine answered a non-string value');
    send(res, 200, { key, value });
  }

  private async put(req: http.IncomingMessage, res: http.ServerResponse, key: string): Promise<void> {
    const body = await this.readBody(req);
    let value: string;
    try {
      value = utf8.decode(body);
    } catch {
      throw new HttpError(400, 'BadValue', 'the value (the request body) must be valid UTF-8 text');
    }
    const { index } = await this.write({ op: 'put', key, value });
    send(res, 200, { index });
  }

  private async del(res: http.ServerResponse, key: string): Promise<void> {
    const { index, result } = await this.write({ op: 'delete', key });
    send(res, 200, { index, existed: result.value !== null && result.value !== undefined });
  }

  private async cas(req: http.IncomingMessage, res: http.ServerResponse, key: string): Promise<void> {
    const body = parseJsonObject(await this.readBody(req), ['from', 'to']);
    const from = body.from;
    const to = body.to;
    if (!('from' in body) || (from !== null && typeof from !== 'string')) throw new HttpError(400, 'BadRequest', '"from" must be a string, or null for "the key must be absent"');
    if (typeof to !== 'string') throw new HttpError(400, 'BadRequest', '"to" must be a string');
    const { index, result } = await this.write({ op: 'cas', key, expected: from, value: to });
    if (!result.ok) {
      const current = typeof result.value === 'string' ? result.value : null;
      throw new HttpError(409, 'CasMismatch', `key ${JSON.stringify(key)} is ${current === null ? 'absent' : 'not the expected value'}; nothing was changed`, { current, index });
    }
    send(res, 200, { index });
  }

  /** Proposes a KV command and waits until the leader applied it: its log index and result. */
  private async write(cmd: KvCommand): Promise<{ index: number; result: KvResult }> {
    let r;
    try {
      r = await this.node.clientWrite(encodeKv(cmd), { responseMode: 'applied', timeoutMs: this.cfg.requestTimeoutMs });
    } catch (err) {
      throw libraryError(err, 'write', this.cfg.requestTimeoutMs);
    }
    const result = r.result as KvResult | undefined;
    if (result === undefined || result === null || typeof result !== 'object') {
      throw new HttpError(500, 'Internal', `the write was applied at index ${r.index}, but its result did not come back`, { index: r.index });
    }
    if (!result.ok && cmd.op !== 'cas') throw new HttpError(500, 'Internal', `the state machine refused the command: ${result.error}`, { index: r.index });
    return { index: r.index, result };
  }

  private async status(res: http.ServerResponse): Promise<void> {
    let m;
    try {
      m = await this.node.currentMetrics();
    } catch (err) {
      m = this.node.metrics();
      if (m === null) throw libraryError(err, 'read', this.cfg.requestTimeoutMs);
    }
    send(res, 200, m);
  }

  private async metrics(res: http.ServerResponse): Promise<void> {
    const metrics = this.cfg.metrics;
    if (metrics === undefined) throw new HttpError(404, 'UnknownRoute', 'this server has no metrics registry');
    const text = await metrics.text();
    res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async init(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = parseJsonObject(await this.readBody(req), ['members']);
    const members = this.ids(body, 'members', true)!;
    if (members.length === 0) throw new HttpError(400, 'BadRequest', '"members" must name at least one node');
    try {
      await this.node.initWithConfig(members);
    } catch (err) {
      throw libraryError(err, 'admin', this.cfg.requestTimeoutMs);
    }
    send(res, 200, { members });
  }

  private async members(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = parseJsonObject(await this.readBody(req), ['add', 'remove', 'addNonVoters']);
    const change = { add: this.ids(body, 'add', false), remove: this.ids(body, 'remove', false), addNonVoters: this.ids(body, 'addNonVoters', false) };
    if (!change.add?.length && !change.remove?.length && !change.addNonVoters?.length) {
      throw new HttpError(400, 'BadRequest', 'give at least one of "add", "remove", "addNonVoters" (arrays of node ids)');
    }
    let r;
    try {
      r = await this.node.proposeConfigChange(
        Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)),
        { timeoutMs: this.cfg.adminTimeoutMs });
    } catch (err) {
      throw libraryError(err, 'admin', this.cfg.adminTimeoutMs);
    }
    send(res, 200, { index: r.index, membership: r.membership });
  }

  /** An array of distinct node ids in the address book, from field `name` of an admin body. */
  private ids(body: Record<string, unknown>, name: string, required: boolean): number[] | undefined {
    const v = body[name];
    if (v === undefined && !required) return undefined;
    if (!Array.isArray(v)) throw new HttpError(400, 'BadRequest', `"${name}" must be an array of node ids`);
    if (v.length > MAX_IDS) throw new HttpError(400, 'BadRequest', `"${name}" names more than ${MAX_IDS} nodes`);
    for (const id of v) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new HttpError(400, 'BadRequest', `"${name}" must hold node ids (integers >= 1), got ${truncate(JSON.stringify(id))}`);
      if (this.cfg.known !== null && !this.cfg.known.has(id)) {
        throw new HttpError(400, 'UnknownNode', `node ${id} is not in this node's address book (--peers: ${[...this.cfg.known].join(', ')})`);
      }
    }
    if (new Set(v).size !== v.length) throw new HttpError(400, 'BadRequest', `"${name}" names a node twice`);
    return v as number[];
  }

  /**
   * Reads the whole body, at most maxBody bytes. Past the limit it stops buffering at once and
   * rejects with 413; `fail` answers that with Connection: close, and the connection is cut.
   */
  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    const limit = this.cfg.maxBody;
    if (announcedTooLarge(req, limit)) return Promise.reject(tooLarge(limit));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (err: Error | null) => {
        if (settled) return;
        settled = true;
        req.off('data', onData);
        if (err) reject(err); else resolve(Buffer.concat(chunks, size));
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) { chunks.length = 0; finish(tooLarge(limit)); return; }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => finish(null));
      req.on('error', (err) => finish(new HttpError(400, 'BadRequest', `request body failed: ${err.message}`)));
      // 'close' follows every request, 'end' or not: build the error only when the body really was cut short.
      req.once('close', () => { if (!settled) finish(new HttpError(400, 'BadRequest', 'the client closed the connection before the body ended')); });
    });
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    const e = err instanceof HttpError ? err : new HttpError(500, 'Internal', `internal error: ${(err as Error)?.message ?? String(err)}`);
    if (e.status >= 500 && e.error === 'Internal') this.cfg.log.warn({ err, method: req.method, url: safePath(req.url) }, 'request failed');
    else this.cfg.log.debug({ status: e.status, error: e.error, msg: e.message, method: req.method, url: safePath(req.url) }, 'request refused');
    if (res.headersSent || res.destroyed) { res.destroy(); return; }
    const headers: Record<string, string> = { ...e.headers };
    if (e.status === 413) {
      // The rest of the body is neither buffered nor waited for: it is discarded while the answer
      // goes out, and the connection is cut DRAIN_GRACE_MS after (closing a socket that still has
      // unread input resets it, which can make the client lose the answer).
      headers.Connection = 'close';
      req.resume();
      const cut = setTimeout(() => req.socket.destroy(), DRAIN_GRACE_MS);
      cut.unref();
      req.socket.once('close', () => clearTimeout(cut));
    }
    send(res, e.status, { status: e.status, error: e.error, message: e.message, ...e.extra }, headers);
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'PayloadTooLarge', `the request body is larger than the limit of ${limit} bytes (--max-body)`, { limit });
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** A key: the path segment after /kv/ or /cas/, percent-decoded; 1..256 UTF-8 bytes, no control characters. */
export function parseKey(raw: string): string {
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'BadKey', 'the key is not valid percent-encoded UTF-8');
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes === 0) throw new HttpError(400, 'BadKey', 'the key is empty');
  if (bytes > MAX_KEY_BYTES) throw new HttpError(400, 'BadKey', `the key is ${bytes} bytes; at most ${MAX_KEY_BYTES} after URL decoding`);
  // C0, DEL and C1 control characters.
  // eslint-disable-next-line no-control-regex
  const ctl = /[\u0000-\u001f\u007f-\u009f]/.exec(key);
  if (ctl) throw new HttpError(400, 'BadKey', `the key holds a control character (U+${ctl[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()})`);
  return key;
}

/** A JSON object with only the given fields (each optional here; handlers check their own). */
function parseJsonObject(body: Buffer, fields: readonly string[]): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(body));
  } catch (err) {
    throw new HttpError(400, 'BadJson', `the body must be a JSON object: ${body.length === 0 ? 'it is empty' : (err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'BadJson', `the body must be a JSON object, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  const extra = Object.keys(v).filter((k) => !fields.includes(k));
  if (extra.length > 0) throw new HttpError(400, 'BadRequest', `unknown field ${truncate(JSON.stringify(extra[0]))} (fields: ${fields.join(', ')})`);
  return v as Record<string, unknown>;
}

type Kind = 'write' | 'read' | 'admin';

/** Codes of errors after which a write definitely did not happen. */
const NOT_APPLIED = new Set(['ForwardToLeader', 'LeaderTransferInProgress', 'ProposalDropped', 'MalformedMessage', 'NotAllowed', 'NotAMember']);

/** Maps an error of the library (matched by its stable `code`) to the HTTP answer. */
export function libraryError(err: unknown, kind: Kind, timeoutMs: number): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { code?: unknown; message?: unknown; leaderId?: unknown; mayStillComplete?: unknown; target?: unknown; notSent?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // An UnreachableError whose request never left this node (the leader was down until the deadline).
  const notSent = code === 'Unreachable' && e.notSent === true;
  const notApplied = NOT_APPLIED.has(code) || notSent;
  const outcome = kind === 'write' ? { outcome: notApplied ? 'not-applied' : 'unknown' } : {};
  const unknownNote = kind === 'write' ? (notSent ? '; nothing was applied, retry' : '; the write may or may not have been applied') : kind === 'read' ? '; reads are safe to retry' : '';
  const leaderId = typeof e?.leaderId === 'number' ? e.leaderId : null;
  switch (code) {
    case 'AskTimeout':
      return new HttpError(503, 'Timeout', `no answer within ${timeoutMs} ms${kind === 'write' ? '; the outcome of the write is unknown (it may still be applied)' : unknownNote}`, { ...outcome, cause: code });
    case 'ForwardToLeader':
      return new HttpError(503, 'Unavailable', `${leaderId === null ? 'no leader is known' : `the leader (node ${leaderId}) did not take the request`}; ${kind === 'write' ? 'nothing was applied, retry' : 'retry'}`, { ...outcome, cause: code, leaderId });
    case 'LeaderTransferInProgress':
    case 'ProposalDropped':
    case 'NotAMember':
      return new HttpError(503, 'Unavailable', `${message}`, { ...outcome, cause: code });
    case 'Unreachable':
    case 'NodeStopped':
    case 'NodeRemoved':
    case 'ProposalOutcomeUnknown':
    case 'ActorGone':
      return new HttpError(503, 'Unavailable', `${message}${kind === 'write' && code !== 'ProposalOutcomeUnknown' ? unknownNote : ''}`, { ...outcome, cause: code });
    case 'NodeNotLeader':
      return new HttpError(503, 'NodeNotLeader', `${message}; send admin requests to the leader (GET /status names it)`, { cause: code, leaderId });
    case 'ConfigChangeAborted':
      return new HttpError(503, 'ConfigChangeAborted', message, { cause: code, mayStillComplete: e.mayStillComplete === true });
    case 'NotAllowed':
    case 'Noop':
    case 'ConfigChangeInProgress':
      return new HttpError(409, code, message, { ...outcome });
    case 'InoperableConfig':
    case 'MalformedMessage':
      return new HttpError(400, code, message, { ...outcome });
    default:
      return new HttpError(500, 'Internal', `unexpected error${code ? ` ${code}` : ''}: ${message}`, { ...outcome, cause: code || undefined });
  }
}

function truncate(s: string, n = 80): string { return s.length > n ? `${s.slice(0, n)}...` : s; }
/** The request's path for a message or a log line: bounded, and its control characters escaped. */
function safePath(url: string | undefined): string { return truncate(JSON.stringify(url ?? '').slice(1, -1), 200); }
