/**
 * Binary wire format for log entries and RPCs. Entries are encoded once into one buffer that
 * crosses threads (and, later, sockets) as bytes instead of object graphs (DESIGN.md: a batch as
 * binary moves ~6x faster than the same batch as objects). Decoding validates everything: a
 * malformed message throws MalformedMessageError and changes nothing.
 *
 * Integers are u53 written as two big-endian u32 halves, so any safe integer round-trips exactly.
 */
import { MalformedMessageError } from './core/errors';
import type {
  AppendEntriesRequest, AppendEntriesResponse, Entry, InstallSnapshotRequest, InstallSnapshotResponse,
  LogIndex, Membership, NodeId, RaftRequest, RaftResponse, Term, TimeoutNowRequest, VoteRequest, VoteResponse,
} from './core/types';

const KIND = { normal: 0, blank: 1, config: 2 } as const;
const TYPE = {
  appendEntries: 1, vote: 2, installSnapshot: 3, timeoutNow: 4,
  appendEntriesResponse: 11, voteResponse: 12, installSnapshotResponse: 13, timeoutNowResponse: 14,
  forwardWrite: 21, forwardRead: 22,
  clientOk: 31, clientError: 32,
} as const;
/** Flag bits of a vote request. */
const VOTE_PRE = 1;
const VOTE_TRANSFER = 2;
const ENTRY_HEADER_BYTES = 1 + 8 + 8 + 4;
/** Upper bound on one payload: a guard against a corrupt length field allocating gigabytes. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void { this.ensure(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u32(v: number): void { this.ensure(4); this.view.setUint32(this.pos, v); this.pos += 4; }
  u53(v: number): void {
    this.ensure(8);
    this.view.setUint32(this.pos, Math.floor(v / 0x1_0000_0000));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void { this.u32(b.length); this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  finish(): Uint8Array { return this.buf.subarray(0, this.pos); }
}

class Reader {
  private readonly view: DataView;
  pos = 0;
  constructor(private readonly buf: Uint8Array) {
    if (!(buf instanceof Uint8Array)) throw new MalformedMessageError('expected a Uint8Array');
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new MalformedMessageError(`truncated: ${what} needs ${n} bytes at offset ${this.pos}, ${this.buf.length - this.pos} left`);
  }
  u8(what: string): number { this.need(1, what); return this.view.getUint8(this.pos++); }
  u32(what: string): number { this.need(4, what); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }
  u53(what: string): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1f_ffff) throw new MalformedMessageError(`${what} exceeds 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }
  bool(what: string): boolean {
    const v = this.u8(what);
    if (v > 1) throw new MalformedMessageError(`${what} must be 0 or 1, got ${v}`);
    return v === 1;
  }
  bytes(what: string): Uint8Array {
    const n = this.u32(`${what} length`);
    if (n > MAX_PAYLOAD_BYTES) throw new MalformedMessageError(`${what} of ${n} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  remaining(): number { return this.buf.length - this.pos; }
  end(): void {
    if (this.pos !== this.buf.length) throw new MalformedMessageError(`${this.buf.length - this.pos} trailing bytes`);
  }
}

function nodeIdAt(r: Reader, what: string): NodeId {
  const v = r.u53(what);
  if (v < 1) throw new MalformedMessageError(`${what} must be >= 1`);
  return v as NodeId;
}

function idList(v: unknown, what: string): NodeId[] {
  if (!Array.isArray(v)) throw new MalformedMessageError(`${what} must be an array`);
  for (const x of v) if (!Number.isSafeInteger(x) || x < 1) throw new MalformedMessageError(`${what} holds a bad node id ${String(x)}`);
  if (new Set(v).size !== v.length) throw new MalformedMessageError(`${what} has duplicate ids`);
  return v as NodeId[];
}

const SNAPSHOT_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** A snapshot id from outside: 1 to 128 characters of [A-Za-z0-9_-] (it names files). */
export function validSnapshotId(v: unknown): string {
  if (typeof v !== 'string' || !SNAPSHOT_ID.test(v)) throw new MalformedMessageError(`snapshot id must be 1-128 characters of [A-Za-z0-9_-], got ${JSON.stringify(v)}`);
  return v;
}

function text(bytes: Uint8Array, what: string): string {
  try { return fromUtf8.decode(bytes); } catch { throw new MalformedMessageError(`${what} is not UTF-8`); }
}

/** Checks the shape of a membership that came from outside (a decoded entry, a file). */
export function validateMembership(v: unknown): Membership {
  if (v === null || typeof v !== 'object') throw new MalformedMessageError('membership must be an object');
  const m = v as Record<string, unknown>;
  const members = idList(m.members, 'members');
  if (members.length === 0) throw new MalformedMessageError('membership has no members');
  const nonVoters = idList(m.nonVoters, 'nonVoters');
  const after = m.membersAfterConsensus === null ? null : idList(m.membersAfterConsensus, 'membersAfterConsensus');
  return { members, nonVoters, membersAfterConsensus: after };
}

function writeEntry(w: Writer, e: Entry): void {
  w.u8(KIND[e.kind]);
  w.u53(e.index);
  w.u53(e.term);
  if (e.kind === 'normal') w.bytes(e.payload);
  else if (e.kind === 'config') w.bytes(utf8.encode(JSON.stringify(e.membership)));
  else w.u32(0);
}

function readEntry(r: Reader): Entry {
  const kind = r.u8('entry kind');
  const index = r.u53('entry index') as LogIndex;
  const term = r.u53('entry term') as Term;
  if (index < 1) throw new MalformedMessageError('entry index must be >= 1');
  const body = r.bytes('entry payload');
  switch (kind) {
    case KIND.normal: return { kind: 'normal', index, term, payload: body };
    case KIND.blank:
      if (body.length !== 0) throw new MalformedMessageError('blank entry with a payload');
      return { kind: 'blank', index, term };
    case KIND.config: {
      let parsed: unknown;
      try { parsed = JSON.parse(fromUtf8.decode(body)); } catch { throw new MalformedMessageError('config entry is not JSON'); }
      return { kind: 'config', index, term, membership: validateMembership(parsed) };
    }
    default: throw new MalformedMessageError(`unknown entry kind ${kind}`);
  }
}

function sizeHint(entries: readonly Entry[]): number {
  let n = 4;
  for (const e of entries) n += ENTRY_HEADER_BYTES + (e.kind === 'normal' ? e.payload.length : e.kind === 'config' ? 128 : 0);
  return n;
}

/** Encodes entries into one buffer. Decoded payloads are views into it: no per-entry copy. */
export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  const w = new Writer(sizeHint(entries));
  w.u32(entries.length);
  for (const e of entries) writeEntry(w, e);
  return w.finish();
}

function readEntries(r: Reader): Entry[] {
  const n = r.u32('entry count');
  // Refuse a count the remaining bytes cannot hold before allocating for it.
  if (n > r.remaining() / ENTRY_HEADER_BYTES) throw new MalformedMessageError(`truncated: entry count ${n} needs ${n * ENTRY_HEADER_BYTES} bytes at offset ${r.pos}, ${r.remaining()} left`);
  const out: Entry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = readEntry(r);
    if (i > 0 && e.index !== out[i - 1].index + 1) throw new MalformedMessageError(`entries not consecutive at index ${e.index}`);
    if (i > 0 && e.term < out[i - 1].term) throw new MalformedMessageError(`entry terms decrease at index ${e.index}`);
    out[i] = e;
  }
  return out;
}

/** Decodes what `encodeEntries` wrote; checks indexes are consecutive and terms never decrease. */
export function decodeEntries(bytes: Uint8Array): Entry[] {
  const r = new Reader(bytes);
  const out = readEntries(r);
  r.end();
  return out;
}

/** Encodes an RPC request for the network. */
export function encodeRequest(req: RaftRequest): Uint8Array {
  switch (req.type) {
    case 'appendEntries': {
      const w = new Writer(41 + sizeHint(req.entries));
      w.u8(TYPE.appendEntries); w.u53(req.term); w.u53(req.leaderId); w.u53(req.prevLogIndex);
      w.u53(req.prevLogTerm); w.u53(req.leaderCommit);
      w.u32(req.entries.length);
      for (const e of req.entries) writeEntry(w, e);
      return w.finish();
    }
    case 'vote': {
      const w = new Writer(34);
      w.u8(TYPE.vote); w.u53(req.term); w.u53(req.candidateId); w.u53(req.lastLogIndex); w.u53(req.lastLogTerm);
      w.u8((req.preVote === true ? VOTE_PRE : 0) | (req.transfer === true ? VOTE_TRANSFER : 0));
      return w.finish();
    }
    case 'timeoutNow': {
      const w = new Writer(17);
      w.u8(TYPE.timeoutNow); w.u53(req.term); w.u53(req.leaderId);
      return w.finish();
    }
    case 'installSnapshot': {
      const w = new Writer(46 + req.data.length + 256);
      w.u8(TYPE.installSnapshot); w.u53(req.term); w.u53(req.leaderId); w.u53(req.lastIncludedIndex);
      w.u53(req.lastIncludedTerm); w.u53(req.offset); w.u8(req.done ? 1 : 0); w.bytes(req.data);
      w.bytes(utf8.encode(req.snapshotId)); w.u53(req.membershipIndex); w.bytes(utf8.encode(JSON.stringify(req.membership)));
      w.u53(req.byteLength); w.u32(req.checksum);
      return w.finish();
    }
  }
}

/** Decodes and validates an RPC request. Throws MalformedMessageError on anything off. */
export function decodeRequest(bytes: Uint8Array): RaftRequest {
  const r = new Reader(bytes);
  const type = r.u8('message type');
  let req: RaftRequest;
  switch (type) {
    case TYPE.appendEntries: {
      const t = r.u53('term') as Term;
      const leaderId = nodeIdAt(r, 'leaderId');
      const prevLogIndex = r.u53('prevLogIndex') as LogIndex;
      const prevLogTerm = r.u53('prevLogTerm') as Term;
      const leaderCommit = r.u53('leaderCommit') as LogIndex;
      const entries = readEntries(r);
      if (entries.length > 0) {
        if (entries[0].index !== prevLogIndex + 1) throw new MalformedMessageError(`first entry ${entries[0].index} does not follow prevLogIndex ${prevLogIndex}`);
        if (entries[0].term < prevLogTerm) throw new MalformedMessageError('entry term below prevLogTerm');
        if (entries[entries.length - 1].term > t) throw new MalformedMessageError('entry term above the request term');
      }
      if (prevLogTerm > t) throw new MalformedMessageError('prevLogTerm above the request term');
      req = { type: 'appendEntries', term: t, leaderId, prevLogIndex, prevLogTerm, entries, leaderCommit } satisfies AppendEntriesRequest;
      break;
    }
    case TYPE.vote: {
      const t = r.u53('term') as Term;
      const candidateId = nodeIdAt(r, 'candidateId');
      const lastLogIndex = r.u53('lastLogIndex') as LogIndex;
      const lastLogTerm = r.u53('lastLogTerm') as Term;
      const flags = r.u8('vote flags');
      if (t < 1) throw new MalformedMessageError('vote request in term 0');
      if (lastLogTerm > t) throw new MalformedMessageError('lastLogTerm above the request term');
      if ((flags & ~(VOTE_PRE | VOTE_TRANSFER)) !== 0) throw new MalformedMessageError(`unknown vote flags ${flags}`);
      const vote: VoteRequest = { type: 'vote', term: t, candidateId, lastLogIndex, lastLogTerm };
      req = {
        ...vote, ...((flags & VOTE_PRE) !== 0 ? { preVote: true } : {}), ...((flags & VOTE_TRANSFER) !== 0 ? { transfer: true } : {}),
      } satisfies VoteRequest;
      break;
    }
    case TYPE.timeoutNow: {
      const t = r.u53('term') as Term;
      const leaderId = nodeIdAt(r, 'leaderId');
      if (t < 1) throw new MalformedMessageError('TimeoutNow in term 0');
      req = { type: 'timeoutNow', term: t, leaderId } satisfies TimeoutNowRequest;
      break;
    }
    case TYPE.installSnapshot: {
      const t = r.u53('term') as Term;
      const leaderId = nodeIdAt(r, 'leaderId');
      const lastIncludedIndex = r.u53('lastIncludedIndex') as LogIndex;
      const lastIncludedTerm = r.u53('lastIncludedTerm') as Term;
      const offset = r.u53('offset');
      const done = r.bool('done');
      const data = r.bytes('snapshot data');
      const snapshotId = validSnapshotId(text(r.bytes('snapshot id'), 'snapshot id'));
      const membershipIndex = r.u53('membershipIndex') as LogIndex;
      let membership: unknown;
      try { membership = JSON.parse(text(r.bytes('snapshot membership'), 'snapshot membership')); } catch (err) {
        if (err instanceof MalformedMessageError) throw err;
        throw new MalformedMessageError('snapshot membership is not JSON');
      }
      const byteLength = r.u53('snapshot byteLength');
      const checksum = r.u32('snapshot checksum');
      if (lastIncludedIndex < 1) throw new MalformedMessageError('lastIncludedIndex must be >= 1');
      if (membershipIndex > lastIncludedIndex) throw new MalformedMessageError(`membershipIndex ${membershipIndex} is above lastIncludedIndex ${lastIncludedIndex}`);
      if (lastIncludedTerm > t) throw new MalformedMessageError(`lastIncludedTerm ${lastIncludedTerm} is above the request's term ${t}`);
      if (offset + data.byteLength > byteLength) throw new MalformedMessageError(`chunk [${offset}, ${offset + data.byteLength}) runs past the snapshot's ${byteLength} bytes`);
      if (done && offset + data.byteLength !== byteLength) throw new MalformedMessageError(`the last chunk ends at ${offset + data.byteLength}, not at the snapshot's ${byteLength} bytes`);
      req = {
        type: 'installSnapshot', term: t, leaderId, lastIncludedIndex, lastIncludedTerm, offset, done, data,
        snapshotId, membership: validateMembership(membership), membershipIndex, byteLength, checksum,
      } satisfies InstallSnapshotRequest;
      break;
    }
    default: throw new MalformedMessageError(`unknown request type ${type}`);
  }
  r.end();
  return req;
}

/** Encodes an RPC response. */
export function encodeResponse(resp: RaftResponse): Uint8Array {
  const w = new Writer(35);
  switch (resp.type) {
    case 'appendEntriesResponse':
      w.u8(TYPE.appendEntriesResponse); w.u53(resp.term); w.u8(resp.success ? 1 : 0); w.u53(resp.matchIndex);
      w.u8(resp.conflict ? 1 : 0);
      if (resp.conflict) { w.u53(resp.conflict.index); w.u53(resp.conflict.term); }
      break;
    case 'voteResponse':
      w.u8(TYPE.voteResponse); w.u53(resp.term); w.u8(resp.voteGranted ? 1 : 0); w.u8(resp.isCandidateUnknown ? 1 : 0);
      w.u8(resp.preVote === true ? 1 : 0);
      break;
    case 'installSnapshotResponse':
      w.u8(TYPE.installSnapshotResponse); w.u53(resp.term);
      break;
    case 'timeoutNowResponse':
      w.u8(TYPE.timeoutNowResponse); w.u53(resp.term);
      break;
  }
  return w.finish();
}

/** Decodes and validates an RPC response. */
export function decodeResponse(bytes: Uint8Array): RaftResponse {
  const r = new Reader(bytes);
  const type = r.u8('message type');
  let resp: RaftResponse;
  switch (type) {
    case TYPE.appendEntriesResponse: {
      const t = r.u53('term') as Term;
      const success = r.bool('success');
      const matchIndex = r.u53('matchIndex') as LogIndex;
      const conflict = r.bool('has conflict') ? { index: r.u53('conflict index') as LogIndex, term: r.u53('conflict term') as Term } : null;
      resp = { type: 'appendEntriesResponse', term: t, success, matchIndex, conflict } satisfies AppendEntriesResponse;
      break;
    }
    case TYPE.voteResponse: {
      const vote: VoteResponse = { type: 'voteResponse', term: r.u53('term') as Term, voteGranted: r.bool('voteGranted'), isCandidateUnknown: r.bool('isCandidateUnknown') };
      resp = r.bool('preVote') ? { ...vote, preVote: true } : vote;
      break;
    }
    case TYPE.installSnapshotResponse:
      resp = { type: 'installSnapshotResponse', term: r.u53('term') as Term } satisfies InstallSnapshotResponse;
      break;
    case TYPE.timeoutNowResponse:
      resp = { type: 'timeoutNowResponse', term: r.u53('term') as Term };
      break;
    default: throw new MalformedMessageError(`unknown response type ${type}`);
  }
  r.end();
  return resp;
}

// ---- client requests forwarded between nodes (RaftNode's forwardToLeader option) ----

/**
 * A client request a node forwards to the leader through the network actor: a write to propose, or
 * a read asking the leader to confirm a read index (the follower then serves the read from its own
 * state machine once it has applied that far). Not Raft RPCs: no term rules apply to them.
 */
export type ClientRequest =
  | { readonly type: 'forwardWrite'; readonly from: NodeId; readonly payload: Uint8Array; readonly responseMode: 'committed' | 'applied' }
  | { readonly type: 'forwardRead'; readonly from: NodeId };

/**
 * The leader's answer: the index (and term) the write was committed at, or the read index; or the
 * error, by its code and message, with the leader the answering node knows of.
 */
export type ClientResponse =
  /** `result`: the state machine's result (node:v8 serialized), for a write forwarded with responseMode 'applied'. */
  | { readonly type: 'clientOk'; readonly index: LogIndex; readonly term: Term; readonly result?: Uint8Array }
  /** `props`: the error's own fields (JSON), so the client gets the same typed error the leader raised. */
  | { readonly type: 'clientError'; readonly code: string; readonly message: string; readonly leaderId: NodeId | null; readonly props: Record<string, unknown> };

/** The kinds of request a network carries, for per-kind counters and latencies (transports' stats). */
export const RPC_KINDS = ['append', 'vote', 'installSnapshot', 'timeoutNow', 'forwardWrite', 'forwardRead', 'other'] as const;
export type RpcKind = (typeof RPC_KINDS)[number];

/** The kind of an encoded request, by its type byte, without decoding it ('other' for anything else). */
export function rpcKindOf(bytes: Uint8Array): RpcKind {
  switch (bytes.length > 0 ? bytes[0] : -1) {
    case TYPE.appendEntries: return 'append';
    case TYPE.vote: return 'vote';
    case TYPE.installSnapshot: return 'installSnapshot';
    case TYPE.timeoutNow: return 'timeoutNow';
    case TYPE.forwardWrite: return 'forwardWrite';
    case TYPE.forwardRead: return 'forwardRead';
    default: return 'other';
  }
}

/** Whether inbound bytes are a forwarded client request rather than a Raft RPC (by the type byte). */
export function isClientRequest(bytes: Uint8Array): boolean {
  return bytes instanceof Uint8Array && bytes.length > 0 && (bytes[0] === TYPE.forwardWrite || bytes[0] === TYPE.forwardRead);
}

export function encodeClientRequest(req: ClientRequest): Uint8Array {
  if (req.type === 'forwardRead') {
    const w = new Writer(9);
    w.u8(TYPE.forwardRead); w.u53(req.from);
    return w.finish();
  }
  const w = new Writer(14 + req.payload.length);
  w.u8(TYPE.forwardWrite); w.u53(req.from); w.u8(req.responseMode === 'applied' ? 1 : 0); w.bytes(req.payload);
  return w.finish();
}

export function decodeClientRequest(bytes: Uint8Array): ClientRequest {
  const r = new Reader(bytes);
  const type = r.u8('message type');
  let req: ClientRequest;
  if (type === TYPE.forwardRead) {
    req = { type: 'forwardRead', from: nodeIdAt(r, 'from') };
  } else if (type === TYPE.forwardWrite) {
    const from = nodeIdAt(r, 'from');
    const responseMode = r.bool('responseMode') ? 'applied' : 'committed';
    req = { type: 'forwardWrite', from, responseMode, payload: r.bytes('payload') };
  } else {
    throw new MalformedMessageError(`unknown client request type ${type}`);
  }
  r.end();
  return req;
}

export function encodeClientResponse(resp: ClientResponse): Uint8Array {
  if (resp.type === 'clientOk') {
    const w = new Writer(22 + (resp.result?.length ?? 0));
    w.u8(TYPE.clientOk); w.u53(resp.index); w.u53(resp.term);
    w.u8(resp.result !== undefined ? 1 : 0);
    if (resp.result !== undefined) w.bytes(resp.result);
    return w.finish();
  }
  const w = new Writer(64 + resp.message.length * 3);
  w.u8(TYPE.clientError); w.bytes(utf8.encode(resp.code)); w.bytes(utf8.encode(resp.message)); w.u53(resp.leaderId ?? 0);
  let props = '{}';
  const p: unknown = resp.props;
  // Only an object is written: the decoder refuses anything else, so the answer stays readable.
  if (p !== null && typeof p === 'object' && !Array.isArray(p)) {
    try { props = JSON.stringify(p) ?? '{}'; } catch { /* fields that do not survive JSON are left out */ }
  }
  w.bytes(utf8.encode(props));
  return w.finish();
}

export function decodeClientResponse(bytes: Uint8Array): ClientResponse {
  const r = new Reader(bytes);
  const type = r.u8('message type');
  let resp: ClientResponse;
  if (type === TYPE.clientOk) {
    const index = r.u53('index') as LogIndex;
    const term = r.u53('term') as Term;
    resp = r.bool('has result') ? { type: 'clientOk', index, term, result: r.bytes('result') } : { type: 'clientOk', index, term };
  } else if (type === TYPE.clientError) {
    const code = text(r.bytes('error code'), 'error code');
    const message = text(r.bytes('error message'), 'error message');
    const leader = r.u53('leaderId');
    let props: unknown;
    try { props = JSON.parse(text(r.bytes('error props'), 'error props')); } catch (err) {
      if (err instanceof MalformedMessageError) throw err;
      throw new MalformedMessageError('error props are not JSON');
    }
    if (props === null || typeof props !== 'object' || Array.isArray(props)) throw new MalformedMessageError('error props must be a JSON object');
    resp = { type: 'clientError', code, message, leaderId: leader === 0 ? null : (leader as NodeId), props: props as Record<string, unknown> };
  } else {
    throw new MalformedMessageError(`unknown client response type ${type}`);
  }
  r.end();
  return resp;
}
