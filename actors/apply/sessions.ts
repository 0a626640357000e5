/**
 * Exactly-once client sessions (Raft paper section 8, Ongaro's dissertation 6.3) as a wrapper around
 * any StateMachine. A client that retries a write after a timeout cannot know whether the first
 * attempt was applied; without sessions a non-idempotent command (append, increment) may then apply
 * twice. Here a client registers a session (its id is the REGISTER entry's log index), numbers its
 * commands, and every replica remembers each session's last serial and response: a retry of that
 * serial returns the cached response instead of applying again.
 *
 * One outstanding request per session (paper section 8): only the latest response is kept, so a
 * client sends serial n+1 only after n was answered. A client that needs concurrency opens several
 * sessions. Sessions expire after `timeoutMs` of idle *log* time: every enveloped entry carries the
 * leader's clock (`stampLogTime`), and replicas advance a monotonic log time T from it, never from
 * their own clock, so every replica expires the same sessions at the same index.
 */
import { deserialize, serialize } from 'node:v8';
import { registerErrorClass } from '../../runtime/errors';
import { NotAllowedError, RaftError } from '../raft/core/errors';
import type { Entry, SnapshotMeta } from '../raft/core/types';
import type { StateMachine } from './state-machine';

/** Where the float64 log time sits in every envelope; the leader writes it there just before proposing. */
export const SESSION_TIME_OFFSET = 1;
const TAG_PLAIN = 0x01;
const TAG_REGISTER = 0x02;
const TAG_COMMAND = 0x03;
/** Tag and log time. */
const HEAD = 9;

export type Envelope =
  | { readonly type: 'plain'; readonly logTimeMs: number; readonly payload: Uint8Array }
  | { readonly type: 'register'; readonly logTimeMs: number; readonly timeoutMs: number }
  | { readonly type: 'command'; readonly logTimeMs: number; readonly clientId: number; readonly serial: number; readonly payload: Uint8Array };

function checkInt(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be a safe integer >= ${min}, got ${v}`);
  return v;
}

function frame(tag: number, numbers: readonly number[], payload?: Uint8Array): Uint8Array {
  if (payload !== undefined && !(payload instanceof Uint8Array)) throw new TypeError(`payload must be a Uint8Array, got ${typeof payload}`);
  const at = HEAD + 8 * numbers.length;
  const out = new Uint8Array(at + (payload?.byteLength ?? 0));
  const dv = new DataView(out.buffer);
  out[0] = tag; // log time 0 until stamped
  numbers.forEach((n, k) => dv.setFloat64(HEAD + 8 * k, n));
  if (payload !== undefined) out.set(payload, at);
  return out;
}

/** @example proposal = encodePlain(encodeKv({ op: 'put', key: 'k', value: 'v' })) // no dedup */
export const encodePlain = (payload: Uint8Array): Uint8Array => frame(TAG_PLAIN, [], payload);
/** @example encodeRegister(60_000) // applied result: { clientId: <the entry's index> } */
export const encodeRegister = (timeoutMs: number): Uint8Array => frame(TAG_REGISTER, [checkInt('timeoutMs', timeoutMs, 1)]);
/** @example encodeCommand(session.clientId, ++session.serial, encodeKv({ op: 'append', key: 'k', value: 'x' })) */
export const encodeCommand = (clientId: number, serial: number, payload: Uint8Array): Uint8Array =>
  frame(TAG_COMMAND, [checkInt('clientId', clientId, 1), checkInt('serial', serial, 1)], payload);

/**
 * Writes the leader's clock into an envelope, in place, just before it is proposed (not at encode
 * time: a retry proposed later must carry the later time). Returns `bytes`.
 * @example stampLogTime(envelope, Date.now())
 */
export function stampLogTime(bytes: Uint8Array, nowMs: number): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('stampLogTime needs a Uint8Array envelope');
  if (bytes.byteLength < HEAD || bytes[0] < TAG_PLAIN || bytes[0] > TAG_COMMAND) throw new RangeError(`stampLogTime: not a session envelope (${bytes.byteLength} bytes, tag ${bytes[0]})`);
  checkInt('nowMs', nowMs, 0);
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setFloat64(SESSION_TIME_OFFSET, nowMs || 0);
  return bytes;
}

/**
 * Reads an envelope; payloads are views into `bytes`. Throws TypeError or RangeError on anything
 * malformed: unknown tag, wrong length, a number that is not a safe integer in range.
 * @example const env = decodeEnvelope(entry.payload); if (env.type === 'command') env.serial
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('a session envelope must be a Uint8Array');
  const tag = bytes[0];
  if (tag !== TAG_PLAIN && tag !== TAG_REGISTER && tag !== TAG_COMMAND) throw new RangeError(`malformed session envelope: unknown tag ${tag === undefined ? '(empty)' : `0x${tag.toString(16)}`}`);
  const need = tag === TAG_PLAIN ? HEAD : tag === TAG_REGISTER ? HEAD + 8 : HEAD + 16;
  if (bytes.byteLength < need) throw new RangeError(`malformed session envelope: ${bytes.byteLength} bytes, tag 0x0${tag} needs at least ${need}`);
  if (tag === TAG_REGISTER && bytes.byteLength !== need) throw new RangeError(`malformed session envelope: a register is ${need} bytes, got ${bytes.byteLength}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const num = (name: string, at: number, min: number): number => {
    const v = dv.getFloat64(at);
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`malformed session envelope: ${name} is ${v}, not a safe integer >= ${min}`);
    return v;
  };
  const logTimeMs = num('logTimeMs', SESSION_TIME_OFFSET, 0);
  if (tag === TAG_PLAIN) return { type: 'plain', logTimeMs, payload: bytes.subarray(HEAD) };
  if (tag === TAG_REGISTER) return { type: 'register', logTimeMs, timeoutMs: num('timeoutMs', HEAD, 1) };
  return { type: 'command', logTimeMs, clientId: num('clientId', HEAD, 1), serial: num('serial', HEAD + 8, 1), payload: bytes.subarray(HEAD + 16) };
}

export type SessionErrorKind = 'expired' | 'stale-serial' | 'malformed';
/** A session layer's refusal, as an apply result: plain data, so it survives a structured clone. clientId and serial are 0 when unknown. */
export interface SessionErrorResult { readonly sessionError: SessionErrorKind; readonly clientId: number; readonly serial: number; readonly message: string }

const expiredMessage = (clientId: number) => `client session ${clientId} is unknown (expired or never registered); the command was not applied`;
const staleMessage = (clientId: number, serial: number) => `serial ${serial} of client session ${clientId} is stale; its response was discarded`;

/** The session is unknown (expired, or never registered): the command was not applied. Register a new session. */
export class SessionExpiredError extends RaftError {
  readonly code = 'SessionExpired';
  constructor(readonly clientId: number, message = expiredMessage(clientId)) { super(message); }
}
/** The serial is older than the session's last one, whose response alone is kept: that request's response is lost. */
export class SessionSerialError extends RaftError {
  readonly code = 'SessionSerial';
  constructor(readonly clientId: number, readonly serial: number, message = staleMessage(clientId, serial)) { super(message); }
}
/** The entry was not a valid session envelope: nothing was applied (the proposer has a bug). */
export class SessionMalformedError extends RaftError {
  readonly code = 'SessionMalformed';
  constructor(message: string) { super(message); }
}
registerErrorClass('SessionExpired', (p) => new SessionExpiredError(Number(p.clientId)));
registerErrorClass('SessionSerial', (p) => new SessionSerialError(Number(p.clientId), Number(p.serial)));
registerErrorClass('SessionMalformed', (p) => new SessionMalformedError(String(p.message ?? 'malformed session envelope')));

const KINDS: ReadonlySet<unknown> = new Set<SessionErrorKind>(['expired', 'stale-serial', 'malformed']);
export function isSessionErrorResult(x: unknown): x is SessionErrorResult {
  if (x === null || typeof x !== 'object') return false;
  const r = x as Record<string, unknown>;
  return KINDS.has(r.sessionError) && typeof r.clientId === 'number' && typeof r.serial === 'number' && typeof r.message === 'string';
}

/**
 * The typed error an apply result stands for, or null when it is an ordinary result.
 * @example const err = sessionErrorOf(result); if (err instanceof SessionExpiredError) reRegister();
 */
export function sessionErrorOf(result: unknown): Error | null {
  if (!isSessionErrorResult(result)) return null;
  switch (result.sessionError) {
    case 'expired': return new SessionExpiredError(result.clientId, result.message);
    case 'stale-serial': return new SessionSerialError(result.clientId, result.serial, result.message);
    case 'malformed': return new SessionMalformedError(result.message);
  }
}

const marker = (sessionError: SessionErrorKind, clientId: number, serial: number, message: string): SessionErrorResult => ({ sessionError, clientId, serial, message });

interface Session {
  readonly id: number;
  readonly timeoutMs: number;
  lastUsedMs: number;
  lastSerial: number;
  response: unknown;
  /** Position in the heap. */
  pos: number;
  /** Position in the batch being applied whose inner result becomes `response`, or -1. */
  pending: number;
}
const deadline = (s: Session): number => s.lastUsedMs + s.timeoutMs;

/**
 * The sessions and log time T. Expiry order: LRU order is not enough, since timeouts differ per
 * session (an idle 1 s session may expire behind a busier 1 h one), so sessions sit in a binary
 * min-heap on their deadline `lastUsedMs + timeoutMs`. Checking before each entry is a peek, O(1);
 * each use moves the session down (T only grows, so deadlines only grow), O(log n); each expiry
 * pops, O(log n). Unlike grouping sessions by timeout, no client-chosen value can make the
 * per-entry check slow. Map order (registration) makes the snapshot the same on every replica.
 */
class SessionTable {
  t = 0;
  readonly byId = new Map<number, Session>();
  private heap: Session[] = [];

  /** T = max(T, stamp), then drops every session idle longer than its timeout. */
  advance(stampMs: number): void {
    if (stampMs > this.t) this.t = stampMs;
    const h = this.heap;
    while (h.length > 0 && deadline(h[0]) < this.t) {
      this.byId.delete(h[0].id);
      const last = h.pop()!;
      if (h.length > 0) { h[0] = last; last.pos = 0; this.down(0); }
    }
  }

  add(id: number, timeoutMs: number, lastUsedMs: number, lastSerial: number, response: unknown): void {
    const s: Session = { id, timeoutMs, lastUsedMs, lastSerial, response, pos: this.heap.length, pending: -1 };
    this.byId.set(id, s);
    this.heap.push(s);
    this.up(s.pos);
  }

  touch(s: Session): void { s.lastUsedMs = this.t; this.down(s.pos); }

  reset(t: number): void { this.t = t; this.byId.clear(); this.heap = []; }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (deadline(h[p]) <= deadline(h[i])) return;
      this.swap(i, p); i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && deadline(h[l]) < deadline(h[m])) m = l;
      if (r < h.length && deadline(h[r]) < deadline(h[m])) m = r;
      if (m === i) return;
      this.swap(i, m); i = m;
    }
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    [h[a], h[b]] = [h[b], h[a]];
    h[a].pos = a; h[b].pos = b;
  }
}

/** A session-wrapped state machine; `sessionCount()` is for inspection and tests. */
export interface SessionStateMachine extends StateMachine { sessionCount(): number }

const MAGIC = [0x52, 0x53, 0x45, 0x53]; // 'RSES'
/**
 * Version 2 writes the table's numbers as float64s itself: version 1 used v8.serialize for the
 * whole table, whose bytes for a number depend on how V8 happens to hold it (small integer or
 * double), so one state gave snapshots of different sizes and the simulator's runs diverged.
 */
const VERSION = 2;
/** Magic (4), version (u32), session table length (float64). */
const HEADER_BYTES = 16;

/** Per entry of a batch: the inner result, the wrapper's own, or the inner result of an earlier entry (a retry within the batch). */
const INNER = 0, OWN = 1, SAME_BATCH = 2;

/**
 * Wraps `inner` so that enveloped entries (encodePlain / encodeRegister / encodeCommand) apply
 * exactly once per session serial. Every normal entry must be an envelope; blank and config
 * entries pass through. Inner sees every index (entries it must not apply become blanks), so its
 * `lastApplied()` stays the node's. If inner.apply throws, the batch is half-applied in both
 * layers, as it would be without sessions: the throw crashes the Apply actor, and this instance with it.
 * @example stateMachine: { factory: () => withSessions(new KvStateMachine()) }
 */
export function withSessions(inner: StateMachine): SessionStateMachine {
  const table = new SessionTable();
  /**
   * The index the session table is current through: the last entry applied here, or the snapshot
   * restored. Inner must never be ahead of it: a state machine that keeps its own state across
   * restarts would come back at index N with an empty table, and refuse as expired the commands
   * of sessions the other replicas still know (the replicas would diverge). lastApplied() refuses
   * that at start, with an error that says why, rather than let it happen.
   */
  let through = 0;
  const checkedLastApplied = (v: number): number => {
    if (v > through) {
      throw new NotAllowedError(`the state machine is at index ${v} but the session table only at ${through}: the session layer keeps its table in memory and in snapshots, so it needs a state machine that starts empty (rebuilt from the snapshot and the log), not one that persists its own state`);
    }
    return v;
  };

  function apply(entries: readonly Entry[]): readonly unknown[] | Promise<readonly unknown[]> {
    const n = entries.length;
    const toInner: Entry[] = new Array(n);
    const mode = new Uint8Array(n); // INNER
    const own: unknown[] = new Array(n);
    const pending = new Set<Session>();
    for (let k = 0; k < n; k++) {
      const e = entries[k];
      if (e.kind !== 'normal') { toInner[k] = e; continue; }
      const answer = (result: unknown) => { mode[k] = OWN; own[k] = result; toInner[k] = { index: e.index, term: e.term, kind: 'blank' }; };
      let env: Envelope;
      try {
        env = decodeEnvelope(e.payload);
      } catch (err) {
        answer(marker('malformed', 0, 0, `entry ${e.index}: ${(err as Error).message}`));
        continue;
      }
      table.advance(env.logTimeMs);
      if (env.type === 'plain') { toInner[k] = { index: e.index, term: e.term, kind: 'normal', payload: env.payload }; continue; }
      if (env.type === 'register') { table.add(e.index, env.timeoutMs, table.t, 0, undefined); answer({ clientId: e.index }); continue; }
      const { clientId, serial } = env;
      const s = table.byId.get(clientId);
      if (s === undefined) { answer(marker('expired', clientId, serial, expiredMessage(clientId))); continue; }
      table.touch(s);
      if (serial > s.lastSerial) {
        s.lastSerial = serial;
        s.pending = k;
        pending.add(s);
        toInner[k] = { index: e.index, term: e.term, kind: 'normal', payload: env.payload };
      } else if (serial === s.lastSerial && s.pending >= 0) {
        mode[k] = SAME_BATCH; own[k] = s.pending; toInner[k] = { index: e.index, term: e.term, kind: 'blank' };
      } else if (serial === s.lastSerial) {
        answer(s.response);
      } else {
        answer(marker('stale-serial', clientId, serial, `${staleMessage(clientId, serial)} (the session is at serial ${s.lastSerial})`));
      }
    }
    const finish = (results: readonly unknown[]): unknown[] => {
      if (!Array.isArray(results) || results.length !== n) throw new TypeError(`the inner state machine returned ${Array.isArray(results) ? results.length : typeof results} results for ${n} entries`);
      for (const s of pending) { s.response = results[s.pending]; s.pending = -1; }
      if (n > 0) through = entries[n - 1]!.index;
      return results.map((r, k) => (mode[k] === INNER ? r : mode[k] === OWN ? own[k] : results[own[k] as number]));
    };
    const results = inner.apply(toInner);
    return isPromise(results) ? results.then(finish) : finish(results);
  }

  const lastApplied = (): number | Promise<number> => {
    const v = inner.lastApplied();
    return isPromise<number>(v) ? v.then(checkedLastApplied) : checkedLastApplied(v);
  };
  const sm: SessionStateMachine = { apply, lastApplied: lastApplied as StateMachine['lastApplied'], sessionCount: () => table.byId.size };
  if (typeof inner.query === 'function') sm.query = (q) => inner.query!(q);
  if (typeof inner.snapshot === 'function' && typeof inner.restore === 'function') {
    sm.snapshot = () => {
      // Taken now, not when the stream is read: the state is as of this call.
      const sessions = [...table.byId.values()].map((s) => [s.id, s.timeoutMs, s.lastUsedMs, s.lastSerial, s.response]);
      const body = encodeTable(table.t, sessions as TableRow[]);
      const head = new Uint8Array(HEADER_BYTES);
      head.set(MAGIC);
      const dv = new DataView(head.buffer);
      dv.setUint32(4, VERSION);
      dv.setFloat64(8, body.byteLength);
      const rest = inner.snapshot!();
      if (isPromise(rest)) rest.catch(() => undefined); // rejected before the stream is read: still reported when it is
      return stream(head, body, rest);
    };
    sm.restore = async (meta: SnapshotMeta, data: AsyncIterable<Uint8Array>) => {
      const reader = new ChunkReader(data[Symbol.asyncIterator]());
      const head = await reader.read(HEADER_BYTES, 'header');
      if (MAGIC.some((b, k) => head[k] !== b)) throw new TypeError(`snapshot ${meta.id} is not a session snapshot: it does not start with the magic bytes 'RSES'`);
      const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
      if (dv.getUint32(4) !== VERSION) throw new RangeError(`session snapshot ${meta.id} has version ${dv.getUint32(4)}; this build reads version ${VERSION}`);
      const length = dv.getFloat64(8);
      if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`session snapshot ${meta.id} gives its session table length as ${length}`);
      const parsed = parseTable(meta.id, await reader.read(length, 'session table'));
      await inner.restore!(meta, reader.rest());
      through = meta.lastIncludedIndex;
      table.reset(parsed.t);
      for (const [id, timeoutMs, lastUsedMs, lastSerial, response] of parsed.sessions) table.add(id, timeoutMs, lastUsedMs, lastSerial, response);
    };
  }
  return sm;
}

type TableRow = [number, number, number, number, unknown];

/**
 * The session table: log time (float64), the session count (u32), then per session its id,
 * timeoutMs, lastUsedMs and lastSerial (float64 each) and its cached response (u32 length +
 * node:v8 bytes, the structured-clone format: responses are whatever the state machine returned).
 */
function encodeTable(t: number, rows: readonly TableRow[]): Uint8Array {
  const responses = rows.map((r) => serialize(r[4]));
  const out = new Uint8Array(12 + rows.length * 36 + responses.reduce((n, b) => n + b.byteLength, 0));
  const dv = new DataView(out.buffer);
  dv.setFloat64(0, t);
  dv.setUint32(8, rows.length);
  let at = 12;
  rows.forEach((r, k) => {
    for (let f = 0; f < 4; f++) dv.setFloat64(at + 8 * f, r[f] as number);
    dv.setUint32(at + 32, responses[k]!.byteLength);
    out.set(responses[k]!, at + 36);
    at += 36 + responses[k]!.byteLength;
  });
  return out;
}

function parseTable(id: string, bytes: Uint8Array): { t: number; sessions: TableRow[] } {
  const bad = (why: string): never => { throw new TypeError(`session snapshot ${id}: its session table ${why}`); };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const int = (x: number) => Number.isSafeInteger(x) && x >= 0;
  if (bytes.byteLength < 12) bad(`is ${bytes.byteLength} bytes, shorter than its header`);
  const t = dv.getFloat64(0);
  const count = dv.getUint32(8);
  if (!int(t)) bad(`has log time ${t}`);
  const sessions: TableRow[] = [];
  let at = 12;
  for (let k = 0; k < count; k++) {
    if (at + 36 > bytes.byteLength) bad(`ends inside session ${k} of ${count}`);
    const nums = [0, 1, 2, 3].map((f) => dv.getFloat64(at + 8 * f));
    if (!nums.every(int)) bad(`has a session with fields ${nums.join(', ')}`);
    const len = dv.getUint32(at + 32);
    if (at + 36 + len > bytes.byteLength) bad(`ends inside the response of session ${nums[0]}`);
    let response: unknown;
    try { response = deserialize(bytes.subarray(at + 36, at + 36 + len)); } catch (err) { bad(`holds a response that does not deserialize: ${(err as Error).message}`); }
    sessions.push([nums[0]!, nums[1]!, nums[2]!, nums[3]!, response]);
    at += 36 + len;
  }
  if (at !== bytes.byteLength) bad(`has ${bytes.byteLength - at} bytes after its ${count} sessions`);
  return { t, sessions };
}

function isPromise<T>(v: unknown): v is Promise<T> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

async function* stream(head: Uint8Array, body: Uint8Array, rest: Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield head;
  yield body;
  const v = await rest;
  if (v instanceof Uint8Array) yield v;
  else yield* v;
}

/** Reads exact byte counts off a chunk stream however it is split, copying only what it returns; `rest()` streams the remainder untouched. */
class ChunkReader {
  private buf: Uint8Array = new Uint8Array(0);
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  async read(n: number, what: string): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let have = 0;
    while (have < n) {
      if (this.buf.byteLength === 0) {
        const r = await this.it.next();
        if (r.done) throw new RangeError(`session snapshot ends ${have} bytes into its ${n}-byte ${what}`);
        if (!(r.value instanceof Uint8Array)) throw new TypeError('a snapshot stream must yield Uint8Arrays');
        this.buf = r.value;
        continue;
      }
      const take = Math.min(n - have, this.buf.byteLength);
      out.set(this.buf.subarray(0, take), have);
      have += take;
      this.buf = this.buf.subarray(take);
    }
    return out;
  }

  async *rest(): AsyncIterable<Uint8Array> {
    if (this.buf.byteLength > 0) yield this.buf;
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      yield r.value;
    }
  }
}
