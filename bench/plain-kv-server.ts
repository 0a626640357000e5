/**
 * The network suite's baseline (bench/network.ts): a plain node:http server over an in-memory Map,
 * no replication, with the KV service's routes and answers (PUT /kv/{key} -> 200 {"index":N},
 * GET /kv/{key} -> 200 {"key","value"} or 404). The same load against it and against the
 * replicated service shows what replication costs. Forked in its own process, so it does not share
 * an event loop with the load generator; it reports its port over IPC (or stdout when run alone:
 * `npx ts-node --transpile-only bench/plain-kv-server.ts 127.0.0.1:8000`) and exits on SIGINT,
 * SIGTERM or when its parent goes away.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const MAX_BODY_BYTES = 1 << 20;
const data = new Map<string, string>();
let index = 0;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
const fail = (res: ServerResponse, status: number, error: string, message: string): void => send(res, status, { status, error, message });

function readBody(req: IncomingMessage, res: ServerResponse, then: (body: string) => void): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    if (bytes > MAX_BODY_BYTES) { fail(res, 413, 'PayloadTooLarge', `body over ${MAX_BODY_BYTES} bytes`); req.destroy(); return; }
    chunks.push(c);
  });
  req.on('end', () => { if (bytes <= MAX_BODY_BYTES) then(Buffer.concat(chunks).toString('utf8')); });
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!path.startsWith('/kv/')) { fail(res, 404, 'NotFound', `no route ${path}`); return; }
  let key: string;
  try { key = decodeURIComponent(path.slice(4)); } catch { fail(res, 400, 'BadKey', 'bad percent-encoding'); return; }
  if (key.length === 0) { fail(res, 400, 'BadKey', 'empty key'); return; }
  switch (req.method) {
    case 'PUT':
      readBody(req, res, (value) => { data.set(key, value); send(res, 200, { index: ++index }); });
      return;
    case 'GET': {
      const value = data.get(key);
      if (value === undefined) fail(res, 404, 'NotFound', `no key ${key}`);
      else send(res, 200, { key, value });
      return;
    }
    default:
      res.setHeader('allow', 'GET, PUT');
      fail(res, 405, 'MethodNotAllowed', `${req.method} on ${path}`);
  }
});

const [host, port] = (process.argv[2] ?? '127.0.0.1:0').split(':');
server.listen(Number(port), host, () => {
  const addr = server.address();
  const line = { event: 'listening', http: typeof addr === 'object' && addr !== null ? `${addr.address}:${addr.port}` : String(addr), pid: process.pid };
  if (process.send) process.send(line);
  else process.stdout.write(`${JSON.stringify(line)}\n`);
});

const stop = (): void => { server.close(() => process.exit(0)); server.closeAllConnections(); setTimeout(() => process.exit(0), 2000).unref(); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('disconnect', stop);
