/**
 * TcpNetwork: the RaftNetwork actor for nodes in separate processes or on separate machines.
 *
 * - One connection per peer pair, used both ways. Either side dials when it has something to send
 *   and no connection; when both dial at once, both keep the connection dialed by the lower id.
 * - Length-prefixed binary frames (network/tcp-frames.ts) carrying the codec's bytes as they are;
 *   many requests in flight per connection, matched by id; TCP_NODELAY.
 * - A handshake that carries the cluster id and both node ids: connections from another cluster,
 *   from a node outside the address book, or addressed to another node are refused and counted.
 * - Optional mutual TLS (node:tls): both sides present a certificate signed by the cluster's CA,
 *   and by default its common name must be `node-<id>` of the id the peer claims.
 * - Reconnects with exponential backoff and jitter. While a peer is down its sends fail at once
 *   with UnreachableError; the first failure and the recovery are logged, the rest only counted.
 * - A malformed, oversized or stalled frame closes that connection with a logged reason; nothing
 *   a peer sends can crash or stall the node.
 *
 * @example
 * const stats = TcpNetworkStats.create();
 * const node = await RaftNode.start({ system, id: 1, stateMachine, storage,
 *   network: tcpNetworkSpec({ self: 1, clusterId: 'prod-kv', listen: parseAddress('10.0.0.1:7001'),
 *     peers: parsePeers('1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001'), stats: stats.buffer }) });
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Actor, ActorContext, ActorSpec } from '../runtime/actor';
import { DeferredReply } from '../runtime/actor';
import { AskTimeoutError, reviveError, serializeError } from '../runtime/errors';
import type { Logger } from '../runtime/logging';
import { rpcKindOf, type RpcKind } from '../actors/raft/codec';
import { raftActorId, UnreachableError, type InboundRpc, type NetworkMsg } from './network';
import {
  decodeErrorPayload, decodeHello, decodeRefuse, decodeReply, decodeRequest, decodeWelcome,
  encodeErrorPayload, encodeHello, encodeRefuse, encodeWelcome, FRAME, FrameDecoder, FrameError, framePieces,
  PROTOCOL_VERSION, requestPrefix, type Frame, type RefusalReason,
} from './tcp-frames';
import { TcpNetworkStats } from './tcp-stats';
import { validateTcpNetworkOptions, validPeers, type Resolved, type TcpAddress, type TcpNetworkOptions } from './tcp-options';

export { TcpNetworkStats, LATENCY_BOUNDS_MS, type TcpNetworkStatsSnapshot } from './tcp-stats';
export { parseAddress, parsePeers, validateTcpNetworkOptions, type TcpAddress, type TcpTlsOptions, type TcpNetworkOptions } from './tcp-options';

/** What the actor accepts besides the RaftNetwork contract's `send`. */
export type TcpNetworkMsg =
  | NetworkMsg
  /** Replaces the address book (e.g. before adding a node); connections to removed peers close. Answers true. */
  | { readonly type: 'peers'; readonly peers: Readonly<Record<number, TcpAddress>> };

/** Largest frame before the handshake: HELLO is under 100 bytes, REFUSE under 4.2 KiB. */
const HANDSHAKE_FRAME_BYTES = 8 * 1024;
/** At most one warning per this many ms about refused or bad inbound connections; the rest are counted. */
const INBOUND_WARN_INTERVAL_MS = 10_000;
/** Longest timeout a peer's request may ask for: the Raft actor's asks are bounded by it. */
const MAX_REQUEST_TIMEOUT_MS = 10 * 60_000;

/** The spec of a node's TCP network actor, for any placement. Validates the options here, in the caller. */
export function tcpNetworkSpec(options: TcpNetworkOptions): ActorSpec<TcpNetworkOptions> {
  const r = validateTcpNetworkOptions(options);
  return { module: __filename, export: 'createTcpNetwork', args: { ...options, stats: r.stats } };
}

export function createTcpNetwork(options: TcpNetworkOptions): Actor<TcpNetworkMsg> {
  return new TcpNetworkActor(validateTcpNetworkOptions(options));
}

// ---------------------------------------------------------------------------------------------

interface Pending {
  readonly reply: DeferredReply<Uint8Array>;
  readonly kind: RpcKind;
  readonly target: number;
  readonly timeoutMs: number;
  readonly rpc: Uint8Array;
  timer: NodeJS.Timeout | null;
  startedAt: number;
  /** Where it was written, once it was. */
  conn: Connection | null;
  reqId: number;
}

interface DownEpisode { readonly since: number; readonly firstReason: string; failedDials: number; rejectedSends: number }

interface Peer {
  readonly id: number;
  addr: TcpAddress;
  /** The connection in use, once its handshake is done. */
  conn: Connection | null;
  /** Our dial in progress, if any. */
  dialing: Connection | null;
  /** Sends waiting for `dialing` to finish. */
  waiting: Pending[];
  failures: number;
  nextDialAt: number;
  down: DownEpisode | null;
}

type ConnState = 'handshake' | 'ready' | 'closed';

const now = (): number => performance.now();
const bufferOf = (v: string | Uint8Array): string | Buffer => (typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));

/** One socket, either direction, from its handshake to its close. */
class Connection {
  state: ConnState = 'handshake';
  /** Known after the handshake (acceptor) or from the start (dialer). */
  peerId: number;
  readonly pending = new Map<number, Pending>();
  private nextReqId = 1;
  private readonly decoder: FrameDecoder;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  readonly openedAt = now();
  /** When its handshake completed (0 before). */
  readyAt = 0;
  /** Frames of this turn are being gathered for one write (see TcpNetworkActor.write). */
  corked = false;

  constructor(
    private readonly owner: TcpNetworkActor,
    readonly socket: net.Socket,
    /** Which node dialed: this one for outbound, the peer (from its HELLO) for inbound, 0 until then. */
    public dialer: number,
    peerId: number,
  ) {
    this.peerId = peerId;
    this.outbound = dialer === owner.opts.self;
    // Until the handshake is done only HELLO / WELCOME / REFUSE may come: a stranger gets a few KiB, not maxFrameBytes.
    this.decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.handshakeTimer = setTimeout(() => this.close(`no handshake within ${owner.opts.handshakeTimeoutMs} ms`, 'refusedHandshake'), owner.opts.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: Error) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('closed by the peer'));
  }

  /** This node dialed it (fixed at construction: `dialer` of an inbound one changes at its HELLO). */
  readonly outbound: boolean;

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const stats = this.owner.stats;
    stats.add('bytesIn', chunk.length);
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      const fe = err as FrameError;
      this.close(fe.message, fe.reason === 'oversized' ? 'oversizedFrames' : 'badFrames');
      return;
    }
    for (const f of frames) {
      stats.add('framesIn');
      try {
        this.onFrame(f);
      } catch (err) {
        // Whatever a frame held, it closes only its own connection: never the node.
        this.close(err instanceof FrameError ? err.message : `frame refused: ${(err as Error).message}`, 'badFrames');
        return;
      }
      if ((this.state as ConnState) === 'closed') return;
    }
    this.armStallTimer();
  }

  /** A frame left half way: close if no byte of it arrives for stallTimeoutMs. */
  private armStallTimer(): void {
    if (this.stallTimer) { clearTimeout(this.stallTimer); this.stallTimer = null; }
    if (this.decoder.pendingBytes === 0 || this.state === 'closed') return;
    this.stallTimer = setTimeout(() => this.close(`a frame stalled half way (${this.decoder.pendingBytes} bytes held for ${this.owner.opts.stallTimeoutMs} ms)`, 'badFrames'), this.owner.opts.stallTimeoutMs);
  }

  private onFrame(f: Frame): void {
    if (this.state === 'handshake') {
      if (this.outbound) this.onWelcomeOrRefuse(f); else this.onHello(f);
      return;
    }
    switch (f.kind) {
      case FRAME.request: this.owner.onRequest(this, decodeRequest(f.body)); return;
      case FRAME.ok: {
        const r = decodeReply(f.body, 'OK');
        const p = this.take(r.reqId);
        if (p) this.owner.settle(p, Uint8Array.prototype.slice.call(r.payload), null);
        return;
      }
      case FRAME.error: {
        const r = decodeReply(f.body, 'ERROR');
        const e = decodeErrorPayload(r.payload);
        const p = this.take(r.reqId);
        if (p) this.owner.settle(p, null, reviveError({ ...e }));
        return;
      }
      default:
        throw new FrameError('malformed', `frame kind ${f.kind} after the handshake`);
    }
  }

  private onHello(f: Frame): void {
    if (f.kind !== FRAME.hello) throw new FrameError('malformed', `first frame of kind ${f.kind}, expected HELLO`);
    const h = decodeHello(f.body);
    const o = this.owner.opts;
    if (h.version !== PROTOCOL_VERSION) { this.refuse('version', `protocol version ${h.version} is not ${PROTOCOL_VERSION}`, 'refusedHandshake'); return; }
    if (h.clusterId !== o.clusterId) { this.refuse('cluster', `cluster ${JSON.stringify(h.clusterId)} is not ${JSON.stringify(o.clusterId)}`, 'refusedCluster'); return; }
    if (h.to !== o.self) { this.refuse('node', `this is node ${o.self}, not ${h.to}`, 'refusedNode'); return; }
    if (h.from === o.self || !o.peers.has(h.from)) { this.refuse('node', `node ${h.from} is not in node ${o.self}'s address book`, 'refusedNode'); return; }
    const identity = this.identityProblem(h.from);
    if (identity) { this.refuse('identity', identity, 'refusedHandshake'); return; }
    this.peerId = h.from;
    this.dialer = h.from;
    this.owner.write(this, [encodeWelcome({ from: o.self, clusterId: o.clusterId })]);
    this.ready();
  }

  private onWelcomeOrRefuse(f: Frame): void {
    if (f.kind === FRAME.refuse) {
      const r = decodeRefuse(f.body);
      this.close(`refused by node ${this.peerId} (${r.reason}): ${r.message}`);
      return;
    }
    if (f.kind !== FRAME.welcome) throw new FrameError('malformed', `answer to HELLO of kind ${f.kind}, expected WELCOME`);
    const w = decodeWelcome(f.body);
    if (w.clusterId !== this.owner.opts.clusterId) { this.close(`node at ${this.owner.addrOf(this.peerId)} is in cluster ${JSON.stringify(w.clusterId)}`, 'refusedCluster'); return; }
    if (w.from !== this.peerId) { this.close(`dialed node ${this.peerId} but node ${w.from} answered`, 'refusedNode'); return; }
    this.ready();
  }

  /** With TLS and checkNodeIdentity: the certificate's CN must be node-<claimed id>. */
  identityProblem(claimed: number): string | null {
    const t = this.owner.opts.tls;
    if (!t || !t.checkNodeIdentity) return null;
    const cert = (this.socket as tls.TLSSocket).getPeerCertificate?.();
    const cn = cert && typeof cert === 'object' ? cert.subject?.CN : undefined;
    return cn === `node-${claimed}` ? null : `certificate common name ${JSON.stringify(cn ?? null)} is not "node-${claimed}"`;
  }

  private refuse(reason: RefusalReason, message: string, stat: 'refusedCluster' | 'refusedNode' | 'refusedHandshake'): void {
    this.owner.write(this, [encodeRefuse(reason, message)]);
    this.socket.end();
    this.close(`refused: ${message}`, stat);
  }

  private ready(): void {
    if (this.handshakeTimer) { clearTimeout(this.handshakeTimer); this.handshakeTimer = null; }
    this.decoder.limit = this.owner.opts.maxFrameBytes;
    this.readyAt = now();
    this.state = 'ready';
    this.owner.onReady(this);
  }

  /** Sends one request on this (ready) connection. */
  request(p: Pending): void {
    const reqId = this.nextReqId;
    this.nextReqId = this.nextReqId === 0xffff_ffff ? 1 : this.nextReqId + 1;
    this.pending.set(reqId, p);
    p.conn = this;
    p.reqId = reqId;
    p.startedAt = now();
    this.owner.write(this, framePieces(FRAME.request, requestPrefix(reqId, p.timeoutMs), p.rpc));
  }

  take(reqId: number): Pending | undefined {
    const p = this.pending.get(reqId);
    if (p) this.pending.delete(reqId);
    return p;
  }

  /** Closes once, whatever the cause; the owner rejects what was in flight. */
  close(reason: string, stat?: 'refusedCluster' | 'refusedNode' | 'refusedHandshake' | 'badFrames' | 'oversizedFrames'): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    if (stat) this.owner.stats.add(stat);
    // Frames of this turn (a WELCOME before a duplicate is dropped) go out before the socket does.
    if (this.corked) { this.corked = false; this.socket.uncork(); }
    // A refusal's frame is flushed by end(); anything else goes at once.
    if (this.socket.writableEnded) setTimeout(() => this.socket.destroy(), 1000).unref(); else this.socket.destroy();
    this.owner.onClosed(this, reason, wasReady, stat !== undefined);
  }
}

class TcpNetworkActor implements Actor<TcpNetworkMsg> {
  readonly stats: TcpNetworkStats;
  private ctx!: ActorContext;
  private log!: Logger;
  private server: net.Server | null = null;
  private readonly peers = new Map<number, Peer>();
  private readonly conns = new Set<Connection>();
  private stopping = false;
  private lastInboundWarnAt = -Infinity;
  private inboundWarningsSuppressed = 0;
  /** Sockets open on the listener, whatever their state (counted below TLS). */
  private openInbound = 0;

  constructor(readonly opts: Resolved) {
    this.stats = TcpNetworkStats.over(opts.stats);
    for (const [id, addr] of opts.peers) if (id !== opts.self) this.peers.set(id, this.newPeer(id, addr));
  }

  private newPeer(id: number, addr: TcpAddress): Peer {
    return { id, addr, conn: null, dialing: null, waiting: [], failures: 0, nextDialAt: 0, down: null };
  }

  addrOf(id: number): string {
    const a = this.peers.get(id)?.addr;
    return a ? `${a.host}:${a.port}` : '?';
  }

  async started(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.logger.child({ net: 'tcp', node: this.opts.self });
    // A socket callback runs outside the actor's mailbox: whatever it throws would escape
    // supervision and end the process, so a failure here closes only that socket.
    const onSocket = (socket: net.Socket): void => {
      try {
        this.accept(socket);
      } catch (err) {
        this.log.error({ err }, 'accepting a connection failed; closed it');
        socket.destroy();
      }
    };
    const t = this.opts.tls;
    const server = t
      ? tls.createServer({ key: bufferOf(t.key), cert: bufferOf(t.cert), ca: bufferOf(t.ca), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', handshakeTimeout: this.opts.handshakeTimeoutMs }, onSocket)
      : net.createServer();
    // Below TLS: every socket the listener holds counts, so clients that never finish a TLS
    // handshake cannot pile up. Room for two connections per peer (a crossed dial) and the
    // handshakes allowed.
    server.on('connection', (raw: net.Socket) => {
      if (this.openInbound >= this.opts.maxPendingHandshakes + 2 * this.peers.size) {
        this.stats.add('refusedHandshake');
        raw.destroy();
        return;
      }
      this.openInbound++;
      raw.once('close', () => { this.openInbound--; });
      if (!t) onSocket(raw); // after the cap; with TLS, onSocket runs at 'secureConnection'
    });
    server.on('tlsClientError', (err: Error) => {
      this.stats.add('refusedHandshake');
      this.log.debug({ err: err.message }, 'TLS handshake refused');
    });
    server.on('error', (err: Error) => this.log.error({ err }, 'listener error'));
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => reject(new Error(`TcpNetwork of node ${this.opts.self} cannot listen on ${this.opts.listen.host}:${this.opts.listen.port}: ${err.message}`));
      server.once('error', fail);
      server.listen(this.opts.listen.port, this.opts.listen.host, () => { server.off('error', fail); resolve(); });
    });
    this.server = server;
    this.log.info({ listen: server.address(), peers: [...this.peers.keys()], tls: t !== null }, 'listening for peers');
  }

  async stopped(): Promise<void> {
    this.stopping = true;
    const server = this.server;
    this.server = null;
    for (const c of [...this.conns]) c.close('this node is stopping');
    for (const p of this.peers.values()) this.rejectWaiting(p, 'this node is stopping');
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  receive(msg: TcpNetworkMsg): unknown {
    if (msg === null || typeof msg !== 'object') throw new TypeError('TcpNetwork: message must be an object');
    switch (msg.type) {
      case 'send': return this.send(msg.target, msg.rpc, msg.timeoutMs);
      case 'peers': {
        // A bad address book is the caller's mistake: refuse it, keep the connections.
        const reply = new DeferredReply<boolean>();
        try { reply.resolve(this.setPeers(msg.peers)); } catch (err) { reply.reject(err as Error); }
        return reply;
      }
      default: throw new TypeError(`TcpNetwork: unknown message ${String((msg as { type?: unknown }).type)}`);
    }
  }

  private setPeers(raw: Readonly<Record<number, TcpAddress>>): boolean {
    const next = validPeers(raw);
    for (const [id, p] of this.peers) {
      const addr = next.get(id);
      if (!addr || addr.host !== p.addr.host || addr.port !== p.addr.port) {
        this.peers.delete(id);
        p.conn?.close('removed from the address book');
        p.dialing?.close('removed from the address book');
        this.rejectWaiting(p, 'removed from the address book');
      }
    }
    for (const [id, addr] of next) if (id !== this.opts.self && !this.peers.has(id)) this.peers.set(id, this.newPeer(id, addr));
    this.opts.peers.clear();
    for (const [id, addr] of next) this.opts.peers.set(id, addr);
    this.log.info({ peers: [...next.keys()] }, 'address book replaced');
    return true;
  }

  // --- outbound -------------------------------------------------------------------------------

  private send(target: number, rpc: Uint8Array, timeoutMs: number): DeferredReply<Uint8Array> {
    const reply = new DeferredReply<Uint8Array>();
    if (!(rpc instanceof Uint8Array)) { reply.reject(new TypeError('TcpNetwork send: rpc must be a Uint8Array')); return reply; }
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) { reply.reject(new RangeError(`TcpNetwork send: timeoutMs must be > 0, got ${timeoutMs}`)); return reply; }
    const kind = rpcKindOf(rpc);
    this.stats.sent(kind);
    const peer = this.peers.get(target);
    if (!peer || this.stopping) {
      this.stats.failed(kind);
      reply.reject(new UnreachableError(target, this.stopping ? 'this node is stopping' : `node ${target} is not in node ${this.opts.self}'s address book`, { notSent: true }));
      return reply;
    }
    if (rpc.length + 16 > this.opts.maxFrameBytes) {
      this.stats.failed(kind);
      reply.reject(new RangeError(`TcpNetwork send: an RPC of ${rpc.length} bytes is over maxFrameBytes ${this.opts.maxFrameBytes}`));
      return reply;
    }
    const p: Pending = { reply, kind, target, timeoutMs: Math.min(Math.ceil(timeoutMs), MAX_REQUEST_TIMEOUT_MS), rpc, timer: null, startedAt: now(), conn: null, reqId: 0 };
    p.timer = setTimeout(() => this.timedOut(p), p.timeoutMs);
    if (peer.conn) { peer.conn.request(p); return reply; }
    if (!peer.dialing && now() < peer.nextDialAt) {
      this.stats.add('rejectedSends');
      if (peer.down) peer.down.rejectedSends++;
      this.fail(p, new UnreachableError(target, `down (${peer.down?.firstReason ?? 'connection failed'}); next dial in ${Math.ceil(peer.nextDialAt - now())} ms`, { notSent: true }));
      return reply;
    }
    peer.waiting.push(p);
    if (!peer.dialing) this.dial(peer);
    return reply;
  }

  private timedOut(p: Pending): void {
    p.timer = null;
    if (p.conn) {
      p.conn.pending.delete(p.reqId);
    } else {
      const peer = this.peers.get(p.target);
      const i = peer ? peer.waiting.indexOf(p) : -1;
      if (i >= 0) peer!.waiting.splice(i, 1);
    }
    this.fail(p, new AskTimeoutError(`${raftActorId(p.target)} via tcp`, p.timeoutMs));
  }

  private fail(p: Pending, err: Error): void {
    if (p.timer) { clearTimeout(p.timer); p.timer = null; }
    if (p.reply.isSettled) return;
    this.stats.failed(p.kind);
    p.reply.reject(err);
  }

  settle(p: Pending, payload: Uint8Array | null, err: Error | null): void {
    if (p.timer) { clearTimeout(p.timer); p.timer = null; }
    if (p.reply.isSettled) return;
    if (err) { this.stats.failed(p.kind); p.reply.reject(err); return; }
    this.stats.answered(p.kind, now() - p.startedAt);
    p.reply.resolve(payload!);
  }

  private dial(peer: Peer): void {
    const { host, port } = peer.addr;
    const t = this.opts.tls;
    const socket = t
      ? tls.connect({
        host, port, key: bufferOf(t.key), cert: bufferOf(t.cert), ca: bufferOf(t.ca), minVersion: 'TLSv1.2',
        // Identity is the node id in the certificate's CN (checked below), not the host name.
        checkServerIdentity: () => undefined,
      })
      : net.connect({ host, port });
    const conn = new Connection(this, socket, this.opts.self, peer.id);
    this.conns.add(conn);
    peer.dialing = conn;
    const connectTimer = setTimeout(() => conn.close(`no connection within ${this.opts.connectTimeoutMs} ms`), this.opts.connectTimeoutMs);
    socket.once(t ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      if (conn.state === 'closed') return;
      try {
        const problem = conn.identityProblem(peer.id);
        if (problem) { conn.close(`node ${peer.id} at ${host}:${port}: ${problem}`, 'refusedHandshake'); return; }
        this.write(conn, [encodeHello({ version: PROTOCOL_VERSION, from: this.opts.self, to: peer.id, clusterId: this.opts.clusterId })]);
      } catch (err) {
        conn.close(`starting the handshake failed: ${(err as Error).message}`);
      }
    });
    socket.once('close', () => clearTimeout(connectTimer));
  }

  write(conn: Connection, pieces: Uint8Array[]): void {
    const s = conn.socket;
    if (conn.state === 'closed' || s.destroyed || s.writableEnded) return;
    let bytes = 0;
    // Every frame written in this turn leaves in one writev: corked here, uncorked once the turn's
    // synchronous work is done (before any I/O, so nothing waits longer).
    if (!conn.corked) {
      conn.corked = true;
      s.cork();
      process.nextTick(() => { if (conn.corked) { conn.corked = false; s.uncork(); } });
    }
    for (const b of pieces) { s.write(b); bytes += b.length; }
    this.stats.add('framesOut');
    this.stats.add('bytesOut', bytes);
    // A peer that stops reading must not make this process buffer without bound.
    if (s.writableLength > 2 * this.opts.maxFrameBytes) conn.close(`peer is not reading (${s.writableLength} bytes queued)`);
  }

  // --- inbound --------------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    if (this.stopping) { socket.destroy(); return; }
    let handshaking = 0;
    for (const c of this.conns) if (c.state === 'handshake' && !c.outbound) handshaking++;
    if (handshaking >= this.opts.maxPendingHandshakes) {
      this.stats.add('refusedHandshake');
      socket.destroy();
      return;
    }
    this.conns.add(new Connection(this, socket, 0, 0));
  }

  onRequest(conn: Connection, r: { reqId: number; timeoutMs: number; rpc: Uint8Array }): void {
    this.stats.received(rpcKindOf(r.rpc));
    const timeoutMs = Math.min(Math.max(r.timeoutMs, 1), MAX_REQUEST_TIMEOUT_MS);
    // A copy, so the Raft actor never holds a view into a socket chunk that carried other frames.
    const inbound: InboundRpc = { type: 'rpc', bytes: Uint8Array.prototype.slice.call(r.rpc) };
    this.ctx.ref<InboundRpc>(raftActorId(this.opts.self)).ask<Uint8Array>(inbound, timeoutMs).then(
      (bytes) => this.write(conn, framePieces(FRAME.ok, requestPrefix(r.reqId), bytes)),
      (err: unknown) => {
        const e = serializeError(err);
        this.write(conn, framePieces(FRAME.error, requestPrefix(r.reqId), encodeErrorPayload({ name: e.name, code: e.code, message: e.message, props: e.props })));
      },
    );
  }

  // --- connection lifecycle -------------------------------------------------------------------

  onReady(conn: Connection): void {
    const peer = this.peers.get(conn.peerId);
    if (!peer) { conn.close(`node ${conn.peerId} left the address book`); return; }
    if (peer.dialing === conn) peer.dialing = null;
    const existing = peer.conn;
    let keep = conn;
    if (existing && existing !== conn && existing.state === 'ready') {
      // Two dials that crossed (the other became ready within a handshake timeout of this one):
      // both sides keep the one dialed by the lower id. Otherwise the peer lost its side of the old
      // connection (a restart, a reboot, a partition that hid the FIN) and the new one is kept.
      const crossed = existing.dialer !== conn.dialer && now() - existing.readyAt < this.opts.handshakeTimeoutMs;
      keep = crossed ? (existing.dialer < conn.dialer ? existing : conn) : conn;
      const loser = keep === conn ? existing : conn;
      peer.conn = keep;
      loser.close('a duplicate of the connection kept for this peer pair');
    }
    peer.conn = keep;
    this.stats.add('connects');
    if (peer.down) {
      const d = peer.down;
      this.log.info({ peer: peer.id, downMs: Math.round(now() - d.since), failedDials: d.failedDials, rejectedSends: d.rejectedSends }, 'peer reachable again');
    }
    peer.down = null;
    peer.failures = 0;
    peer.nextDialAt = 0;
    const waiting = peer.waiting;
    peer.waiting = [];
    for (const p of waiting) if (!p.reply.isSettled) keep.request(p);
  }

  onClosed(conn: Connection, reason: string, wasReady: boolean, refusedOrBad: boolean): void {
    this.conns.delete(conn);
    const peer = conn.peerId ? this.peers.get(conn.peerId) : undefined;
    for (const p of conn.pending.values()) this.fail(p, new UnreachableError(p.target, `connection closed: ${reason}`));
    conn.pending.clear();
    if (!peer) {
      // An inbound connection that never said who it is (or claimed a stranger's id).
      if (refusedOrBad) this.inboundWarning({ remote: `${conn.socket.remoteAddress}:${conn.socket.remotePort}`, reason });
      return;
    }
    if (peer.conn === conn) {
      peer.conn = null;
      this.stats.add('disconnects');
      if (!this.stopping) this.log.info({ peer: peer.id, reason }, 'connection to peer closed');
    }
    if (refusedOrBad && conn.state === 'closed' && !conn.outbound) {
      this.inboundWarning({ peer: conn.peerId, remote: `${conn.socket.remoteAddress}:${conn.socket.remotePort}`, reason });
    }
    if (peer.dialing === conn) {
      peer.dialing = null;
      if (!wasReady && peer.conn?.state !== 'ready') this.dialFailed(peer, reason);
    }
  }

  /**
   * Refused and bad inbound connections: one warning per INBOUND_WARN_INTERVAL_MS with how many
   * were not logged since the last one, so a misconfigured or hostile client cannot flood the log
   * (the counters have them all).
   */
  private inboundWarning(fields: Record<string, unknown>): void {
    const t = now();
    if (t - this.lastInboundWarnAt < INBOUND_WARN_INTERVAL_MS) { this.inboundWarningsSuppressed++; return; }
    this.log.warn({ ...fields, notLoggedSinceLast: this.inboundWarningsSuppressed }, 'inbound connection closed');
    this.lastInboundWarnAt = t;
    this.inboundWarningsSuppressed = 0;
  }

  private dialFailed(peer: Peer, reason: string): void {
    this.stats.add('connectFailures');
    peer.failures++;
    const base = Math.min(this.opts.backoffMs.max, this.opts.backoffMs.initial * 2 ** Math.min(peer.failures - 1, 30));
    peer.nextDialAt = now() + base / 2 + this.ctx.random.nextFloat() * (base / 2);
    if (!peer.down) {
      peer.down = { since: now(), firstReason: reason, failedDials: 1, rejectedSends: 0 };
      if (!this.stopping) this.log.warn({ peer: peer.id, addr: `${peer.addr.host}:${peer.addr.port}`, reason }, 'peer unreachable; further failures are counted, not logged, until it is back');
    } else {
      peer.down.failedDials++;
    }
    this.rejectWaiting(peer, reason);
  }

  private rejectWaiting(peer: Peer, reason: string): void {
    const waiting = peer.waiting;
    peer.waiting = [];
    for (const p of waiting) this.fail(p, new UnreachableError(peer.id, reason, { notSent: true })); // never written to a socket
  }
}
