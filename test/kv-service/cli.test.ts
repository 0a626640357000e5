/**
 * The actor-raft-kv command as a user runs it (the bin shim, a real process): --help, bad usage
 * (a message on stderr and exit 2, never a stack trace), and one real start that prints the
 * listening line, serves HTTP and exits 0 on SIGTERM. Every process costs a second or two of CPU
 * (ts-node), so the flag checks run in-process through parseCliArgs, and only one case of each
 * kind of bad usage is a real process; those start in `before`, two at a time.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCliArgs, UsageError } from '../../examples/kv-service/cli';
import { freePorts } from '../../network/free-ports';

const REPO = join(__dirname, '../..');
const BIN = join(REPO, 'examples/kv-service/bin/actor-raft-kv.js');
const RUN_TIMEOUT_MS = 45_000;
/** CLI processes at once (the machine has 2 cores). */
const CONCURRENCY = 2;

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

const children = new Set<ChildProcess>();

function spawnCli(args: readonly string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs the CLI to its exit (killed after RUN_TIMEOUT_MS, which fails the test). */
function run(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawnCli(args);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

const ALL_FLAGS = ['--id', '--raft', '--http', '--peers', '--data', '--cluster-id', '--placement', '--tls-key', '--tls-cert', '--tls-ca', '--max-body', '--log-level', '--help'];

describe('actor-raft-kv CLI', function () {
  this.timeout(120_000);
  const root = mkdtempSync(join(tmpdir(), 'actor-raft-kv-cli-'));
  const pem = join(root, 'x.pem');
  writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n');
  const ok = {
    id: ['--id', '1'], raft: ['--raft', '127.0.0.1:7001'], http: ['--http', '127.0.0.1:8001'],
    peers: ['--peers', '1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003'], data: ['--data', join(root, 'unused')],
  };
  const base = (without: keyof typeof ok | null = null, extra: string[] = []) =>
    [...Object.entries(ok).filter(([k]) => k !== without).flatMap(([, v]) => v), ...extra];

  /** Each case: its flags and a pattern its message must match; `spawn`: also run as a process. */
  const BAD: Record<string, { args: string[]; message: RegExp; spawn?: true }> = {
    'no flags at all': { args: [], message: /--id is required/ },
    'missing --data': { args: base('data'), message: /--data is required/, spawn: true },
    'missing --peers': { args: base('peers'), message: /--peers is required/ },
    'an --id that is not a positive integer': { args: base('id', ['--id', '0']), message: /--id must be an integer/ },
    'a bad port in --http': { args: base('http', ['--http', '127.0.0.1:99999']), message: /--http:.*port/, spawn: true },
    'an --http without a port': { args: base('http', ['--http', 'localhost']), message: /--http:.*host:port/ },
    '--peers without this node': { args: base('peers', ['--peers', '2=127.0.0.1:7002,3=127.0.0.1:7003']), message: /--peers must include this node \(--id 1\)/, spawn: true },
    '--raft not the address --peers gives this node': { args: base('raft', ['--raft', '127.0.0.1:7009']), message: /--peers gives node 1 the address 127\.0\.0\.1:7001, but --raft is 127\.0\.0\.1:7009/, spawn: true },
    'malformed --peers': { args: base('peers', ['--peers', '1=127.0.0.1:7001,x']), message: /--peers:.*"id=host:port"/ },
    'only some of the TLS flags': { args: base(null, ['--tls-key', pem, '--tls-cert', pem]), message: /all three of --tls-key, --tls-cert and --tls-ca.*without --tls-ca/, spawn: true },
    'a TLS file that does not exist': { args: base(null, ['--tls-key', join(root, 'nope.pem'), '--tls-cert', pem, '--tls-ca', pem]), message: /--tls-key .*nope\.pem: ENOENT/ },
    'an unknown flag': { args: base(null, ['--bogus', '1']), message: /Unknown option '--bogus'/, spawn: true },
    'a positional argument': { args: base(null, ['stray']), message: /positional argument/ },
    'a flag without its value': { args: [...base(), '--max-body'], message: /--max-body/ },
    'a bad --max-body': { args: base(null, ['--max-body', '10MB']), message: /--max-body must be a number of bytes/ },
    'a bad --placement': { args: base(null, ['--placement', 'cloud']), message: /--placement must be local or worker/ },
    'a bad --cluster-id': { args: base(null, ['--cluster-id', 'has space']), message: /--cluster-id must be/ },
    'a bad --log-level': { args: base(null, ['--log-level', 'loud']), message: /--log-level must be one of/ },
  };
  const runs = new Map<string, Promise<Run>>();
  let help: Promise<Run>;

  before(() => {
    // A small queue: CONCURRENCY processes at a time, in order.
    let slots = CONCURRENCY;
    const waiting: (() => void)[] = [];
    const queued = (args: string[]): Promise<Run> => new Promise<void>((go) => { if (slots > 0) { slots--; go(); } else waiting.push(go); })
      .then(() => run(args))
      .finally(() => { const next = waiting.shift(); if (next) next(); else slots++; });
    help = queued(['--help']);
    for (const [name, c] of Object.entries(BAD)) if (c.spawn) runs.set(name, queued(c.args));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all([help, ...runs.values()].map((p) => p?.catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  });

  it('--help exits 0 and names every flag, with an example', async () => {
    const r = await help;
    expect(r.code, r.stderr).to.equal(0);
    for (const flag of ALL_FLAGS) expect(r.stdout).to.include(flag);
    expect(r.stdout).to.match(/Example/);
    expect(r.stdout).to.include('actor-raft-kv --id 1 --raft 127.0.0.1:7001 --http 127.0.0.1:8001');
  });

  for (const [name, c] of Object.entries(BAD)) {
    it(`parseCliArgs refuses ${name}`, () => {
      expect(() => parseCliArgs(c.args)).to.throw(UsageError, c.message);
    });
  }

  it('parseCliArgs accepts a full set of flags and fills in the defaults', () => {
    const o = parseCliArgs(base());
    expect(o).to.deep.include({ id: 1, clusterId: 'actor-raft-kv', placement: 'worker', tls: null, maxBodyBytes: 1_048_576, logLevel: 'info' });
    expect(o).to.deep.include({ raft: { host: '127.0.0.1', port: 7001 }, http: { host: '127.0.0.1', port: 8001 } });
    const tls = parseCliArgs(base(null, ['--tls-key', pem, '--tls-cert', pem, '--tls-ca', pem]));
    expect(tls !== 'help' && tls.tls !== null && Buffer.from(tls.tls.ca as Uint8Array).toString()).to.match(/^-----BEGIN CERTIFICATE-----/);
    expect(parseCliArgs(['--help'])).to.equal('help');
    expect(parseCliArgs([...base(), '-h'])).to.equal('help');
  });

  for (const [name, c] of Object.entries(BAD)) {
    if (!c.spawn) continue;
    it(`bad usage exits 2 with a message: ${name}`, async () => {
      const r = await runs.get(name)!;
      expect(r.code, `stderr: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.match(c.message);
      expect(r.stderr).to.match(/--help/);
      expect(r.stderr).not.to.match(/\n\s+at /); // a message, not a stack trace
      expect(r.stdout).to.equal('');
    });
  }

  it('starts, prints one listening line, serves HTTP, and exits 0 on SIGTERM', async () => {
    const [raftPort] = await freePorts(1);
    const data = join(root, 'real');
    const child = spawnCli([
      '--id', '1', '--raft', `127.0.0.1:${raftPort}`, '--http', '127.0.0.1:0', '--peers', `1=127.0.0.1:${raftPort}`,
      '--data', data, '--placement', 'local', '--log-level', 'info', '--cluster-id', 'cli-test',
    ]);
    let stdout = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line within ${RUN_TIMEOUT_MS} ms; stderr:\n${stderr}`)), RUN_TIMEOUT_MS);
      child.stdout!.setEncoding('utf8').on('data', (c: string) => {
        stdout += c;
        if (stdout.includes('\n')) { clearTimeout(timer); resolve(stdout.slice(0, stdout.indexOf('\n'))); }
      });
      void exited.then((s) => { clearTimeout(timer); reject(new Error(`exited ${JSON.stringify(s)} before listening; stderr:\n${stderr}`)); });
    });
    const listening = JSON.parse(line) as { event: string; id: number; raft: string; http: string; pid: number };
    expect(listening).to.include({ event: 'listening', id: 1, raft: `127.0.0.1:${raftPort}`, pid: child.pid });
    const httpPort = Number(/^127\.0\.0\.1:(\d+)$/.exec(listening.http)?.[1]);
    expect(httpPort).to.be.above(0);
    expect(existsSync(data)).to.equal(true);

    const status = await new Promise<{ code: number; body: { id: number; state: string } }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: httpPort, path: '/status', agent: false }, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (c: string) => { b += c; }).on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(b) }));
      }).on('error', reject);
    });
    expect(status.code).to.equal(200);
    expect(status.body.id).to.equal(1);
    // Logs are pino JSON on stderr.
    expect(stderr.split('\n').find((l) => l.startsWith('{'))).to.match(/"level":\d+/);

    child.kill('SIGTERM');
    const end = await exited;
    expect(end, stderr).to.deep.equal({ code: 0, signal: null });
    expect(stdout.trim().split('\n')).to.have.length(1);
  });
});
