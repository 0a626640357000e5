/**
 * A small HTTP client for the KV service's API (see .scratch/contract.md, "HTTP API"): keep-alive
 * sockets, an overall deadline per request, and the classification of each answer into the
 * history's outcomes (ok / fail / unknown).
 *
 * @example
 * const http = new KvHttpClient({ timeoutMs: 3_000 });
 * const c = await http.put(addr, 'k', 'v1');   // { outcome: 'ok', output: undefined, detail: '200' }
 * http.close();
 */
import * as http from 'node:http';
import type { Completion } from './history';

export interface Address { readonly host: string; readonly port: number }

export type HttpResult =
  | { readonly kind: 'response'; readonly status: number; readonly body: unknown; readonly text: string }
  /** `refused`: the connection was refused, so the request was certainly never received. */
  | { readonly kind: 'error'; readonly code: string; readonly refused: boolean };

/** Statuses that say the client sent a request the API should never refuse: a bug in one side. */
export const PROTOCOL_ERROR_STATUSES: ReadonlySet<number> = new Set([400, 405, 413, 415]);

export class KvHttpClient {
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  /** Answers that point at a bug (400, 405, 413, a route 404, 5xx other than 503), as "METHOD path -> status body". */
  readonly anomalies: string[] = [];

  constructor(opts: { timeoutMs?: number; maxSockets?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? 3_000;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 16 });
  }

  /** Sends one request; never rejects: transport failures come back as `{ kind: 'error' }`. */
  request(addr: Address, method: string, path: string, body?: string, timeoutMs = this.timeoutMs): Promise<HttpResult> {
    return new Promise<HttpResult>((resolve) => {
      let settled = false;
      const finish = (r: HttpResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
      const req = http.request({
        host: addr.host, port: addr.port, method, path, agent: this.agent,
        headers: payload ? { 'content-type': 'text/plain; charset=utf-8', 'content-length': payload.length } : {},
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = undefined;
          try { parsed = text === '' ? undefined : JSON.parse(text); } catch { parsed = undefined; }
          finish({ kind: 'response', status: res.statusCode ?? 0, body: parsed, text });
        });
        res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: err.code ?? err.message, refused: false }));
      });
      const timer = setTimeout(() => {
        finish({ kind: 'error', code: 'TIMEOUT', refused: false });
        req.destroy();
      }, timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: err.code ?? err.message, refused: err.code === 'ECONNREFUSED' }));
      req.end(payload);
    });
  }

  /** Fetches and parses JSON, throwing on anything but 200 (for the test's own control requests). */
  async json<T>(addr: Address, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const r = await this.request(addr, method, path, body === undefined ? undefined : JSON.stringify(body), timeoutMs);
    if (r.kind === 'error') throw new Error(`${method} http://${addr.host}:${addr.port}${path}: ${r.code}`);
    if (r.status !== 200) throw new HttpStatusError(method, path, addr, r.status, r.text);
    return r.body as T;
  }

  /** GET /kv/{key}: a linearizable read, or a stale one. '' when the key is missing (the KV model's reading). */
  async get(addr: Address, key: string, stale = false): Promise<Completion> {
    const path = `/kv/${encodeURIComponent(key)}${stale ? '?stale=true' : ''}`;
    const r = await this.request(addr, 'GET', path);
    if (r.kind === 'error') return transportFailure(r);
    const b = r.body as { value?: unknown; error?: unknown } | undefined;
    if (r.status === 200 && typeof b?.value === 'string') return { outcome: 'ok', output: b.value, detail: '200' };
    if (r.status === 404 && b?.error === 'NotFound') return { outcome: 'ok', output: '', detail: '404' };
    return this.statusFailure('GET', path, r);
  }

  /** PUT /kv/{key} with the raw value. */
  async put(addr: Address, key: string, value: string): Promise<Completion> {
    const path = `/kv/${encodeURIComponent(key)}`;
    const r = await this.request(addr, 'PUT', path, value);
    if (r.kind === 'error') return transportFailure(r);
    if (r.status === 200 && typeof (r.body as { index?: unknown } | undefined)?.index === 'number') {
      return { outcome: 'ok', output: undefined, detail: '200' };
    }
    return this.statusFailure('PUT', path, r);
  }

  /**
   * POST /cas/{key} {from, to}: ok true when it swapped, ok false on 409 CasMismatch (a definite
   * "did not swap"); `current` is the value the 409 reported ('' when missing), for the client's
   * next guess.
   */
  async cas(addr: Address, key: string, from: string | null, to: string): Promise<Completion & { current?: string }> {
    const path = `/cas/${encodeURIComponent(key)}`;
    const r = await this.request(addr, 'POST', path, JSON.stringify({ from, to }));
    if (r.kind === 'error') return transportFailure(r);
    const b = r.body as { index?: unknown; error?: unknown; current?: unknown } | undefined;
    if (r.status === 200 && typeof b?.index === 'number') return { outcome: 'ok', output: true, detail: '200' };
    if (r.status === 409 && b?.error === 'CasMismatch') {
      const current = typeof b.current === 'string' ? b.current : '';
      return { outcome: 'ok', output: false, detail: '409', current };
    }
    return this.statusFailure('POST', path, r);
  }

  /**
   * A status that is not a definite result. 503 (no leader, leader unreachable, timed out) and
   * other 5xx: the write may or may not have happened. 4xx: the request was refused before it
   * was proposed, so it certainly had no effect; 400/405/413/415 and a 404 that is not NotFound
   * are anomalies (this client sends well-formed requests) and are kept for the test to report.
   */
  private statusFailure(method: string, path: string, r: Extract<HttpResult, { kind: 'response' }>): Completion {
    const body = r.body as { error?: unknown; cause?: unknown; outcome?: unknown } | undefined;
    const name = typeof body?.error === 'string' ? ` ${body.error}` : '';
    const cause = typeof body?.cause === 'string' ? ` (${body.cause})` : '';
    const detail = `${r.status}${name}${cause}`;
    const anomalous = PROTOCOL_ERROR_STATUSES.has(r.status) || r.status === 404 || (r.status >= 500 && r.status !== 503) || r.status === 200;
    if (anomalous) this.anomalies.push(`${method} ${path} -> ${r.status} ${r.text.slice(0, 300)}`);
    if (r.status >= 400 && r.status < 500) return { outcome: 'fail', detail };
    // Still unknown to the checker (the contract promises only "503: outcome unknown"), but the
    // claim is kept so a test can check that no read ever sees such a write.
    return body?.outcome === 'not-applied' ? { outcome: 'unknown', detail, notApplied: true } : { outcome: 'unknown', detail };
  }

  /** Closes the keep-alive sockets (call in after hooks, or mocha waits for them). */
  close(): void {
    this.agent.destroy();
  }
}

function transportFailure(r: Extract<HttpResult, { kind: 'error' }>): Completion {
  return r.refused ? { outcome: 'fail', detail: r.code } : { outcome: 'unknown', detail: r.code };
}

export class HttpStatusError extends Error {
  constructor(readonly method: string, readonly path: string, readonly addr: Address, readonly status: number, readonly text: string) {
    super(`${method} http://${addr.host}:${addr.port}${path} -> ${status} ${text.slice(0, 500)}`);
    this.name = 'HttpStatusError';
  }
}
