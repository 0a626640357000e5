/**
 * Exactly-once client sessions (actors/apply/sessions.ts): the envelope encoding, deduplication of
 * retries, stale and unknown sessions, expiry by log time (identical on every replica), the
 * consecutive indexes the inner state machine sees, and snapshots that carry the session table.
 */
import { expect } from 'chai';
import type { StateMachine } from '../../actors/apply/state-machine';
import {
  decodeEnvelope, encodeCommand, encodePlain, encodeRegister, isSessionErrorResult, SESSION_TIME_OFFSET, SessionExpiredError,
  SessionMalformedError, SessionSerialError, sessionErrorOf, stampLogTime, withSessions, type SessionStateMachine,
} from '../../actors/apply/sessions';
import { NotAllowedError, RaftError } from '../../actors/raft/core/errors';
import type { Entry, LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../../actors/raft/core/types';
import { reviveError, serializeError } from '../../runtime/errors';

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * An append-only string store: payload "key=value" appends value to key and returns the new value.
 * Not idempotent, so a command applied twice shows. Records every index it is handed.
 */
class AppendMachine implements StateMachine {
  data = new Map<string, string>();
  applied = 0 as LogIndex;
  readonly seen: { index: number; kind: string }[] = [];
  normalCount = 0;
  restoreCalls = 0;
  constructor(private readonly snapshotAs: 'bytes' | 'promise' | 'stream' = 'bytes') {}
  apply(entries: readonly Entry[]): unknown[] {
    return entries.map((e) => {
      if (this.applied !== 0 && e.index !== this.applied + 1) throw new Error(`inner got index ${e.index} after ${this.applied}`);
      this.applied = e.index;
      this.seen.push({ index: e.index, kind: e.kind });
      if (e.kind !== 'normal') return `inner-${e.kind}`;
      this.normalCount++;
      const [k, v] = dec.decode(e.payload).split('=');
      const now = (this.data.get(k) ?? '') + v;
      this.data.set(k, now);
      return { value: now };
    });
  }
  lastApplied(): LogIndex { return this.applied; }
  query(key: unknown): unknown { return this.data.get(String(key)) ?? null; }
  snapshot(): Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array> {
    const bytes = enc.encode(JSON.stringify({ applied: this.applied, data: [...this.data] }));
    if (this.snapshotAs === 'promise') return Promise.resolve(bytes);
    if (this.snapshotAs === 'bytes') return bytes;
    return (async function* () { for (let at = 0; at < bytes.length; at += 7) yield bytes.slice(at, at + 7); })();
  }
  async restore(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    this.restoreCalls++;
    const parts: Uint8Array[] = [];
    for await (const c of data) parts.push(c);
    const s = JSON.parse(dec.decode(Buffer.concat(parts))) as { applied: number; data: [string, string][] };
    this.data = new Map(s.data);
    this.applied = meta.lastIncludedIndex;
  }
}

type Item = Uint8Array | 'blank' | 'config';
const cfg: Membership = { members: [1 as NodeId], nonVoters: [], membersAfterConsensus: null };
function entries(start: number, items: readonly Item[]): Entry[] {
  return items.map((it, k): Entry => {
    const index = (start + k) as LogIndex;
    const term = 1 as Term;
    if (it === 'blank') return { kind: 'blank', index, term };
    if (it === 'config') return { kind: 'config', index, term, membership: cfg };
    return { kind: 'normal', index, term, payload: it };
  });
}
const at = (ms: number, bytes: Uint8Array) => stampLogTime(bytes, ms);
const cmd = (clientId: number, serial: number, text: string, ms = 0) => at(ms, encodeCommand(clientId, serial, enc.encode(text)));
const reg = (timeoutMs: number, ms = 0) => at(ms, encodeRegister(timeoutMs));

/** A wrapped machine that applies batches from index 1 on; `run` returns the batch's results. */
function replica(inner = new AppendMachine()) {
  const sm = withSessions(inner);
  let next = 1;
  return {
    sm, inner,
    async run(...items: Item[]): Promise<unknown[]> {
      const out = await sm.apply(entries(next, items));
      next += items.length;
      return [...out];
    },
    skipTo(index: number) { next = index; },
  };
}

async function collect(src: Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const v = await src;
  if (v instanceof Uint8Array) return v;
  const parts: Uint8Array[] = [];
  for await (const c of v) parts.push(c);
  return Buffer.concat(parts);
}
async function* chunks(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}
const meta = (index: number): SnapshotMeta => ({ id: `1-${index}-test`, lastIncludedIndex: index as LogIndex, lastIncludedTerm: 1 as Term, membership: cfg, membershipIndex: 0 as LogIndex, byteLength: 0, checksum: 0 });

describe('client sessions: envelopes', () => {
  it('round-trips plain, register and command envelopes, with the log time at byte 1 as a big-endian float64', () => {
    expect(SESSION_TIME_OFFSET).to.equal(1);
    const plain = encodePlain(enc.encode('abc'));
    expect([...plain]).to.deep.equal([1, 0, 0, 0, 0, 0, 0, 0, 0, 97, 98, 99]);
    expect(decodeEnvelope(plain)).to.deep.include({ type: 'plain', logTimeMs: 0 });
    stampLogTime(plain, 1234);
    expect(new DataView(plain.buffer).getFloat64(1)).to.equal(1234);
    const p = decodeEnvelope(plain);
    expect(p.type === 'plain' && dec.decode(p.payload)).to.equal('abc');
    expect(p.logTimeMs).to.equal(1234);

    const r = encodeRegister(60_000);
    expect(r.byteLength).to.equal(17);
    expect(r[0]).to.equal(2);
    expect(decodeEnvelope(stampLogTime(r, 5))).to.deep.equal({ type: 'register', logTimeMs: 5, timeoutMs: 60_000 });

    const c = encodeCommand(7, 2 ** 53 - 1, enc.encode('k=v'));
    expect(c[0]).to.equal(3);
    const d = decodeEnvelope(c);
    expect(d).to.deep.include({ type: 'command', logTimeMs: 0, clientId: 7, serial: 2 ** 53 - 1 });
    expect(d.type === 'command' && dec.decode(d.payload)).to.equal('k=v');
    expect(decodeEnvelope(encodePlain(new Uint8Array(0)))).to.deep.include({ type: 'plain' });
    // A view into a larger buffer decodes from its own offset.
    const big = new Uint8Array(40);
    big.set(c, 5);
    expect(decodeEnvelope(big.subarray(5, 5 + c.byteLength))).to.deep.include({ clientId: 7 });
  });

  it('refuses bad arguments to the encoders with TypeError or RangeError naming the field', () => {
    const p = enc.encode('x');
    expect(() => encodeCommand(0, 1, p)).to.throw(RangeError, /clientId must be a safe integer >= 1, got 0/);
    expect(() => encodeCommand(-1, 1, p)).to.throw(RangeError, /clientId/);
    expect(() => encodeCommand(1.5, 1, p)).to.throw(RangeError, /clientId/);
    expect(() => encodeCommand(2 ** 53, 1, p)).to.throw(RangeError, /clientId/);
    expect(() => encodeCommand(NaN, 1, p)).to.throw(RangeError, /clientId/);
    expect(() => encodeCommand('1' as unknown as number, 1, p)).to.throw(TypeError, /clientId must be a number/);
    expect(() => encodeCommand(1, 0, p)).to.throw(RangeError, /serial must be a safe integer >= 1/);
    expect(() => encodeCommand(1, 1, 'x' as unknown as Uint8Array)).to.throw(TypeError, /payload must be a Uint8Array/);
    expect(() => encodePlain(null as unknown as Uint8Array)).to.throw(TypeError, /payload/);
    expect(() => encodeRegister(0)).to.throw(RangeError, /timeoutMs must be a safe integer >= 1/);
    expect(() => encodeRegister(Infinity)).to.throw(RangeError, /timeoutMs/);
    expect(() => stampLogTime(encodePlain(p), -1)).to.throw(RangeError, /nowMs must be a safe integer >= 0/);
    expect(() => stampLogTime(encodePlain(p), 1.5)).to.throw(RangeError, /nowMs/);
    expect(() => stampLogTime(encodePlain(p), NaN)).to.throw(RangeError, /nowMs/);
    expect(() => stampLogTime(p, 1)).to.throw(RangeError, /not a session envelope/);
    expect(() => stampLogTime(new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 0]), 1)).to.throw(RangeError, /not a session envelope/);
    expect(() => stampLogTime(new Uint8Array([1, 0, 0]), 1)).to.throw(RangeError, /not a session envelope/);
  });

  it('refuses every malformed envelope with a clear error', () => {
    const withFloat = (bytes: Uint8Array, offset: number, v: number) => { new DataView(bytes.buffer).setFloat64(offset, v); return bytes; };
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /unknown tag \(empty\)/],
      [new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0]), /unknown tag 0x0/],
      [new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 0]), /unknown tag 0x4/],
      [new Uint8Array([1, 0, 0]), /3 bytes, tag 0x01 needs at least 9/],
      [encodeRegister(5).subarray(0, 16), /16 bytes, tag 0x02 needs at least 17/],
      [Uint8Array.from([...encodeRegister(5), 0]), /a register is 17 bytes, got 18/],
      [encodeCommand(1, 1, new Uint8Array(0)).subarray(0, 24), /24 bytes, tag 0x03 needs at least 25/],
      [withFloat(encodePlain(new Uint8Array(0)), 1, 1.5), /logTimeMs is 1.5/],
      [withFloat(encodePlain(new Uint8Array(0)), 1, -3), /logTimeMs is -3/],
      [withFloat(encodePlain(new Uint8Array(0)), 1, NaN), /logTimeMs is NaN/],
      [withFloat(encodeRegister(5), 9, 0), /timeoutMs is 0, not a safe integer >= 1/],
      [withFloat(encodeCommand(1, 1, new Uint8Array(0)), 9, 0), /clientId is 0/],
      [withFloat(encodeCommand(1, 1, new Uint8Array(0)), 17, 2.5), /serial is 2.5/],
      [withFloat(encodeCommand(1, 1, new Uint8Array(0)), 17, 2 ** 60), /serial is/],
    ];
    for (const [bytes, msg] of cases) expect(() => decodeEnvelope(bytes), String(msg)).to.throw(RangeError, /malformed session envelope/).and.to.match(msg);
    expect(() => decodeEnvelope('x' as unknown as Uint8Array)).to.throw(TypeError, /must be a Uint8Array/);
  });
});

describe('client sessions: exactly once', () => {
  it('registers a session at the entry\'s index and applies a command once, however often it is retried', async () => {
    const r = replica();
    expect(await r.run('blank', reg(1000))).to.deep.equal(['inner-blank', { clientId: 2 }]);
    expect(r.sm.sessionCount()).to.equal(1);
    // The command and its retry in one batch: the retry answers with the first one's result.
    const [first, retry] = await r.run(cmd(2, 1, 'k=a'), cmd(2, 1, 'k=a'));
    expect(first).to.deep.equal({ value: 'a' });
    expect(retry).to.deep.equal({ value: 'a' });
    // A retry in a later batch: the cached response.
    expect(await r.run(cmd(2, 1, 'k=a'))).to.deep.equal([{ value: 'a' }]);
    expect(await r.run(cmd(2, 2, 'k=b'), cmd(2, 3, 'k=c'), cmd(2, 3, 'k=c'))).to.deep.equal([{ value: 'ab' }, { value: 'abc' }, { value: 'abc' }]);
    expect(await r.run(cmd(2, 3, 'k=c'))).to.deep.equal([{ value: 'abc' }]);
    expect(r.inner.normalCount).to.equal(3);
    expect(r.sm.query!('k')).to.equal('abc');
  });

  it('answers a stale serial, an unknown session and a malformed entry with markers, applying nothing', async () => {
    const r = replica();
    await r.run(reg(1000), cmd(1, 1, 'k=a'), cmd(1, 2, 'k=b'));
    const [stale, unknown, malformed, raw] = await r.run(cmd(1, 1, 'k=a'), cmd(99, 1, 'k=z'), new Uint8Array([9, 9]), enc.encode('k=q'));
    expect(stale).to.deep.include({ sessionError: 'stale-serial', clientId: 1, serial: 1 });
    expect(unknown).to.deep.include({ sessionError: 'expired', clientId: 99, serial: 1 });
    expect(malformed).to.deep.include({ sessionError: 'malformed', clientId: 0, serial: 0 });
    expect((malformed as { message: string }).message).to.match(/entry 6: malformed session envelope: unknown tag 0x9/);
    expect(isSessionErrorResult(raw)).to.equal(true); // "k=q" starts with 0x6b: not an envelope either
    expect(r.sm.query!('k')).to.equal('ab');
    expect(r.inner.normalCount).to.equal(2);

    for (const m of [stale, unknown, malformed]) expect(structuredClone(m)).to.deep.equal(m);
    const e1 = sessionErrorOf(stale);
    expect(e1).to.be.instanceOf(SessionSerialError).and.instanceOf(RaftError);
    expect(e1).to.include({ name: 'SessionSerialError', code: 'SessionSerial', clientId: 1, serial: 1 });
    expect(e1!.message).to.match(/serial 1 of client session 1 is stale.*at serial 2/);
    const e2 = sessionErrorOf(unknown);
    expect(e2).to.be.instanceOf(SessionExpiredError);
    expect(e2).to.include({ name: 'SessionExpiredError', code: 'SessionExpired', clientId: 99 });
    expect(sessionErrorOf(malformed)).to.be.instanceOf(SessionMalformedError).and.include({ code: 'SessionMalformed' });
    expect(sessionErrorOf({ value: 'ab' })).to.equal(null);
    expect(sessionErrorOf(null)).to.equal(null);
    expect(isSessionErrorResult({ sessionError: 'other', clientId: 1, serial: 1, message: '' })).to.equal(false);
    // Errors that crossed a thread come back as the same class.
    expect(reviveError(serializeError(e2))).to.be.instanceOf(SessionExpiredError).and.include({ clientId: 99 });
  });

  it('hands inner consecutive indexes: blanks for what it must not apply, config and blank entries unchanged', async () => {
    const r = replica();
    await r.run(reg(1000), cmd(1, 1, 'k=a'), 'config', cmd(1, 1, 'k=a'), new Uint8Array([0]));
    await r.run(encodePlain(enc.encode('p=x')), cmd(5, 1, 'k=z'), 'blank');
    expect(r.inner.seen).to.deep.equal([
      { index: 1, kind: 'blank' }, { index: 2, kind: 'normal' }, { index: 3, kind: 'config' }, { index: 4, kind: 'blank' }, { index: 5, kind: 'blank' },
      { index: 6, kind: 'normal' }, { index: 7, kind: 'blank' }, { index: 8, kind: 'blank' },
    ]);
    expect(await r.sm.lastApplied()).to.equal(8);
    expect(r.sm.query!('p')).to.equal('x');
  });

  it('works with an inner whose apply is asynchronous', async () => {
    const inner = new AppendMachine();
    const slow: StateMachine = { apply: async (es) => inner.apply(es), lastApplied: () => inner.lastApplied() };
    const sm = withSessions(slow);
    const out = sm.apply(entries(1, [reg(10), cmd(1, 1, 'k=a'), cmd(1, 1, 'k=a')]));
    expect(out).to.be.instanceOf(Promise);
    expect(await out).to.deep.equal([{ clientId: 1 }, { value: 'a' }, { value: 'a' }]);
    expect(sm.snapshot).to.equal(undefined);
    expect(sm.query).to.equal(undefined);
  });
});

describe('client sessions: expiry by log time', () => {
  it('expires a session idle longer than its timeout, by the stamped times only', async () => {
    const r = replica();
    await r.run(reg(100, 1000));
    expect(await r.run(cmd(1, 1, 'k=a', 1100))).to.deep.equal([{ value: 'a' }]); // 100 idle: still alive
    expect(r.sm.sessionCount()).to.equal(1);
    await r.run(at(1201, encodePlain(enc.encode('x=1')))); // 1100 + 100 < 1201
    expect(r.sm.sessionCount()).to.equal(0);
    expect((await r.run(cmd(1, 1, 'k=a', 1201)))[0]).to.deep.include({ sessionError: 'expired', clientId: 1 });
    expect(r.sm.query!('k')).to.equal('a');
  });

  it('never moves log time backwards when a leader\'s clock is behind', async () => {
    const r = replica();
    await r.run(reg(100, 1000));                       // session 1 at T=1000
    await r.run(reg(100, 10), cmd(1, 1, 'k=a', 20));   // behind: T stays 1000, so both are used at 1000
    // Had T gone back to 10/20, session 2 (10+100) and session 1 (20+100) would be dead by 1050.
    const out = await r.run(cmd(1, 2, 'k=b', 1050), cmd(2, 1, 'k=c', 1050));
    expect(out).to.deep.equal([{ value: 'ab' }, { value: 'abc' }]);
    // And a later leader behind cannot revive an expired session: T is already past its deadline.
    await r.run(at(1101, encodePlain(enc.encode('x=1'))));
    expect(r.sm.sessionCount()).to.equal(2);
    await r.run(at(1151, encodePlain(enc.encode('x=1'))));
    expect(r.sm.sessionCount()).to.equal(0);
    expect((await r.run(cmd(1, 3, 'k=d', 5)))[0]).to.deep.include({ sessionError: 'expired' });
  });

  it('honours per-session timeouts: a short one expires behind a long one used longer ago', async () => {
    const r = replica();
    await r.run(reg(10_000, 0), reg(100, 50));          // 1: long, oldest. 2: short, more recent.
    const out = await r.run(cmd(2, 1, 'k=x', 151), cmd(1, 1, 'k=y', 151));
    expect(out[0]).to.deep.include({ sessionError: 'expired', clientId: 2 });
    expect(out[1]).to.deep.equal({ value: 'y' });
    expect(r.sm.sessionCount()).to.equal(1);
    // A session that keeps being used never expires; one left alone does, each at its own deadline.
    await r.run(reg(300, 200), reg(50, 200));           // 5 and 6
    await r.run(cmd(6, 1, 'a=1', 240), cmd(6, 2, 'a=2', 290));
    await r.run(at(341, encodePlain(enc.encode('z=1'))));
    expect(r.sm.sessionCount()).to.equal(2);            // 6 died at 341 (290+50 < 341); 1 and 5 live
    await r.run(at(500, encodePlain(enc.encode('z=1'))));
    expect(r.sm.sessionCount()).to.equal(2);            // 5: 200 + 300 = 500 is not < 500
    await r.run(at(501, encodePlain(enc.encode('z=1'))));
    expect(r.sm.sessionCount()).to.equal(1);            // only 1 (used at 151, 10 s) is left
  });

  it('expires identically on two independent replicas fed the same entries, and on a third restored mid-way', async () => {
    const a = replica();
    const b = replica();
    const batches: Item[][] = [];
    let seed = 7; // mulberry32: a seeded generator, so the workload is the same on every run
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), seed | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      return ((x ^ (x >>> 14)) >>> 0) % n;
    };
    let index = 1;
    const serials = new Map<number, number>();
    for (let k = 0; k < 60; k++) {
      const batch: Item[] = [];
      for (let j = 0; j < 1 + rand(4); j++, index++) {
        const now = index * 10 - rand(40); // a wobbling clock, sometimes behind
        const ids = [...serials.keys()];
        if (ids.length === 0 || rand(4) === 0) { batch.push(reg(20 + rand(200), now)); serials.set(index, 0); continue; }
        const id = ids[rand(ids.length)];
        const serial = serials.get(id)! + (rand(3) === 0 ? 0 : 1);
        serials.set(id, serial);
        batch.push(cmd(id, Math.max(1, serial), `k${id}=${serial}`, now));
      }
      batches.push(batch);
    }
    const ra: unknown[] = [];
    const rb: unknown[] = [];
    const rc: unknown[] = [];
    const c = replica();
    let applied = 0;
    for (const [k, batch] of batches.entries()) {
      if (k === 30) {
        await c.sm.restore!(meta(applied), chunks(await collect(a.sm.snapshot!()), 5));
        c.skipTo(applied + 1);
        rc.push(...ra);
      }
      ra.push(...await a.run(...batch.map((x) => (x instanceof Uint8Array ? x.slice() : x))));
      rb.push(...await b.run(...batch));
      if (k >= 30) rc.push(...await c.run(...batch));
      applied += batch.length;
      expect(a.sm.sessionCount()).to.equal(b.sm.sessionCount());
      if (k >= 30) expect(c.sm.sessionCount()).to.equal(a.sm.sessionCount());
    }
    expect(ra).to.deep.equal(rb);
    expect(rc).to.deep.equal(ra);
    expect([...c.inner.data]).to.deep.equal([...a.inner.data]);
    // Some answers came from the cache (retries), not from applying again.
    expect(a.inner.normalCount).to.be.lessThan(ra.filter((x) => x !== null && typeof x === 'object' && 'value' in x).length);
    expect(ra.some((x) => isSessionErrorResult(x) && x.sessionError === 'expired')).to.equal(true);
    expect(ra.filter((x) => !isSessionErrorResult(x)).length).to.be.greaterThan(20);
    expect([...a.inner.data]).to.deep.equal([...b.inner.data]);
  });
});

describe('client sessions: snapshots', () => {
  for (const mode of ['bytes', 'promise', 'stream'] as const) {
    it(`round-trips sessions and the inner state (inner snapshot as ${mode}), also in 1-byte chunks`, async () => {
      const r = replica(new AppendMachine(mode));
      await r.run(reg(1000, 100), cmd(1, 1, 'k=a', 100), reg(50, 100), cmd(3, 1, 'j=b', 120));
      const snap = await collect(r.sm.snapshot!());
      for (const size of [1, 3, snap.length]) {
        const fresh = replica(new AppendMachine(mode));
        await fresh.sm.restore!(meta(4), chunks(snap, size));
        fresh.skipTo(5);
        expect(await fresh.sm.lastApplied()).to.equal(4);
        expect(fresh.sm.sessionCount()).to.equal(2);
        expect(fresh.sm.query!('k')).to.equal('a');
        // T came along: a register stamped 0 starts at T = 120, so it is alive at 160 (from 0 it would be dead).
        expect(await fresh.run(reg(50, 0), cmd(5, 1, 'm=1', 160))).to.deep.equal([{ clientId: 5 }, { value: '1' }]);
        // A retry after the restore is still deduplicated; the next serial applies.
        expect(await fresh.run(cmd(1, 1, 'k=a', 160), cmd(1, 2, 'k=c', 160))).to.deep.equal([{ value: 'a' }, { value: 'ac' }]);
        // Session 3 (used at 120, 50 ms) expires at 171 on the restored replica too.
        expect((await fresh.run(cmd(3, 2, 'j=x', 171)))[0]).to.deep.include({ sessionError: 'expired', clientId: 3 });
        expect(fresh.sm.query!('k')).to.equal('ac');
        expect(fresh.inner.seen.map((s) => s.index)).to.deep.equal([5, 6, 7, 8, 9]);
      }
    });
  }

  it('streams the inner snapshot without concatenating it', async () => {
    const r = replica(new AppendMachine('stream'));
    await r.run(reg(1000), cmd(1, 1, 'k=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'));
    const parts: Uint8Array[] = [];
    for await (const c of r.sm.snapshot!() as AsyncIterable<Uint8Array>) parts.push(c);
    expect(parts[0].byteLength).to.equal(16); // header, then the table, then inner's 7-byte chunks as they come
    expect(parts.slice(2).every((c) => c.byteLength <= 7)).to.equal(true);
    expect(parts.length).to.be.greaterThan(4);
  });

  it('refuses a bad header or a truncated table before inner.restore is called', async () => {
    const r = replica();
    await r.run(reg(1000), cmd(1, 1, 'k=a'));
    const snap = await collect(r.sm.snapshot!());
    const bad = (edit: (b: Uint8Array) => Uint8Array) => edit(Uint8Array.from(snap));
    const cases: [Uint8Array, RegExp][] = [
      [bad((b) => { b[0] = 0x58; return b; }), /not a session snapshot: it does not start with the magic bytes 'RSES'/],
      [bad((b) => { new DataView(b.buffer).setUint32(4, 1); return b; }), /has version 1; this build reads version 2/],
      [bad((b) => { new DataView(b.buffer).setFloat64(8, -1); return b; }), /gives its session table length as -1/],
      [bad((b) => b.subarray(0, 10)), /ends 10 bytes into its 16-byte header/],
      [bad((b) => b.subarray(0, 20)), /ends 4 bytes into its \d+-byte session table/],
      [bad((b) => { b.fill(0xff, 16, 24); return b; }), /session table has log time NaN/],
      [bad((b) => { new DataView(b.buffer).setUint32(24, 9); return b; }), /session table ends inside session 1 of 9/],
      [new Uint8Array(0), /ends 0 bytes into its 16-byte header/],
    ];
    for (const [bytes, msg] of cases) {
      const fresh = replica();
      let err: unknown = null;
      try { await fresh.sm.restore!(meta(2), chunks(bytes, 1)); } catch (e) { err = e; }
      expect(err, String(msg)).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(msg);
      expect(fresh.inner.restoreCalls).to.equal(0);
      expect(fresh.sm.sessionCount()).to.equal(0);
    }
  });

  it('has no snapshot or restore unless inner has both', () => {
    const inner = new AppendMachine();
    const noRestore: StateMachine = { apply: (es) => inner.apply(es), lastApplied: () => inner.lastApplied(), snapshot: () => inner.snapshot() };
    const noSnapshot: StateMachine = { apply: (es) => inner.apply(es), lastApplied: () => inner.lastApplied(), restore: (m, d) => inner.restore(m, d) };
    for (const sm of [withSessions(noRestore), withSessions(noSnapshot)] as SessionStateMachine[]) {
      expect(sm.snapshot).to.equal(undefined);
      expect(sm.restore).to.equal(undefined);
    }
    const full = withSessions(inner);
    expect(full.snapshot).to.be.a('function');
    expect(full.restore).to.be.a('function');
  });
});

describe('client sessions: a state machine that persists itself', () => {
  it('is refused at start (lastApplied) rather than run with an empty session table, sync or async; a restore makes it current', async () => {
    const durable = new AppendMachine();
    durable.applied = 7 as LogIndex; // came back from its own disk at index 7
    const sm = withSessions(durable);
    expect(() => sm.lastApplied()).to.throw(NotAllowedError, /at index 7 but the session table only at 0/);
    const asyncInner: StateMachine = { apply: (es) => durable.apply(es), lastApplied: async () => durable.lastApplied() };
    let refused: unknown = null;
    try { await withSessions(asyncInner).lastApplied(); } catch (err) { refused = err; }
    expect(refused).to.be.instanceOf(NotAllowedError);
    // An empty one is fine, and so is one restored from a session snapshot.
    expect(withSessions(new AppendMachine()).lastApplied()).to.equal(0);
  });
});
