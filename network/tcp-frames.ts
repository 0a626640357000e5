/**
 * The TCP transport's wire format (network/tcp-network.ts). Everything on a connection is a frame:
 *
 *     u32 length (big-endian, counts the kind byte and the body) | u8 kind | body
 *
 * | kind | name    | body                                                                      |
 * |------|---------|---------------------------------------------------------------------------|
 * | 1    | HELLO   | "ARFT", u8 version, u32 from, u32 to, u8 n, cluster id (n bytes, ASCII)    |
 * | 2    | WELCOME | u32 from, u8 n, cluster id                                                |
 * | 3    | REFUSE  | u8 reason, UTF-8 message (the sender closes right after)                  |
 * | 4    | REQUEST | u32 request id, u32 timeout ms, the encoded RPC (actors/raft/codec.ts)    |
 * | 5    | OK      | u32 request id, the encoded response                                      |
 * | 6    | ERROR   | u32 request id, UTF-8 JSON {name, code, message, props}                   |
 *
 * The dialer sends HELLO first; the acceptor answers WELCOME or REFUSE. Nothing else is accepted
 * before the handshake, and HELLO/WELCOME are refused after it. RPC bytes are carried as they are:
 * log entries are encoded once, by the codec, and never re-encoded here.
 *
 * `FrameDecoder` turns a byte stream into frames and throws `FrameError` for anything malformed,
 * before buffering a body whose announced length is over the limit.
 */

export const FRAME = { hello: 1, welcome: 2, refuse: 3, request: 4, ok: 5, error: 6 } as const;
export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

export const PROTOCOL_VERSION = 1;
const MAGIC = [0x41, 0x52, 0x46, 0x54]; // "ARFT"
/** The length prefix and the kind byte. */
export const FRAME_HEADER_BYTES = 5;
/** Cluster ids: 1..64 characters of [A-Za-z0-9._-]. */
export const CLUSTER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** The most bytes of a REFUSE or ERROR text kept (a peer's text is never trusted to be short). */
const MAX_TEXT_BYTES = 4096;

/** Why a connection was refused at the handshake (REFUSE's reason byte). */
export const REFUSAL = { cluster: 1, node: 2, version: 3, identity: 4, duplicate: 5 } as const;
export type RefusalReason = keyof typeof REFUSAL;

/** A byte stream that is not a valid frame sequence; the connection that sent it is closed. */
export class FrameError extends Error {
  readonly code = 'BadFrame';
  constructor(readonly reason: 'oversized' | 'malformed', message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export interface Frame { readonly kind: number; readonly body: Uint8Array }

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

function header(kind: FrameKind, bodyBytes: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32BE(bodyBytes + 1, 0);
  h.writeUInt8(kind, 4);
  return h;
}

/** A frame as one buffer (small frames: handshakes, refusals, errors). */
export function encodeFrame(kind: FrameKind, body: Uint8Array): Buffer {
  return Buffer.concat([header(kind, body.length), body]);
}

/** A frame whose body is a small prefix and a large payload, as the buffers to write (no copy of the payload). */
export function framePieces(kind: FrameKind, prefix: Buffer, payload: Uint8Array): [Buffer, Uint8Array] {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + prefix.length);
  head.writeUInt32BE(1 + prefix.length + payload.length, 0);
  head.writeUInt8(kind, 4);
  prefix.copy(head, FRAME_HEADER_BYTES);
  return [head, payload];
}

export interface Hello { readonly version: number; readonly from: number; readonly to: number; readonly clusterId: string }
export interface Welcome { readonly from: number; readonly clusterId: string }

function clusterIdBytes(clusterId: string): Buffer {
  if (!CLUSTER_ID_PATTERN.test(clusterId)) throw new RangeError(`cluster id must match ${CLUSTER_ID_PATTERN}, got ${JSON.stringify(clusterId)}`);
  return Buffer.from(clusterId, 'ascii');
}

export function encodeHello(h: Hello): Buffer {
  const id = clusterIdBytes(h.clusterId);
  const b = Buffer.allocUnsafe(4 + 1 + 4 + 4 + 1 + id.length);
  b.set(MAGIC, 0);
  b.writeUInt8(h.version, 4);
  b.writeUInt32BE(h.from, 5);
  b.writeUInt32BE(h.to, 9);
  b.writeUInt8(id.length, 13);
  id.copy(b, 14);
  return encodeFrame(FRAME.hello, b);
}

function readClusterId(body: Buffer, at: number, what: string): string {
  if (body.length < at + 1) throw new FrameError('malformed', `${what} too short for its cluster id`);
  const n = body.readUInt8(at);
  if (body.length !== at + 1 + n) throw new FrameError('malformed', `${what} cluster id length ${n} does not match the frame`);
  const id = body.toString('latin1', at + 1, at + 1 + n);
  if (!CLUSTER_ID_PATTERN.test(id)) throw new FrameError('malformed', `${what} carries an invalid cluster id`);
  return id;
}

export function decodeHello(body: Uint8Array): Hello {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (b.length < 14 || MAGIC.some((m, i) => b[i] !== m)) throw new FrameError('malformed', 'HELLO without the ARFT magic');
  return { version: b.readUInt8(4), from: b.readUInt32BE(5), to: b.readUInt32BE(9), clusterId: readClusterId(b, 13, 'HELLO') };
}

export function encodeWelcome(w: Welcome): Buffer {
  const id = clusterIdBytes(w.clusterId);
  const b = Buffer.allocUnsafe(4 + 1 + id.length);
  b.writeUInt32BE(w.from, 0);
  b.writeUInt8(id.length, 4);
  id.copy(b, 5);
  return encodeFrame(FRAME.welcome, b);
}

export function decodeWelcome(body: Uint8Array): Welcome {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (b.length < 5) throw new FrameError('malformed', 'WELCOME too short');
  return { from: b.readUInt32BE(0), clusterId: readClusterId(b, 4, 'WELCOME') };
}

export function encodeRefuse(reason: RefusalReason, message: string): Buffer {
  const text = utf8.encode(message).subarray(0, MAX_TEXT_BYTES);
  const b = Buffer.allocUnsafe(1 + text.length);
  b.writeUInt8(REFUSAL[reason], 0);
  b.set(text, 1);
  return encodeFrame(FRAME.refuse, b);
}

export function decodeRefuse(body: Uint8Array): { reason: RefusalReason | 'unknown'; message: string } {
  if (body.length < 1) throw new FrameError('malformed', 'REFUSE without a reason');
  const code = body[0];
  const reason = (Object.keys(REFUSAL) as RefusalReason[]).find((k) => REFUSAL[k] === code) ?? 'unknown';
  return { reason, message: Buffer.from(body.buffer, body.byteOffset + 1, Math.min(body.length - 1, MAX_TEXT_BYTES)).toString('utf8') };
}

/** The u32 request id (and, for REQUEST, the u32 timeout) before a REQUEST, OK or ERROR payload. */
export function requestPrefix(reqId: number, timeoutMs?: number): Buffer {
  const b = Buffer.allocUnsafe(timeoutMs === undefined ? 4 : 8);
  b.writeUInt32BE(reqId, 0);
  if (timeoutMs !== undefined) b.writeUInt32BE(timeoutMs, 4);
  return b;
}

export interface RequestFrame { readonly reqId: number; readonly timeoutMs: number; readonly rpc: Uint8Array }
export interface ReplyFrame { readonly reqId: number; readonly payload: Uint8Array }

export function decodeRequest(body: Uint8Array): RequestFrame {
  if (body.length < 9) throw new FrameError('malformed', `REQUEST of ${body.length} bytes is too short`);
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { reqId: v.getUint32(0), timeoutMs: v.getUint32(4), rpc: body.subarray(8) };
}

export function decodeReply(body: Uint8Array, what: string): ReplyFrame {
  if (body.length < 4) throw new FrameError('malformed', `${what} of ${body.length} bytes is too short`);
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { reqId: v.getUint32(0), payload: body.subarray(4) };
}

/** An error answer's body: what `reviveError` needs, as JSON, without the remote stack. */
export function encodeErrorPayload(err: { name: string; code?: string; message: string; props: Record<string, unknown> }): Buffer {
  let json: string;
  try {
    json = JSON.stringify({ name: err.name, code: err.code, message: err.message, props: err.props });
  } catch {
    json = JSON.stringify({ name: err.name, code: err.code, message: err.message, props: {} });
  }
  return Buffer.from(json.length > 16_384 ? JSON.stringify({ name: err.name, code: err.code, message: err.message.slice(0, 4096), props: {} }) : json, 'utf8');
}

export function decodeErrorPayload(payload: Uint8Array): { name: string; code?: string; message: string; props: Record<string, unknown> } {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8.decode(payload));
  } catch {
    throw new FrameError('malformed', 'ERROR frame whose body is not UTF-8 JSON');
  }
  const o = v as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.message !== 'string'
    || (o.code !== undefined && typeof o.code !== 'string') || o.props === null || typeof o.props !== 'object' || Array.isArray(o.props)) {
    throw new FrameError('malformed', 'ERROR frame without name, message and props');
  }
  return { name: o.name, code: o.code as string | undefined, message: o.message, props: o.props as Record<string, unknown> };
}

/**
 * Splits a byte stream into frames. `push` returns the frames completed by a chunk and throws
 * FrameError on a zero length or a length over `maxFrameBytes` as soon as the prefix is read, so a
 * huge length prefix never allocates. Bytes of a frame that spans chunks are copied once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // the current frame's length once its prefix is read

  /** Largest frame accepted; may be raised (e.g. once a connection's handshake is done). */
  constructor(public limit: number) {}

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number { return this.buffered; }

  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    if (chunk.length > 0) { this.chunks.push(chunk); this.buffered += chunk.length; }
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) return out;
        const len = this.peekLength();
        if (len === 0) throw new FrameError('malformed', 'frame of length 0 (no kind byte)');
        if (len > this.limit) throw new FrameError('oversized', `frame of ${len} bytes is over the limit of ${this.limit}`);
        this.need = len;
        this.take(4);
      }
      if (this.buffered < this.need) return out;
      const bytes = this.take(this.need);
      this.need = -1;
      out.push({ kind: bytes[0], body: bytes.subarray(1) });
    }
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32BE(0);
    return this.take(4, true).readUInt32BE(0);
  }

  /** The next n buffered bytes (n <= buffered), consumed unless `peek`. */
  private take(n: number, peek = false): Buffer {
    const first = this.chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (!peek) {
        if (first.length === n) this.chunks.shift(); else this.chunks[0] = first.subarray(n);
        this.buffered -= n;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const c = this.chunks[i];
      const k = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, k);
      filled += k;
      if (!peek) {
        if (k === c.length) { this.chunks.shift(); continue; }
        this.chunks[i] = c.subarray(k);
      } else {
        i++;
      }
    }
    if (!peek) this.buffered -= n;
    return out;
  }
}
