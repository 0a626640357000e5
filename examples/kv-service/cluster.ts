/**
 * `npm run cluster`: a local cluster of actor-raft-kv processes to try the service with curl. It
 * picks free loopback ports, starts the processes with their data under a fresh temp directory,
 * forms the cluster (POST /admin/init on every node), waits for a leader, and prints the commands
 * to try. Ctrl-C stops every node cleanly (SIGTERM, then SIGKILL after a deadline) and removes the
 * directory unless --keep.
 *
 * @example
 * npm run cluster                          # 3 nodes, logs in <tmp>/nN.log
 * npm run cluster -- --nodes 5 --verbose   # 5 nodes, their logs on this terminal, prefixed
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts } from '../../network/free-ports';

const BIN = join(__dirname, 'bin', 'actor-raft-kv.js');
const HOST = '127.0.0.1';
const MAX_NODES = 9;
const START_TIMEOUT_MS = 60_000;
const LEADER_TIMEOUT_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;
/** Signals closer than this to the first are one Ctrl-C delivered twice, not a second one. */
const REPEAT_SIGNAL_MS = 500;

const USAGE = `npm run cluster -- [options]: a local actor-raft-kv cluster to try with curl

  --nodes N                 how many processes (1..${MAX_NODES}, default 3)
  --placement local|worker  each node's placement (default worker)
  --keep                    keep the data directory when stopping
  --verbose                 the nodes' logs on this terminal, prefixed [nN] (default: one file per node)
  --log-level LEVEL         the nodes' log level (default info)
  -h, --help

Ctrl-C stops every node cleanly and removes the data directory (unless --keep).
`;

interface Node {
  readonly id: number;
  readonly raftPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  child?: ChildProcess;
  exited?: Promise<void>;
  running: boolean;
}

interface Options { nodes: number; placement: string; keep: boolean; verbose: boolean; logLevel: string }

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      nodes: { type: 'string' }, placement: { type: 'string' }, keep: { type: 'boolean' }, verbose: { type: 'boolean' },
      'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(USAGE); process.exit(0); }
  const nodes = Number(values.nodes ?? '3');
  if (!/^\d+$/.test(values.nodes ?? '3') || nodes < 1 || nodes > MAX_NODES) throw new Error(`--nodes must be an integer in 1..${MAX_NODES}, got ${JSON.stringify(values.nodes)}`);
  const placement = values.placement ?? 'worker';
  if (placement !== 'local' && placement !== 'worker') throw new Error(`--placement must be local or worker, got ${JSON.stringify(placement)}`);
  return { nodes, placement, keep: values.keep === true, verbose: values.verbose === true, logLevel: values['log-level'] ?? 'info' };
}

/** Copies a child's stream line by line, each prefixed (so two nodes' lines never interleave mid-line). */
function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) out.write(`${prefix}${l}\n`);
  });
  stream.on('end', () => { if (partial) out.write(`${prefix}${partial}\n`); });
}

function startNode(n: Node, peers: string, o: Options, clusterId: string, logs: WriteStream | null): Promise<void> {
  const args = [
    BIN, '--id', String(n.id), '--raft', `${HOST}:${n.raftPort}`, '--http', `${HOST}:${n.httpPort}`,
    '--peers', peers, '--data', n.dataDir, '--cluster-id', clusterId, '--placement', o.placement, '--log-level', o.logLevel,
  ];
  // Its own process group: the terminal's Ctrl-C reaches only us, and we stop the nodes one signal each.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  n.child = child;
  n.running = true;
  if (o.verbose) prefixLines(child.stderr!, `[n${n.id}] `, process.stderr); else child.stderr!.pipe(logs!);
  n.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    n.running = false;
    if (!stopping) process.stderr.write(`node ${n.id} exited (${signal ?? `code ${code}`}); its log: ${o.verbose ? 'above' : n.logFile}\n`);
    resolve();
  }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${n.id} printed no listening line within ${START_TIMEOUT_MS} ms; see ${n.logFile}`)), START_TIMEOUT_MS);
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.includes('"event":"listening"')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`node ${n.id} exited (${signal ?? `code ${code}`}) before listening; see ${o.verbose ? 'its log above' : n.logFile}`)); });
  });
}

async function http(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://${HOST}:${port}${path}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* Prometheus text, say */ }
  return { status: res.status, body: parsed };
}

/** Polls every node's /status until all name the same leader, which says it leads. */
async function waitForLeader(nodes: readonly Node[]): Promise<number> {
  const deadline = Date.now() + LEADER_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const statuses = await Promise.all(nodes.map((n) => http(n.httpPort, 'GET', '/status').then((r) => r.body as { state: string; currentLeader: number | null }, () => null)));
    const leaders = new Set(statuses.map((s) => s?.currentLeader ?? null));
    const [leader] = leaders;
    if (leaders.size === 1 && leader !== null && leader !== undefined && statuses.find((s, i) => nodes[i].id === leader)?.state === 'Leader') return leader;
    last = JSON.stringify(statuses.map((s) => s && { state: s.state, leader: s.currentLeader }));
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no leader agreed on within ${LEADER_TIMEOUT_MS} ms; last statuses: ${last}`);
}

function tryThis(nodes: readonly Node[], leader: number, root: string, o: Options): string {
  const a = nodes[0].httpPort;
  const b = nodes[nodes.length > 1 ? 1 : 0].httpPort;
  const peersFlag = nodes.map((n) => `${n.id}=${HOST}:${n.raftPort}`).join(',');
  return `
Cluster of ${nodes.length} up; node ${leader} leads. Data under ${root}${o.keep ? ' (kept)' : ' (removed on Ctrl-C)'}.
Node logs: ${o.verbose ? 'on this terminal, prefixed [nN]' : nodes.map((n) => n.logFile).join(', ')}

${nodes.map((n) => `  node ${n.id}: http://${HOST}:${n.httpPort}  raft ${HOST}:${n.raftPort}  pid ${n.child?.pid}`).join('\n')}

Try (any node takes any request; followers forward to the leader):
  curl -X PUT  http://${HOST}:${a}/kv/greeting -d 'hello'                       # {"index":N}
  curl         http://${HOST}:${b}/kv/greeting                                   # linearizable read
  curl        'http://${HOST}:${b}/kv/greeting?stale=true'                       # this replica, at once
  curl -X POST http://${HOST}:${a}/cas/greeting -d '{"from":"hello","to":"hi"}'   # 200, or 409 with "current"
  curl -X DELETE http://${HOST}:${b}/kv/greeting                                 # {"index":N,"existed":true}
  curl         http://${HOST}:${a}/status                                        # RaftMetrics as JSON
  curl         http://${HOST}:${a}/metrics | grep ^actor_raft                    # Prometheus text
  curl -X POST http://${HOST}:${nodes.find((n) => n.id === leader)!.httpPort}/admin/members -d '{"remove":[${nodes[nodes.length - 1].id}]}'   # on the leader
Break it: kill -9 the leader's pid above and watch /status elect another.
The address book every node got: --peers ${peersFlag}
Ctrl-C stops all ${nodes.length}.
`;
}

let stopping = false;

async function stopAll(nodes: readonly Node[], root: string, keep: boolean, code: number): Promise<never> {
  stopping = true;
  const live = nodes.filter((n) => n.running);
  process.stderr.write(`\nstopping ${live.length} node(s) (SIGTERM, SIGKILL after ${STOP_DEADLINE_MS / 1000} s)...\n`);
  for (const n of live) n.child!.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const n of nodes) if (n.running) { process.stderr.write(`node ${n.id} did not stop in time: SIGKILL\n`); n.child!.kill('SIGKILL'); }
  }, STOP_DEADLINE_MS);
  await Promise.all(live.map((n) => n.exited));
  clearTimeout(timer);
  if (keep) process.stderr.write(`data kept in ${root}\n`); else rmSync(root, { recursive: true, force: true });
  process.stderr.write('stopped\n');
  process.exit(code);
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`cluster: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const root = mkdtempSync(join(tmpdir(), 'actor-raft-kv-cluster-'));
  const ports = await freePorts(2 * o.nodes);
  const nodes: Node[] = Array.from({ length: o.nodes }, (_, i) => ({
    id: i + 1, raftPort: ports[2 * i], httpPort: ports[2 * i + 1],
    dataDir: join(root, `n${i + 1}`), logFile: join(root, `n${i + 1}.log`), running: false,
  }));
  // A child never outlives us, even if we crash (not if we are SIGKILLed: then kill their pids by hand).
  process.on('exit', () => { for (const n of nodes) if (n.running) n.child!.kill('SIGKILL'); });
  let firstSignalAt = 0;
  const onSignal = () => {
    // Ctrl-C under npm can arrive twice at once (from the terminal and forwarded by npm): only a
    // second signal a moment later means "now".
    if (firstSignalAt > 0 && Date.now() - firstSignalAt < REPEAT_SIGNAL_MS) return;
    if (firstSignalAt > 0) {
      for (const n of nodes) if (n.running) n.child!.kill('SIGKILL');
      process.exit(130);
    }
    firstSignalAt = Date.now();
    void stopAll(nodes, root, o.keep, 0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const peers = nodes.map((n) => `${n.id}=${HOST}:${n.raftPort}`).join(',');
  const clusterId = `kv-cluster-${process.pid}`;
  try {
    process.stderr.write(`starting ${o.nodes} actor-raft-kv processes, data under ${root}...\n`);
    await Promise.all(nodes.map((n) => startNode(n, peers, o, clusterId, o.verbose ? null : createWriteStream(n.logFile))));
    const members = nodes.map((n) => n.id);
    await Promise.all(nodes.map(async (n) => {
      const r = await http(n.httpPort, 'POST', '/admin/init', { members });
      // 409: already initialised (a retry); anything else is a real failure.
      if (r.status !== 200 && r.status !== 409) throw new Error(`POST /admin/init on node ${n.id}: ${r.status} ${JSON.stringify(r.body)}`);
    }));
    const leader = await waitForLeader(nodes);
    if (!stopping) process.stdout.write(tryThis(nodes, leader, root, o));
  } catch (err) {
    if (stopping) return;
    process.stderr.write(`cluster: ${(err as Error).message}\n`);
    await stopAll(nodes, root, true, 1);
  }
}

void main();
