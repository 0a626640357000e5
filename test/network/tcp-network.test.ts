/**
 * TcpNetwork (network/tcp-network.ts) with real sockets on loopback: the frame decoder and option
 * checks, a 3-node cluster that forms and replicates over TCP (plain and mutual TLS), the
 * handshake's refusals (another cluster, an unknown node, a certificate from another CA or with
 * another node's name), a hostile client (random bytes, huge length prefixes, half frames, frames
 * out of order, garbage RPCs) that never crashes or stalls the cluster, and a peer that goes down
 * and comes back: one warning and one recovery line, the failures in between only counted.
 *
 * Nodes run on local placement in this process, each with its own ActorSystem. Time is real
 * (sockets); every wait is on a condition with a generous deadline.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { RaftNode } from '../../actors/node';
import { encodeClientRequest, encodeRequest } from '../../actors/raft/codec';
import type { NodeId } from '../../actors/raft/core/types';
import { UnreachableError, type NetworkMsg } from '../../network/network';
import { encodeKv, KV_MODULE, type KvResult } from '../../examples/kv/kv-state-machine';
import { ActorSystem } from '../../runtime/system';
import { freePorts } from '../../network/free-ports';
import { fileStorageSpec } from '../../storage/file-storage';
import {
  FRAME, FrameDecoder, FrameError, PROTOCOL_VERSION, decodeRefuse, decodeReply, decodeErrorPayload, encodeFrame, encodeHello, encodeWelcome,
  framePieces, requestPrefix, type Frame,
} from '../../network/tcp-frames';
import {
  parseAddress, parsePeers, tcpNetworkSpec, TcpNetworkStats, validateTcpNetworkOptions, type TcpAddress, type TcpNetworkOptions, type TcpTlsOptions,
} from '../../network/tcp-network';

const FIXTURES = join(__dirname, 'fixtures/tls');
const CLUSTER = 'tcp-test';

/** Reproducible garbage: `n` bytes from a xorshift32 generator. */
function seededBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, deadlineMs = 20_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A pino logger whose JSON lines are kept, to count what the network actor logged. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

interface Member {
  readonly id: number;
  system: ActorSystem;
  node: RaftNode;
  readonly stats: TcpNetworkStats;
  readonly lines: Array<Record<string, unknown>>;
}

interface ClusterOptions {
  readonly ids?: readonly number[];
  readonly tls?: (id: number) => TcpTlsOptions;
  readonly durable?: boolean;
  readonly net?: Partial<TcpNetworkOptions>;
  /** Ids in every address book that no node runs as (a raw client may play them). */
  readonly extraPeers?: readonly number[];
}

function tlsFor(id: number, dir = FIXTURES): TcpTlsOptions {
  return {
    key: readFileSync(join(dir, `node-${id}-key.pem`)),
    cert: readFileSync(join(dir, `node-${id}.pem`)),
    ca: readFileSync(join(FIXTURES, 'ca.pem')),
  };
}

/** A cluster of RaftNodes over TcpNetwork on loopback, one ActorSystem each, local placement. */
class TcpCluster {
  readonly members = new Map<number, Member>();
  readonly peers: Record<number, TcpAddress> = {};
  private readonly dir = mkdtempSync(join(tmpdir(), 'tcp-net-test-'));

  constructor(private readonly opts: ClusterOptions) {}

  static async create(opts: ClusterOptions = {}): Promise<TcpCluster> {
    const c = new TcpCluster(opts);
    const ids = opts.ids ?? [1, 2, 3];
    const all = [...ids, ...(opts.extraPeers ?? [])];
    const ports = await freePorts(all.length);
    all.forEach((id, i) => { c.peers[id] = { host: '127.0.0.1', port: ports[i] }; });
    for (const id of ids) await c.start(id);
    await Promise.all(ids.map((id) => c.member(id).node.initWithConfig([...ids])));
    return c;
  }

  member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`node ${id} is not running`);
    return m;
  }

  async start(id: number): Promise<Member> {
    const { logger, lines } = capturingLogger();
    const system = ActorSystem.create({ logger });
    const stats = this.members.get(id)?.stats ?? TcpNetworkStats.create();
    const node = await RaftNode.start({
      system, id, placement: 'local',
      network: tcpNetworkSpec({ self: id, clusterId: CLUSTER, listen: this.peers[id], peers: this.peers, stats: stats.buffer, tls: this.opts.tls?.(id), ...this.opts.net }),
      stateMachine: { module: KV_MODULE, export: 'createKv', args: {} },
      storage: this.opts.durable ? fileStorageSpec({ dir: join(this.dir, `n${id}`) }) : undefined,
    });
    const m: Member = { id, system, node, stats, lines };
    this.members.set(id, m);
    return m;
  }

  async stop(id: number): Promise<void> {
    const m = this.member(id);
    this.members.delete(id);
    await m.node.stop();
    await m.system.shutdown();
  }

  async leader(): Promise<Member> {
    return waitFor('a leader', () => [...this.members.values()].find((m) => m.node.metrics()?.state === 'Leader'));
  }

  /** `n` puts through the leader from `clients` concurrent clients; returns the last index. */
  async write(n: number, clients = 8, prefix = 'k'): Promise<number> {
    let last = 0;
    let next = 0;
    await Promise.all(Array.from({ length: clients }, async () => {
      while (next < n) {
        const i = next++;
        const leader = await this.leader();
        const r = await leader.node.clientWrite(encodeKv({ op: 'put', key: `${prefix}${i % 16}`, value: `v${i}` }), { responseMode: 'applied' });
        expect((r.result as KvResult).ok).to.equal(true);
        last = Math.max(last, r.index);
      }
    }));
    return last;
  }

  async allApplied(index: number): Promise<void> {
    await waitFor(`every node applied ${index}`, () => [...this.members.values()].every((m) => (m.node.metrics()?.lastApplied ?? 0) >= index));
  }

  async digests(): Promise<unknown[]> {
    return Promise.all([...this.members.values()].map((m) => m.node.clientRead({ q: 'digest' }, { consistency: 'stale' })));
  }

  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stop(id).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A raw client socket that collects the frames it is sent and knows when it was closed. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder(1 << 20);
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (b: Buffer) => { try { this.frames.push(...this.decoder.push(b)); } catch { /* the node's garbage is not ours to judge */ } });
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => undefined);
  }

  static async connect(addr: TcpAddress): Promise<RawClient> {
    const socket = net.connect(addr.port, addr.host);
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    return new RawClient(socket);
  }

  send(bytes: Uint8Array): void { if (!this.socket.destroyed) this.socket.write(bytes); }

  async waitClosed(what: string, deadlineMs = 10_000): Promise<void> { await waitFor(`${what}: connection closed by the node`, () => this.closed, deadlineMs); }

  destroy(): void { this.socket.destroy(); }
}

const hello = (from: number, to: number, clusterId = CLUSTER, version = PROTOCOL_VERSION): Buffer =>
  encodeHello({ version, from, to, clusterId });

describe('TcpNetwork', function () {
  this.timeout(60_000);

  describe('frames', () => {
    it('decodes frames split at every byte and many frames in one chunk', () => {
      const frames = [encodeFrame(FRAME.ok, Buffer.from('abc')), encodeFrame(FRAME.request, seededBytes(300, 42)), encodeFrame(FRAME.error, Buffer.alloc(0))];
      const all = Buffer.concat(frames);
      const d1 = new FrameDecoder(1 << 16);
      const byByte: Frame[] = [];
      for (let i = 0; i < all.length; i++) byByte.push(...d1.push(all.subarray(i, i + 1)));
      const d2 = new FrameDecoder(1 << 16);
      const together = d2.push(all);
      for (const got of [byByte, together]) {
        expect(got.map((f) => f.kind)).to.deep.equal([FRAME.ok, FRAME.request, FRAME.error]);
        expect(Buffer.from(got[1].body).equals(frames[1].subarray(5))).to.equal(true);
        expect(got[2].body.length).to.equal(0);
      }
      expect(d1.pendingBytes).to.equal(0);
    });

    it('refuses a zero length and a length over the limit as soon as the prefix arrives, before any body', () => {
      expect(() => new FrameDecoder(1 << 16).push(Buffer.from([0, 0, 0, 0]))).to.throw(FrameError, /length 0/);
      const d = new FrameDecoder(1 << 16);
      const err = (() => { try { d.push(Buffer.from([0xff, 0xff, 0xff, 0xff])); } catch (e) { return e as FrameError; } return null; })();
      expect(err).to.be.instanceOf(FrameError);
      expect(err!.reason).to.equal('oversized');
      expect(d.pendingBytes).to.be.at.most(4);
    });

    it('parses addresses and address books, and refuses bad ones with a message naming the problem', () => {
      expect(parseAddress('127.0.0.1:7001')).to.deep.equal({ host: '127.0.0.1', port: 7001 });
      expect(parseAddress('[::1]:7002')).to.deep.equal({ host: '::1', port: 7002 });
      expect(parsePeers('1=a.example:1,2=10.0.0.2:7001')).to.deep.equal({ 1: { host: 'a.example', port: 1 }, 2: { host: '10.0.0.2', port: 7001 } });
      expect(() => parseAddress('127.0.0.1')).to.throw(RangeError, /host:port/);
      expect(() => parseAddress('127.0.0.1:70000')).to.throw(RangeError, /port/);
      expect(() => parsePeers('')).to.throw(TypeError);
      expect(() => parsePeers('1=127.0.0.1:7001,1=127.0.0.1:7002')).to.throw(RangeError, /twice/);
      expect(() => parsePeers('0=127.0.0.1:7001')).to.throw(RangeError, /peer id/);
      expect(() => parsePeers('1=127.0.0.1:0')).to.throw(RangeError, /real port/);
      expect(() => parsePeers('x=127.0.0.1:7001')).to.throw(RangeError, /peer id/);
      expect(() => parsePeers('1:127.0.0.1:7001')).to.throw(RangeError, /id=host:port/);
    });

    it('validates every option at the boundary', () => {
      const ok: TcpNetworkOptions = { self: 1, clusterId: 'c', listen: { host: '127.0.0.1', port: 7001 }, peers: { 1: { host: '127.0.0.1', port: 7001 }, 2: { host: '127.0.0.1', port: 7002 } } };
      expect(validateTcpNetworkOptions(ok).peers.size).to.equal(2);
      const bad: Array<[Partial<TcpNetworkOptions> | Record<string, unknown>, RegExp]> = [
        [{ self: 0 }, /self/],
        [{ clusterId: 'has space' }, /clusterId/],
        [{ clusterId: 'x'.repeat(65) }, /clusterId/],
        [{ listen: { host: '127.0.0.1', port: -1 } }, /port/],
        [{ peers: { 1: { host: '127.0.0.1', port: 7009 } } }, /listens on 7001/],
        [{ peers: { 2: { host: '127.0.0.1', port: 0 } } }, /real port/],
        [{ maxFrameBytes: 10 }, /maxFrameBytes/],
        [{ tls: { key: '', cert: 'x', ca: 'y' } }, /tls.key/],
        [{ backoffMs: { initial: 100, max: 10 } }, /backoffMs.max/],
        [{ connectTimeoutMs: 0 }, /connectTimeoutMs/],
        [{ stats: new ArrayBuffer(8) as unknown as SharedArrayBuffer }, /./],
        [{ colour: 'blue' }, /unknown TcpNetwork option "colour"/],
      ];
      for (const [patch, msg] of bad) {
        expect(() => validateTcpNetworkOptions({ ...ok, ...patch } as TcpNetworkOptions), JSON.stringify(patch)).to.throw(msg);
      }
    });
  });

  describe('a 3-node cluster over plain TCP', () => {
    let c: TcpCluster;
    // Node 9 is in every address book but never runs: the raw clients below play it.
    before(async () => { c = await TcpCluster.create({ extraPeers: [9] }); });
    after(async () => { await c?.close(); });

    it('forms, replicates concurrent writes to every node, and counts what it sent', async () => {
      const last = await c.write(300, 16);
      await c.allApplied(last);
      const digests = await c.digests();
      expect(new Set(digests.map((d) => JSON.stringify(d))).size, 'every state machine holds the same data').to.equal(1);
      const leader = await c.leader();
      const s = leader.stats.read();
      expect(s.sent.append.requests).to.be.greaterThan(0);
      const answered = s.sent.append.buckets.reduce((a, b) => a + b, 0);
      expect(answered + s.sent.append.failures, 'every append is answered or failed, none counted twice').to.be.at.most(s.sent.append.requests);
      expect(answered).to.be.greaterThan(0);
      const follower = [...c.members.values()].find((m) => m.id !== leader.id)!;
      expect(follower.stats.read().received.append).to.be.greaterThan(0);
      expect(s.badFrames + s.oversizedFrames + s.refusedCluster + s.refusedNode).to.equal(0);
    });

    it('refuses a handshake from another cluster, from a node outside the address book, or meant for another node, and counts each', async () => {
      const target = c.member(1);
      const before = target.stats.read();
      const cases: Array<[Buffer, string]> = [
        [hello(2, 1, 'another-cluster'), 'cluster'],
        [hello(99, 1), 'node'],
        [hello(2, 3), 'node'],
        [hello(1, 1), 'node'],
        [hello(2, 1, CLUSTER, PROTOCOL_VERSION + 1), 'version'],
      ];
      for (const [frame, reason] of cases) {
        const raw = await RawClient.connect(c.peers[1]);
        raw.send(frame);
        await raw.waitClosed(`refusal (${reason})`);
        expect(raw.frames.map((f) => f.kind)).to.deep.equal([FRAME.refuse]);
        expect(decodeRefuse(raw.frames[0].body).reason).to.equal(reason);
      }
      const after = target.stats.read();
      expect(after.refusedCluster - before.refusedCluster).to.equal(1);
      expect(after.refusedNode - before.refusedNode).to.equal(3);
      expect(after.refusedHandshake - before.refusedHandshake).to.equal(1);
      const last = await c.write(20);
      await c.allApplied(last);
    });

    it('survives a hostile client: random bytes, huge length prefixes, half frames, frames out of order, garbage RPCs', async () => {
      const target = c.member(2);
      const before = target.stats.read();
      const writes = c.write(400, 4, 'h'); // the cluster keeps committing throughout

      // Random bytes before any handshake. Those that hold a whole first frame (or a prefix over the
      // limit) are refused and counted; the rest are an unfinished frame the client walks away from.
      let judged = 0;
      for (let i = 0; i < 20; i++) {
        const raw = await RawClient.connect(c.peers[2]);
        const bytes = seededBytes(1 + (i * 37) % 400, i + 1);
        try { if (new FrameDecoder(8 * 1024).push(bytes).length > 0) judged++; } catch { judged++; } // 8 KiB: the limit before a handshake
        raw.send(bytes);
        raw.socket.end();
        await raw.waitClosed('random bytes');
      }
      // A length prefix of 4 GiB, and one just over the limit: refused on the prefix alone.
      // A length prefix of 4 GiB, and one of 9000 bytes: before the handshake only 8 KiB frames are
      // taken (a stranger must not make the node hold maxFrameBytes per connection). After the
      // handshake, one just over maxFrameBytes. Each refused on the prefix alone.
      for (const [len, handshake] of [[0xffff_ffff, false], [9000, false], [80 * 1024 * 1024 + 1, true]] as const) {
        const raw = await RawClient.connect(c.peers[2]);
        if (handshake) {
          raw.send(hello(9, 2));
          await waitFor('WELCOME', () => raw.frames.some((f) => f.kind === FRAME.welcome));
        }
        const b = Buffer.alloc(5); b.writeUInt32BE(len, 0); b[4] = FRAME.request;
        raw.send(b);
        await raw.waitClosed(`length prefix ${len}`);
      }
      // A REQUEST before the handshake.
      {
        const raw = await RawClient.connect(c.peers[2]);
        raw.send(Buffer.concat(framePieces(FRAME.request, requestPrefix(1, 1000), new Uint8Array([1, 2, 3]))));
        await raw.waitClosed('request before hello');
      }
      // A valid handshake, then a second HELLO.
      {
        const raw = await RawClient.connect(c.peers[2]);
        raw.send(hello(9, 2));
        await waitFor('WELCOME', () => raw.frames.some((f) => f.kind === FRAME.welcome));
        raw.send(hello(9, 2));
        await raw.waitClosed('HELLO after the handshake');
      }
      // A valid handshake, then an RPC whose bytes are garbage: answered with an ERROR frame, the connection stays.
      {
        const raw = await RawClient.connect(c.peers[2]);
        raw.send(hello(9, 2));
        await waitFor('WELCOME', () => raw.frames.some((f) => f.kind === FRAME.welcome));
        raw.send(Buffer.concat(framePieces(FRAME.request, requestPrefix(7, 2000), Buffer.from([0xc1, ...seededBytes(9000, 7)]))));
        const err = await waitFor('ERROR answer', () => raw.frames.find((f) => f.kind === FRAME.error));
        const r = decodeReply(err.body, 'ERROR');
        expect(r.reqId).to.equal(7);
        expect(decodeErrorPayload(r.payload).name).to.match(/Malformed/);
        expect(raw.closed).to.equal(false);
        // A well-formed RPC on the same connection is still served (a vote with an empty log: Raft answers it, refused).
        raw.send(Buffer.concat(framePieces(FRAME.request, requestPrefix(8, 2000), encodeRequest({ type: 'vote', term: 1, candidateId: 9, lastLogIndex: 0, lastLogTerm: 0 } as never))));
        await waitFor('OK answer', () => raw.frames.some((f) => f.kind === FRAME.ok && decodeReply(f.body, 'OK').reqId === 8));
        // Then a frame of an unknown kind closes it.
        raw.send(encodeFrame(99 as never, Buffer.from('x')));
        await raw.waitClosed('unknown frame kind');
      }
      // Half a frame, and the client goes away: nothing held, nothing stuck (the stall timer is tested below).
      {
        const raw = await RawClient.connect(c.peers[2]);
        raw.send(hello(9, 2));
        await waitFor('WELCOME', () => raw.frames.some((f) => f.kind === FRAME.welcome));
        const b = Buffer.alloc(5 + 10); b.writeUInt32BE(1000, 0); b[4] = FRAME.request;
        raw.send(b);
        raw.destroy();
      }
      const last = await writes;
      await c.allApplied(last);
      const after = target.stats.read();
      // Random bytes mostly start with a huge length prefix; each of the 20 is counted one way or another.
      const bad = after.badFrames - before.badFrames;
      const oversized = after.oversizedFrames - before.oversizedFrames;
      const timedOut = after.refusedHandshake - before.refusedHandshake;
      expect(oversized, 'the three prefixes over their limits at least').to.be.at.least(3);
      expect(bad, 'request before hello, second HELLO, unknown kind at least').to.be.at.least(3);
      expect(judged, 'the seeds give both kinds').to.be.within(10, 19);
      expect(bad + oversized + timedOut, 'every hostile connection that sent a judgeable frame counted').to.equal(judged + 3 + 3);
      const warnings = target.lines.filter((l) => l.msg === 'inbound connection closed');
      expect(warnings.length, 'one warning per 10 s, the rest counted').to.be.within(1, 3);
      expect(warnings.reduce((n, l) => n + 1 + (l.notLoggedSinceLast as number), 0)).to.be.at.most(bad + oversized + timedOut);
      expect(c.member(2).node.metrics()?.state).to.be.oneOf(['Leader', 'Follower']);
    });
  });

  describe('timeouts against a stalling client', () => {
    let c: TcpCluster;
    // Node 2 is in node 1's address book but never runs: the raw client plays it.
    before(async () => { c = await TcpCluster.create({ ids: [1], extraPeers: [2], net: { stallTimeoutMs: 300, handshakeTimeoutMs: 300 } }); });
    after(async () => { await c?.close(); });

    it('closes a connection that never completes its handshake, and one that stops half way through a frame', async () => {
      const before = c.member(1).stats.read();
      const silent = await RawClient.connect(c.peers[1]);
      const halfHello = await RawClient.connect(c.peers[1]);
      halfHello.send(hello(2, 1).subarray(0, 7));
      await silent.waitClosed('no handshake');
      await halfHello.waitClosed('half a HELLO');
      const stalled = await RawClient.connect(c.peers[1]);
      stalled.send(hello(2, 1));
      await waitFor('WELCOME', () => stalled.frames.some((f) => f.kind === FRAME.welcome));
      const half = Buffer.alloc(5 + 10); half.writeUInt32BE(1000, 0); half[4] = FRAME.request;
      stalled.send(half);
      await stalled.waitClosed('half a REQUEST');
      const after = c.member(1).stats.read();
      expect(after.refusedHandshake - before.refusedHandshake, `handshake timeouts: ${JSON.stringify(after)}`).to.equal(2);
      expect(after.badFrames - before.badFrames, 'the stalled frame').to.equal(1);
      const last = await c.write(10, 2);
      await c.allApplied(last);
    });
  });

  describe('the connection of a pair, and the address book', () => {
    let c: TcpCluster;
    let fake: net.Server | null = null;
    // Node 2 is played by this test: a listener that answers HELLO, and raw dials.
    before(async () => { c = await TcpCluster.create({ ids: [1], extraPeers: [2], net: { handshakeTimeoutMs: 300 } }); });
    after(async () => { fake?.close(); await c?.close(); });

    it('keeps a fresh connection from a peer over an old one the peer lost (a restart that hid the FIN)', async () => {
      const accepted: Array<{ socket: net.Socket; frames: Frame[]; closed: boolean; readyAt: number }> = [];
      fake = net.createServer((socket) => {
        const conn = { socket, frames: [] as Frame[], closed: false, readyAt: 0 };
        accepted.push(conn);
        const d = new FrameDecoder(1 << 20);
        socket.on('data', (b: Buffer) => {
          for (const f of d.push(b)) {
            conn.frames.push(f);
            if (f.kind === FRAME.hello) { socket.write(encodeWelcome({ from: 2, clusterId: CLUSTER })); conn.readyAt = Date.now(); }
          }
        });
        socket.on('close', () => { conn.closed = true; });
        socket.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => fake!.listen(c.peers[2].port, '127.0.0.1', resolve));
      const network = c.member(1).system.ref<unknown>('n1/network');
      const rpc = encodeRequest({ type: 'vote', term: 1, candidateId: 1, lastLogIndex: 0, lastLogTerm: 0 } as never);
      const send = (): Promise<unknown> => network.ask({ type: 'send', target: 2, rpc, timeoutMs: 5000 }).catch((e: Error) => e);

      const first = send(); // node 1 dials "node 2": connection X, which the fake never answers on
      const x = await waitFor('node 1 dialed node 2', () => accepted.find((a) => a.frames.some((f) => f.kind === FRAME.request)));
      // Past the window in which two dials count as crossed, "node 2" dials node 1 as if it had restarted.
      await waitFor('the crossing window passed', () => Date.now() - x.readyAt > 400);
      const y = await RawClient.connect(c.peers[1]);
      y.send(hello(2, 1));
      await waitFor('WELCOME on the new connection', () => y.frames.some((f) => f.kind === FRAME.welcome));
      await waitFor('node 1 closed the old connection', () => x.closed);
      expect(await first, 'what was in flight on the old connection fails').to.be.instanceOf(Error);
      void send();
      await waitFor('the next request on the new connection', () => y.frames.some((f) => f.kind === FRAME.request));
      expect(y.closed).to.equal(false);

      // A bad address book is refused; the actor keeps running and keeps its connections.
      const refused = await network.ask({ type: 'peers', peers: { abc: { host: '127.0.0.1', port: 1 } } }).catch((e: Error) => e);
      expect(refused).to.be.instanceOf(Error);
      expect((refused as Error).message).to.match(/peer id "abc"/);
      expect(await network.ask({ type: 'peers', peers: { ...c.peers } })).to.equal(true);
      expect(y.closed, 'no restart dropped the connection').to.equal(false);
      y.destroy();
    });
  });

  describe('mutual TLS', () => {
    let c: TcpCluster;
    // Room for 2 handshakes (+ 2 sockets per peer) and a long handshake timeout: only the cap closes the idle sockets below.
    before(async () => { c = await TcpCluster.create({ tls: (id) => tlsFor(id), net: { maxPendingHandshakes: 2, handshakeTimeoutMs: 30_000 } }); });
    after(async () => { await c?.close(); });

    it('forms and replicates when every node presents a certificate of the cluster CA named node-<id>', async () => {
      const last = await c.write(100, 8);
      await c.allApplied(last);
      expect(new Set((await c.digests()).map((d) => JSON.stringify(d))).size).to.equal(1);
    });

    it('caps the sockets a listener holds below TLS: idle connections past the budget are closed on arrival', async () => {
      const before = c.member(1).stats.read();
      const idle = await Promise.all(Array.from({ length: 12 }, () => RawClient.connect(c.peers[1])));
      try {
        // 2 handshakes + 2 per peer (4) = 6 sockets; node 1's peers already hold 1 or 2 of them.
        await waitFor('the sockets over the cap closed', () => idle.filter((r) => r.closed).length >= 6, 15_000);
        expect(c.member(1).stats.read().refusedHandshake - before.refusedHandshake).to.be.at.least(6);
      } finally {
        for (const r of idle) r.destroy();
      }
      const last = await c.write(20);
      await c.allApplied(last);
    });

    it('refuses a plain-TCP client, a certificate from another CA, and a genuine certificate claiming another node', async () => {
      const before = c.member(1).stats.read();
      const plain = await RawClient.connect(c.peers[1]);
      plain.send(hello(2, 1));
      await plain.waitClosed('plain TCP to a TLS port');
      const rogue = await probeDial(c.peers[1], { ...tlsFor(2, join(FIXTURES, 'rogue')), ca: readFileSync(join(FIXTURES, 'ca.pem')) }, 2);
      expect(rogue.welcomed, 'a certificate of another CA never gets a WELCOME').to.equal(false);
      const impostor = await probeDial(c.peers[1], tlsFor(3), 2); // node 3's genuine certificate, claiming to be node 2
      expect(impostor.welcomed).to.equal(false);
      expect(impostor.refusal).to.equal('identity');
      const genuine = await probeDial(c.peers[1], tlsFor(2), 2, true);
      expect(genuine.welcomed, 'the same probe with the right certificate is welcomed').to.equal(true);
      await waitFor('refusals counted', () => c.member(1).stats.read().refusedHandshake - before.refusedHandshake >= 3);
      const last = await c.write(20);
      await c.allApplied(last);
    });
  });

  describe('a peer that goes down and comes back', () => {
    let c: TcpCluster;
    before(async () => { c = await TcpCluster.create({ durable: true, net: { backoffMs: { initial: 20, max: 100 } } }); });
    after(async () => { await c?.close(); });

    it('logs the first failure and the recovery once, counts the failures in between, and catches the node up', async () => {
      const leader = await c.leader();
      const downId = [1, 2, 3].find((id) => id !== leader.id)!;
      await c.stop(downId);
      const before = leader.stats.read();
      // Writes go on with two nodes while the leader's dials to the third fail again and again.
      await c.write(200, 4, 'd');
      await waitFor('several failed dials', () => leader.stats.read().connectFailures - before.connectFailures >= 5);
      // A send to the down peer fails at once, marked as never sent: the Raft actor may resend a
      // forwarded write elsewhere without risking a duplicate.
      const network = leader.system.ref<NetworkMsg>(`n${leader.id}/network`);
      const rpc = encodeClientRequest({ type: 'forwardRead', from: leader.id as NodeId });
      const err = await network.ask({ type: 'send', target: downId as NodeId, rpc, timeoutMs: 5_000 }, 6_000).then(() => null, (e: Error) => e);
      expect(err, 'a send to a down peer').to.be.instanceOf(UnreachableError);
      expect((err as UnreachableError).notSent, (err as Error).message).to.equal(true);
      await c.write(50, 4, 'd');
      await c.start(downId);
      const last = await c.write(20, 2, 'e');
      await c.allApplied(last);
      expect(new Set((await c.digests()).map((d) => JSON.stringify(d))).size).to.equal(1);

      const about = (msg: string): number => leader.lines.filter((l) => l.peer === downId && String(l.msg).startsWith(msg)).length;
      expect(about('peer unreachable'), 'the first failure is logged once').to.equal(1);
      expect(about('peer reachable again'), 'the recovery is logged once').to.equal(1);
      const recovered = leader.lines.find((l) => l.peer === downId && l.msg === 'peer reachable again')!;
      expect(recovered.failedDials as number).to.be.at.least(5);
      const warnings = leader.lines.filter((l) => (l.level as number) >= 40);
      expect(warnings.length, `warnings: ${JSON.stringify(warnings.slice(0, 5))}`).to.be.at.most(3);
    });
  });
});

/**
 * Dials `addr` over TLS with the given certificate and says HELLO as `claim` to node 1; resolves
 * once the node answered or closed: whether it was welcomed, and the reason of a REFUSE.
 */
async function probeDial(addr: TcpAddress, t: TcpTlsOptions, claim: number, closeWhenWelcomed = false): Promise<{ welcomed: boolean; refusal: string | null }> {
  const decoder = new FrameDecoder(1 << 16);
  const out = { welcomed: false, refusal: null as string | null };
  await new Promise<void>((resolve) => {
    const s = tls.connect({ host: addr.host, port: addr.port, key: t.key as Buffer, cert: t.cert as Buffer, ca: t.ca as Buffer, checkServerIdentity: () => undefined });
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('secureConnect', () => s.write(hello(claim, 1)));
    s.on('data', (b: Buffer) => {
      for (const f of decoder.push(b)) {
        if (f.kind === FRAME.welcome) out.welcomed = true;
        if (f.kind === FRAME.refuse) out.refusal = decodeRefuse(f.body).reason;
      }
      if (out.welcomed && closeWhenWelcomed) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => { clearTimeout(timer); resolve(); });
  });
  return out;
}
