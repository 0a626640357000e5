/**
 * Loopback ports the OS reports free, for local clusters of processes (the KV service's
 * `npm run cluster`, the network benchmark, tests): binds `n` sockets to port 0 at once, so the
 * ports are distinct, notes them and closes the sockets. Another process could take one before it
 * is used; on loopback the window is small, and a node that cannot listen fails with a clear error.
 *
 * @example
 * const [raft, http] = await freePorts(2);
 */
import * as net from 'node:net';

export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  if (!Number.isSafeInteger(n) || n < 1 || n > 1000) throw new RangeError(`freePorts: n must be an integer in 1..1000, got ${String(n)}`);
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      servers.push(await new Promise<net.Server>((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, host, () => resolve(s));
      }));
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
