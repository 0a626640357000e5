/**
 * The binary codec (actors/raft/codec.ts): exact round-trips of every entry kind and RPC, zero-copy
 * payload views, and refusal of every kind of malformed input with MalformedMessageError.
 */
import { expect } from 'chai';
import {
  decodeEntries, decodeRequest, decodeResponse, encodeEntries, encodeRequest, encodeResponse,
  MAX_PAYLOAD_BYTES, validateMembership,
} from '../../actors/raft/codec';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import type {
  AppendEntriesRequest, Entry, InstallSnapshotRequest, LogIndex, Membership, NodeId, RaftRequest,
  RaftResponse, Term, VoteRequest,
} from '../../actors/raft/core/types';

const MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1

const ix = (n: number): LogIndex => n as LogIndex;
const tm = (n: number): Term => n as Term;
const id = (n: number): NodeId => n as NodeId;
const ids = (...n: number[]): NodeId[] => n.map(id);

const normal = (index: number, term: number, payload: Uint8Array | number[] = []): Entry =>
  ({ kind: 'normal', index: ix(index), term: tm(term), payload: payload instanceof Uint8Array ? payload : Uint8Array.from(payload) });
const blank = (index: number, term: number): Entry => ({ kind: 'blank', index: ix(index), term: tm(term) });
const config = (index: number, term: number, membership: Membership): Entry => ({ kind: 'config', index: ix(index), term: tm(term), membership });

const JOINT: Membership = { members: ids(1, 2, 3), nonVoters: ids(7), membersAfterConsensus: ids(2, 3, 4, 5) };
const UNIFORM: Membership = { members: ids(1), nonVoters: [], membersAfterConsensus: null };

/** Seeded PRNG (mulberry32): the fuzz below replays identically on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytesOf(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A hand-rolled writer, independent of the codec's, to build bytes the encoder would never write. */
class Bytes {
  private readonly out: number[] = [];
  u8(v: number): this { this.out.push(v & 0xff); return this; }
  u32(v: number): this { this.out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff); return this; }
  /** Writes hi and lo halves as given, so values above 2^53 can be produced. */
  u64(hi: number, lo: number): this { return this.u32(hi).u32(lo); }
  u53(v: number): this { return this.u64(Math.floor(v / 0x1_0000_0000), v >>> 0); }
  raw(b: Uint8Array | number[]): this { for (const x of b) this.out.push(x); return this; }
  blob(b: Uint8Array | number[]): this { return this.u32(b.length).raw(b); }
  done(): Uint8Array { return Uint8Array.from(this.out); }
}
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Asserts `fn` throws MalformedMessageError whose message matches `re`. */
function refuses(fn: () => unknown, re: RegExp): MalformedMessageError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(caught, 'expected a MalformedMessageError, nothing was thrown').to.be.instanceOf(MalformedMessageError);
  const err = caught as MalformedMessageError;
  expect(err.code).to.equal('MalformedMessage');
  expect(err.message).to.match(/^malformed message: /);
  expect(err.message).to.match(re);
  return err;
}

function appendEntriesReq(over: Partial<AppendEntriesRequest> = {}): AppendEntriesRequest {
  return {
    type: 'appendEntries', term: tm(5), leaderId: id(2), prevLogIndex: ix(9), prevLogTerm: tm(3),
    entries: [normal(10, 3, [1, 2, 3]), blank(11, 4), config(12, 5, JOINT), normal(13, 5, [])],
    leaderCommit: ix(8), ...over,
  };
}
const voteReq = (over: Partial<VoteRequest> = {}): VoteRequest =>
  ({ type: 'vote', term: tm(7), candidateId: id(3), lastLogIndex: ix(42), lastLogTerm: tm(6), ...over });
const snapshotReq = (over: Partial<InstallSnapshotRequest> = {}): InstallSnapshotRequest => ({
  type: 'installSnapshot', term: tm(9), leaderId: id(1), lastIncludedIndex: ix(100), lastIncludedTerm: tm(8),
  offset: 4096, data: Uint8Array.from([9, 8, 7, 6]), done: true, ...over,
});

/** Byte offsets of the AppendEntries header fields, as laid out by the codec. */
const AE = { type: 0, term: 1, leaderId: 9, prevLogIndex: 17, prevLogTerm: 25, leaderCommit: 33, count: 41, firstEntry: 45 };

describe('codec: entries', () => {
  it('round-trips an empty batch as just a 4-byte count', () => {
    const bytes = encodeEntries([]);
    expect(Array.from(bytes)).to.deep.equal([0, 0, 0, 0]);
    expect(decodeEntries(bytes)).to.deep.equal([]);
  });

  it('round-trips a normal entry with an empty payload', () => {
    const e = normal(1, 1, []);
    const out = decodeEntries(encodeEntries([e]));
    expect(out).to.deep.equal([e]);
    expect(out[0].kind).to.equal('normal');
    expect((out[0] as { payload: Uint8Array }).payload.length).to.equal(0);
  });

  it('round-trips a 1 MiB payload byte for byte', () => {
    const payload = bytesOf(mulberry32(1), 1 << 20);
    const out = decodeEntries(encodeEntries([normal(1, 1, payload), normal(2, 1, [0xff])]));
    expect(out).to.have.length(2);
    const got = (out[0] as { payload: Uint8Array }).payload;
    expect(got.length).to.equal(payload.length);
    expect(Buffer.from(got).equals(Buffer.from(payload))).to.equal(true);
    expect(Array.from((out[1] as { payload: Uint8Array }).payload)).to.deep.equal([0xff]);
  });

  it('round-trips a blank entry (no payload on the wire)', () => {
    const bytes = encodeEntries([blank(3, 2)]);
    expect(bytes.length).to.equal(4 + 1 + 8 + 8 + 4);
    expect(decodeEntries(bytes)).to.deep.equal([{ kind: 'blank', index: 3, term: 2 }]);
  });

  it('round-trips config entries, joint and uniform', () => {
    const entries = [config(1, 1, UNIFORM), config(2, 1, JOINT), config(3, 2, { members: ids(4, 5), nonVoters: ids(1, 2, 3), membersAfterConsensus: null })];
    const out = decodeEntries(encodeEntries(entries));
    expect(out).to.deep.equal(entries);
    expect((out[1] as { membership: Membership }).membership.membersAfterConsensus).to.deep.equal([2, 3, 4, 5]);
    expect((out[0] as { membership: Membership }).membership.membersAfterConsensus).to.equal(null);
  });

  it('round-trips a long mixed batch in order', () => {
    const rand = mulberry32(7);
    const entries: Entry[] = [];
    let t = 1;
    for (let i = 1; i <= 500; i++) {
      if (rand() < 0.05) t++;
      const k = i % 7;
      entries.push(k === 0 ? blank(i, t) : k === 3 ? config(i, t, JOINT) : normal(i, t, bytesOf(rand, Math.floor(rand() * 40))));
    }
    expect(decodeEntries(encodeEntries(entries))).to.deep.equal(entries);
  });

  it('decoded payloads are views into the encoded buffer, not copies', () => {
    const bytes = encodeEntries([normal(1, 1, [10, 20, 30]), normal(2, 1, [40, 50])]);
    const [a, b] = decodeEntries(bytes) as Array<Entry & { payload: Uint8Array }>;
    expect(a.payload.buffer).to.equal(bytes.buffer);
    expect(b.payload.buffer).to.equal(bytes.buffer);
    // Writing through the source shows through the views (and vice versa): shared memory.
    const at = a.payload.byteOffset - bytes.byteOffset;
    bytes[at + 1] = 99;
    expect(Array.from(a.payload)).to.deep.equal([10, 99, 30]);
    b.payload[0] = 77;
    expect(bytes[b.payload.byteOffset - bytes.byteOffset]).to.equal(77);
  });

  it('AppendEntries payloads are views into the request bytes too', () => {
    const bytes = encodeRequest(appendEntriesReq());
    const req = decodeRequest(bytes) as AppendEntriesRequest;
    const p = (req.entries[0] as { payload: Uint8Array }).payload;
    expect(p.buffer).to.equal(bytes.buffer);
    expect(Array.from(p)).to.deep.equal([1, 2, 3]);
  });

  it('decodes from a view at a non-zero offset in a larger buffer', () => {
    const entries = [normal(5, 2, [1, 2]), blank(6, 2), config(7, 3, JOINT)];
    const enc = encodeEntries(entries);
    const big = new Uint8Array(enc.length + 13);
    big.fill(0xee);
    big.set(enc, 7);
    expect(decodeEntries(big.subarray(7, 7 + enc.length))).to.deep.equal(entries);
  });

  it('keeps u53 values exact up to 2^53 - 1, across the 2^32 boundary', () => {
    for (const v of [1, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 2 ** 52 + 1, MAX - 1, MAX]) {
      const out = decodeEntries(encodeEntries([blank(v, v)]));
      expect(out[0].index, `index ${v}`).to.equal(v);
      expect(out[0].term, `term ${v}`).to.equal(v);
    }
    // A batch ending exactly at 2^53 - 1.
    const tail = [normal(MAX - 2, MAX, [1]), blank(MAX - 1, MAX), config(MAX, MAX, { members: ids(MAX), nonVoters: [], membersAfterConsensus: null })];
    expect(decodeEntries(encodeEntries(tail))).to.deep.equal(tail);
  });

  it('writes integers as big-endian u32 halves', () => {
    const bytes = encodeEntries([blank(0x1_0000_0002, 0x1f_ffff_ffff_ffff)]);
    expect(Array.from(bytes.subarray(5, 13))).to.deep.equal([0, 0, 0, 1, 0, 0, 0, 2]);
    expect(Array.from(bytes.subarray(13, 21))).to.deep.equal([0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });
});

describe('codec: RPC round-trips', () => {
  const requests: Array<[string, RaftRequest]> = [
    ['AppendEntries with entries of every kind', appendEntriesReq()],
    ['AppendEntries heartbeat (no entries)', appendEntriesReq({ entries: [], prevLogIndex: ix(0), prevLogTerm: tm(0), leaderCommit: ix(0) })],
    ['AppendEntries at 2^53 - 1', appendEntriesReq({ term: tm(MAX), leaderId: id(MAX), prevLogIndex: ix(MAX - 1), prevLogTerm: tm(MAX), leaderCommit: ix(MAX), entries: [blank(MAX, MAX)] })],
    ['Vote', voteReq()],
    ['Vote on an empty log', voteReq({ term: tm(1), lastLogIndex: ix(0), lastLogTerm: tm(0) })],
    ['Vote at 2^53 - 1', voteReq({ term: tm(MAX), candidateId: id(MAX), lastLogIndex: ix(MAX), lastLogTerm: tm(MAX) })],
    ['InstallSnapshot, last chunk', snapshotReq()],
    ['InstallSnapshot, first chunk, empty data', snapshotReq({ offset: 0, done: false, data: new Uint8Array(0) })],
    ['InstallSnapshot at 2^53 - 1', snapshotReq({ term: tm(MAX), leaderId: id(MAX), lastIncludedIndex: ix(MAX), lastIncludedTerm: tm(MAX), offset: MAX })],
  ];
  for (const [name, req] of requests) {
    it(`round-trips ${name}`, () => {
      const bytes = encodeRequest(req);
      expect(decodeRequest(bytes)).to.deep.equal(req);
      // Encoding is deterministic: the same request gives the same bytes.
      expect(Buffer.from(encodeRequest(decodeRequest(bytes))).equals(Buffer.from(bytes))).to.equal(true);
    });
  }

  const responses: Array<[string, RaftResponse]> = [
    ['AppendEntriesResponse success', { type: 'appendEntriesResponse', term: tm(5), success: true, matchIndex: ix(13), conflict: null }],
    ['AppendEntriesResponse with a conflict hint', { type: 'appendEntriesResponse', term: tm(5), success: false, matchIndex: ix(0), conflict: { index: ix(7), term: tm(2) } }],
    ['AppendEntriesResponse failure without hint', { type: 'appendEntriesResponse', term: tm(6), success: false, matchIndex: ix(0), conflict: null }],
    ['AppendEntriesResponse at 2^53 - 1', { type: 'appendEntriesResponse', term: tm(MAX), success: false, matchIndex: ix(MAX), conflict: { index: ix(MAX), term: tm(MAX) } }],
    ['VoteResponse granted', { type: 'voteResponse', term: tm(7), voteGranted: true, isCandidateUnknown: false }],
    ['VoteResponse refused, candidate unknown', { type: 'voteResponse', term: tm(7), voteGranted: false, isCandidateUnknown: true }],
    ['VoteResponse at 2^53 - 1', { type: 'voteResponse', term: tm(MAX), voteGranted: true, isCandidateUnknown: true }],
    ['InstallSnapshotResponse', { type: 'installSnapshotResponse', term: tm(9) }],
    ['InstallSnapshotResponse at 2^53 - 1', { type: 'installSnapshotResponse', term: tm(MAX) }],
  ];
  for (const [name, resp] of responses) {
    it(`round-trips ${name}`, () => {
      const bytes = encodeResponse(resp);
      expect(decodeResponse(bytes)).to.deep.equal(resp);
    });
  }

  it('requests and responses use distinct type bytes (a response is not a request)', () => {
    for (const [, resp] of responses) refuses(() => decodeRequest(encodeResponse(resp)), /unknown request type/);
    for (const [, req] of requests) refuses(() => decodeResponse(encodeRequest(req)), /unknown response type/);
  });

  it('InstallSnapshot data is a view into the request bytes', () => {
    const bytes = encodeRequest(snapshotReq());
    const req = decodeRequest(bytes) as InstallSnapshotRequest;
    expect(req.data.buffer).to.equal(bytes.buffer);
  });
});

describe('codec: malformed input is refused with MalformedMessageError', () => {
  it('refuses an empty buffer everywhere', () => {
    const empty = new Uint8Array(0);
    refuses(() => decodeRequest(empty), /truncated: message type/);
    refuses(() => decodeResponse(empty), /truncated: message type/);
    refuses(() => decodeEntries(empty), /truncated: entry count/);
  });

  it('refuses something that is not a Uint8Array', () => {
    refuses(() => decodeRequest('hello' as unknown as Uint8Array), /expected a Uint8Array/);
    refuses(() => decodeResponse([1, 2, 3] as unknown as Uint8Array), /expected a Uint8Array/);
    refuses(() => decodeEntries(null as unknown as Uint8Array), /expected a Uint8Array/);
  });

  it('refuses unknown type bytes', () => {
    for (const t of [0, 4, 10, 14, 255]) {
      refuses(() => decodeRequest(Uint8Array.of(t)), new RegExp(`unknown request type ${t}\\b`));
    }
    for (const t of [0, 1, 2, 3, 14, 255]) {
      refuses(() => decodeResponse(new Bytes().u8(t).u53(1).done()), new RegExp(`unknown response type ${t}\\b`));
    }
  });

  it('refuses an unknown entry kind', () => {
    const bytes = new Bytes().u32(1).u8(3).u53(1).u53(1).u32(0).done();
    refuses(() => decodeEntries(bytes), /unknown entry kind 3/);
  });

  it('refuses an AppendEntries truncated at every prefix length', () => {
    const bytes = encodeRequest(appendEntriesReq());
    expect(bytes.length).to.be.greaterThan(100);
    for (let n = 0; n < bytes.length; n++) {
      const err = refuses(() => decodeRequest(bytes.slice(0, n)), /truncated: /);
      expect(err.message, `prefix ${n}`).to.match(/needs \d+ bytes at offset \d+, \d+ left/);
    }
    expect(decodeRequest(bytes)).to.deep.equal(appendEntriesReq());
  });

  it('refuses every other message truncated at every prefix length', () => {
    const all: Array<[Uint8Array, (b: Uint8Array) => unknown]> = [
      [encodeRequest(voteReq()), decodeRequest],
      [encodeRequest(snapshotReq()), decodeRequest],
      [encodeResponse({ type: 'appendEntriesResponse', term: tm(5), success: false, matchIndex: ix(0), conflict: { index: ix(7), term: tm(2) } }), decodeResponse],
      [encodeResponse({ type: 'voteResponse', term: tm(7), voteGranted: true, isCandidateUnknown: false }), decodeResponse],
      [encodeResponse({ type: 'installSnapshotResponse', term: tm(9) }), decodeResponse],
      [encodeEntries([normal(1, 1, [1, 2]), blank(2, 1), config(3, 1, JOINT)]), decodeEntries],
    ];
    for (const [bytes, decode] of all) {
      for (let n = 0; n < bytes.length; n++) refuses(() => decode(bytes.slice(0, n)), /truncated: /);
    }
  });

  it('refuses trailing bytes after a valid message', () => {
    const withTail = (b: Uint8Array, extra: number): Uint8Array => { const o = new Uint8Array(b.length + extra); o.set(b); return o; };
    refuses(() => decodeRequest(withTail(encodeRequest(appendEntriesReq()), 1)), /1 trailing bytes/);
    refuses(() => decodeRequest(withTail(encodeRequest(voteReq()), 3)), /3 trailing bytes/);
    refuses(() => decodeRequest(withTail(encodeRequest(snapshotReq()), 1)), /trailing bytes/);
    refuses(() => decodeResponse(withTail(encodeResponse({ type: 'installSnapshotResponse', term: tm(1) }), 2)), /2 trailing bytes/);
    refuses(() => decodeEntries(withTail(encodeEntries([blank(1, 1)]), 1)), /1 trailing bytes/);
  });

  it('refuses non-consecutive entries (gap, repeat, step back)', () => {
    refuses(() => decodeEntries(encodeEntries([blank(1, 1), blank(3, 1)])), /not consecutive at index 3/);
    refuses(() => decodeEntries(encodeEntries([blank(4, 1), blank(4, 1)])), /not consecutive at index 4/);
    refuses(() => decodeEntries(encodeEntries([blank(4, 1), blank(3, 1)])), /not consecutive at index 3/);
    const req = appendEntriesReq({ prevLogIndex: ix(0), prevLogTerm: tm(0), entries: [blank(1, 1), blank(2, 1), blank(5, 1)] });
    refuses(() => decodeRequest(encodeRequest(req)), /not consecutive at index 5/);
  });

  it('refuses decreasing terms', () => {
    refuses(() => decodeEntries(encodeEntries([blank(1, 3), blank(2, 2)])), /terms decrease at index 2/);
    const req = appendEntriesReq({ prevLogIndex: ix(0), prevLogTerm: tm(0), entries: [blank(1, 4), blank(2, 3)] });
    refuses(() => decodeRequest(encodeRequest(req)), /terms decrease at index 2/);
  });

  it('refuses an entry index of 0', () => {
    refuses(() => decodeEntries(encodeEntries([blank(0, 1)])), /entry index must be >= 1/);
  });

  it('refuses an AppendEntries whose entry term is above the request term', () => {
    const req = appendEntriesReq({ term: tm(4), prevLogIndex: ix(0), prevLogTerm: tm(0), entries: [blank(1, 4), blank(2, 5)] });
    refuses(() => decodeRequest(encodeRequest(req)), /entry term above the request term/);
  });

  it('refuses an AppendEntries whose first entry does not follow prevLogIndex', () => {
    refuses(() => decodeRequest(encodeRequest(appendEntriesReq({ prevLogIndex: ix(8) }))), /first entry 10 does not follow prevLogIndex 8/);
    refuses(() => decodeRequest(encodeRequest(appendEntriesReq({ prevLogIndex: ix(10) }))), /first entry 10 does not follow prevLogIndex 10/);
  });

  it('refuses an AppendEntries whose entries have a term below prevLogTerm, or prevLogTerm above its term', () => {
    refuses(() => decodeRequest(encodeRequest(appendEntriesReq({ prevLogTerm: tm(4) }))), /entry term below prevLogTerm/);
    refuses(() => decodeRequest(encodeRequest(appendEntriesReq({ entries: [], prevLogTerm: tm(6) }))), /prevLogTerm above the request term/);
  });

  it('refuses leaderId / candidateId 0', () => {
    refuses(() => decodeRequest(encodeRequest(appendEntriesReq({ leaderId: id(0) }))), /leaderId must be >= 1/);
    refuses(() => decodeRequest(encodeRequest(snapshotReq({ leaderId: id(0) }))), /leaderId must be >= 1/);
    refuses(() => decodeRequest(encodeRequest(voteReq({ candidateId: id(0) }))), /candidateId must be >= 1/);
  });

  it('refuses a vote request in term 0 or with lastLogTerm above its term', () => {
    refuses(() => decodeRequest(encodeRequest(voteReq({ term: tm(0), lastLogTerm: tm(0) }))), /vote request in term 0/);
    refuses(() => decodeRequest(encodeRequest(voteReq({ term: tm(3), lastLogTerm: tm(4) }))), /lastLogTerm above the request term/);
  });

  it('refuses a blank entry that carries a payload', () => {
    const bytes = new Bytes().u32(1).u8(1).u53(1).u53(1).blob([0]).done();
    refuses(() => decodeEntries(bytes), /blank entry with a payload/);
  });

  describe('config entries', () => {
    const configBytes = (body: Uint8Array | string): Uint8Array =>
      new Bytes().u32(1).u8(2).u53(1).u53(1).blob(typeof body === 'string' ? utf8(body) : body).done();

    it('accepts a hand-built valid config (the test builder agrees with the codec)', () => {
      expect(decodeEntries(configBytes(JSON.stringify(JOINT)))).to.deep.equal([config(1, 1, JOINT)]);
    });

    it('refuses bad JSON', () => {
      for (const body of ['', '{', '{"members":[1],', 'nul', '[1,2', '{members:[1]}']) {
        refuses(() => decodeEntries(configBytes(body)), /config entry is not JSON/);
      }
    });

    it('refuses invalid UTF-8', () => {
      refuses(() => decodeEntries(configBytes(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d))), /config entry is not JSON/);
    });

    it('refuses JSON that is not a membership object', () => {
      for (const body of ['null', '42', '"members"', 'true']) {
        refuses(() => decodeEntries(configBytes(body)), /membership must be an object/);
      }
      refuses(() => decodeEntries(configBytes('[1,2]')), /members must be an array/);
    });

    it('refuses a membership with no members', () => {
      refuses(() => decodeEntries(configBytes('{"members":[],"nonVoters":[],"membersAfterConsensus":null}')), /membership has no members/);
    });

    it('refuses duplicate ids', () => {
      refuses(() => decodeEntries(configBytes('{"members":[1,2,1],"nonVoters":[],"membersAfterConsensus":null}')), /members has duplicate ids/);
      refuses(() => decodeEntries(configBytes('{"members":[1],"nonVoters":[4,4],"membersAfterConsensus":null}')), /nonVoters has duplicate ids/);
      refuses(() => decodeEntries(configBytes('{"members":[1],"nonVoters":[],"membersAfterConsensus":[2,3,2]}')), /membersAfterConsensus has duplicate ids/);
    });

    it('refuses bad node ids and missing fields', () => {
      const cases: Array<[string, RegExp]> = [
        ['{"members":[0],"nonVoters":[],"membersAfterConsensus":null}', /members holds a bad node id 0/],
        ['{"members":[-1],"nonVoters":[],"membersAfterConsensus":null}', /members holds a bad node id -1/],
        ['{"members":[1.5],"nonVoters":[],"membersAfterConsensus":null}', /members holds a bad node id 1.5/],
        ['{"members":["1"],"nonVoters":[],"membersAfterConsensus":null}', /members holds a bad node id 1/],
        ['{"members":[9007199254740992],"nonVoters":[],"membersAfterConsensus":null}', /members holds a bad node id/],
        ['{"members":[1],"membersAfterConsensus":null}', /nonVoters must be an array/],
        ['{"members":[1],"nonVoters":[]}', /membersAfterConsensus must be an array/],
        ['{"nonVoters":[],"membersAfterConsensus":null}', /members must be an array/],
      ];
      for (const [body, re] of cases) refuses(() => decodeEntries(configBytes(body)), re);
    });

    it('validateMembership is the same check, usable on its own', () => {
      expect(validateMembership(JSON.parse(JSON.stringify(JOINT)))).to.deep.equal(JOINT);
      refuses(() => validateMembership({ members: [], nonVoters: [], membersAfterConsensus: null }), /no members/);
    });
  });

  it('refuses a bool byte other than 0 or 1', () => {
    const vr = encodeResponse({ type: 'voteResponse', term: tm(7), voteGranted: true, isCandidateUnknown: false });
    const a = vr.slice(); a[9] = 2;
    refuses(() => decodeResponse(a), /voteGranted must be 0 or 1, got 2/);
    const b = vr.slice(); b[10] = 2;
    refuses(() => decodeResponse(b), /isCandidateUnknown must be 0 or 1, got 2/);
    const ar = encodeResponse({ type: 'appendEntriesResponse', term: tm(1), success: true, matchIndex: ix(3), conflict: null });
    const c = ar.slice(); c[9] = 2;
    refuses(() => decodeResponse(c), /success must be 0 or 1, got 2/);
    const d = ar.slice(); d[18] = 2;
    refuses(() => decodeResponse(d), /has conflict must be 0 or 1, got 2/);
    const sr = encodeRequest(snapshotReq());
    const e = sr.slice(); e[41] = 2;
    refuses(() => decodeRequest(e), /done must be 0 or 1, got 2/);
  });

  it('refuses a length field claiming more than MAX_PAYLOAD_BYTES, without allocating it', () => {
    refuses(() => decodeEntries(new Bytes().u32(1).u8(0).u53(1).u53(1).u32(MAX_PAYLOAD_BYTES + 1).done()),
      new RegExp(`entry payload of ${MAX_PAYLOAD_BYTES + 1} bytes exceeds ${MAX_PAYLOAD_BYTES}`));
    refuses(() => decodeEntries(new Bytes().u32(1).u8(0).u53(1).u53(1).u32(0xffff_ffff).done()), /exceeds/);
    const snap = encodeRequest(snapshotReq({ data: new Uint8Array(0) }));
    const s = snap.slice(); new DataView(s.buffer).setUint32(42, MAX_PAYLOAD_BYTES + 1);
    refuses(() => decodeRequest(s), /snapshot data of \d+ bytes exceeds/);
    // Exactly MAX_PAYLOAD_BYTES is within the bound: it fails only because the bytes are not there.
    refuses(() => decodeEntries(new Bytes().u32(1).u8(0).u53(1).u53(1).u32(MAX_PAYLOAD_BYTES).done()), /truncated: entry payload/);
  });

  it('refuses an entry count the remaining bytes cannot hold, without allocating for it', () => {
    // Every entry takes at least 21 bytes (kind, index, term, length), so a count above
    // remaining / 21 is corrupt. The decoder must refuse it before sizing anything by it: a
    // 4-byte message claiming ~30 million entries must not allocate a 30-million-slot array.
    const counts = [2, 1000, 16_777_216, 30_000_000, 0xffff_ffff];
    const biggest: number[] = [];
    const RealArray = globalThis.Array;
    const spy = new Proxy(RealArray, {
      construct(target, args, newTarget) {
        if (args.length === 1 && typeof args[0] === 'number') biggest.push(args[0]);
        return Reflect.construct(target, args, newTarget);
      },
    });
    const refusedAll: boolean[] = [];
    (globalThis as { Array: ArrayConstructor }).Array = spy;
    try {
      for (const n of counts) {
        try { decodeEntries(new Bytes().u32(n).done()); refusedAll.push(false); } catch (e) { refusedAll.push(e instanceof MalformedMessageError); }
        const ae = encodeRequest(appendEntriesReq({ entries: [] }));
        new DataView(ae.buffer, ae.byteOffset).setUint32(AE.count, n);
        try { decodeRequest(ae); refusedAll.push(false); } catch (e) { refusedAll.push(e instanceof MalformedMessageError); }
      }
    } finally {
      (globalThis as { Array: ArrayConstructor }).Array = RealArray;
    }
    expect(refusedAll).to.deep.equal(counts.flatMap(() => [true, true]));
    // Nothing was sized by the claimed count (an input of at most 45 bytes holds at most 2 entries).
    expect(biggest.filter((n) => n > 2), 'arrays sized by an unchecked entry count').to.deep.equal([]);
  });

  it('refuses values of 2^53 and above in every integer field', () => {
    const valid = encodeRequest(appendEntriesReq({ entries: [], prevLogTerm: tm(0), prevLogIndex: ix(0), leaderCommit: ix(0) }));
    for (const [field, off] of [['term', AE.term], ['leaderId', AE.leaderId], ['prevLogIndex', AE.prevLogIndex], ['prevLogTerm', AE.prevLogTerm], ['leaderCommit', AE.leaderCommit]] as const) {
      for (const hi of [0x20_0000, 0x8000_0000, 0xffff_ffff]) {
        const b = valid.slice();
        new DataView(b.buffer).setUint32(off, hi);
        refuses(() => decodeRequest(b), new RegExp(`${field} exceeds 2\\^53`));
      }
    }
    refuses(() => decodeEntries(new Bytes().u32(1).u8(1).u64(0x20_0000, 0).u53(1).u32(0).done()), /entry index exceeds 2\^53/);
    refuses(() => decodeEntries(new Bytes().u32(1).u8(1).u53(1).u64(0x20_0000, 0).u32(0).done()), /entry term exceeds 2\^53/);
    refuses(() => decodeResponse(new Bytes().u8(13).u64(0x20_0000, 0).done()), /term exceeds 2\^53/);
    refuses(() => decodeResponse(new Bytes().u8(11).u53(1).u8(0).u64(0xffff_ffff, 0xffff_ffff).u8(0).done()), /matchIndex exceeds 2\^53/);
    refuses(() => decodeRequest(new Bytes().u8(3).u53(1).u53(1).u53(1).u53(1).u64(0x20_0000, 1).u8(1).u32(0).done()), /offset exceeds 2\^53/);
    // 2^53 - 1 itself (hi = 0x1fffff, lo = 0xffffffff) is accepted.
    expect(decodeResponse(new Bytes().u8(13).u64(0x1f_ffff, 0xffff_ffff).done())).to.deep.equal({ type: 'installSnapshotResponse', term: MAX });
  });

  it('an error carries the field and position, so a log line says what was wrong', () => {
    const bytes = encodeRequest(voteReq()).slice(0, 12);
    const err = refuses(() => decodeRequest(bytes), /truncated: candidateId needs 8 bytes at offset 9, 3 left/);
    expect(err.reason).to.equal('truncated: candidateId needs 8 bytes at offset 9, 3 left');
    expect(err.name).to.equal('MalformedMessageError');
  });
});

// ---- fuzz ----

const isSafe = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** Structural validity of decoded entries: what the rest of the system relies on. */
function checkEntries(entries: readonly Entry[]): void {
  expect(entries).to.be.an('array');
  entries.forEach((e, i) => {
    expect(['normal', 'blank', 'config']).to.include(e.kind);
    expect(isSafe(e.index, 1), 'index').to.equal(true);
    expect(isSafe(e.term, 0), 'term').to.equal(true);
    if (i > 0) {
      expect(e.index).to.equal(entries[i - 1].index + 1);
      expect(e.term).to.be.at.least(entries[i - 1].term);
    }
    if (e.kind === 'normal') expect(e.payload).to.be.instanceOf(Uint8Array);
    if (e.kind === 'config') {
      const m = e.membership;
      expect(m.members.length).to.be.greaterThan(0);
      for (const list of [m.members, m.nonVoters, m.membersAfterConsensus ?? []]) {
        for (const x of list) expect(isSafe(x, 1), `node id ${x}`).to.equal(true);
        expect(new Set(list).size).to.equal(list.length);
      }
    }
  });
}

function checkRequest(r: RaftRequest): void {
  expect(isSafe(r.term, 0)).to.equal(true);
  switch (r.type) {
    case 'appendEntries':
      for (const v of [r.prevLogIndex, r.prevLogTerm, r.leaderCommit]) expect(isSafe(v, 0)).to.equal(true);
      expect(isSafe(r.leaderId, 1)).to.equal(true);
      expect(r.prevLogTerm).to.be.at.most(r.term);
      checkEntries(r.entries);
      if (r.entries.length > 0) {
        expect(r.entries[0].index).to.equal(r.prevLogIndex + 1);
        expect(r.entries[0].term).to.be.at.least(r.prevLogTerm);
        expect(r.entries[r.entries.length - 1].term).to.be.at.most(r.term);
      }
      break;
    case 'vote':
      expect(isSafe(r.candidateId, 1) && isSafe(r.lastLogIndex, 0) && isSafe(r.lastLogTerm, 0)).to.equal(true);
      expect(r.term).to.be.at.least(1);
      expect(r.lastLogTerm).to.be.at.most(r.term);
      break;
    case 'installSnapshot':
      expect(isSafe(r.leaderId, 1) && isSafe(r.lastIncludedIndex, 0) && isSafe(r.lastIncludedTerm, 0) && isSafe(r.offset, 0)).to.equal(true);
      expect(typeof r.done).to.equal('boolean');
      expect(r.data).to.be.instanceOf(Uint8Array);
      break;
    default: expect.fail(`decoded an unknown request type ${(r as { type: string }).type}`);
  }
}

function checkResponse(r: RaftResponse): void {
  expect(isSafe(r.term, 0)).to.equal(true);
  switch (r.type) {
    case 'appendEntriesResponse':
      expect(typeof r.success).to.equal('boolean');
      expect(isSafe(r.matchIndex, 0)).to.equal(true);
      if (r.conflict !== null) expect(isSafe(r.conflict.index, 0) && isSafe(r.conflict.term, 0)).to.equal(true);
      break;
    case 'voteResponse':
      expect(typeof r.voteGranted).to.equal('boolean');
      expect(typeof r.isCandidateUnknown).to.equal('boolean');
      break;
    case 'installSnapshotResponse': break;
    default: expect.fail(`decoded an unknown response type ${(r as { type: string }).type}`);
  }
}

describe('codec: seeded fuzz (random byte flips of valid encodings)', () => {
  interface Target { readonly name: string; readonly bytes: Uint8Array; decodeAndCheck(b: Uint8Array): void }
  const targets: Target[] = [];
  const addReq = (name: string, r: RaftRequest): void => {
    targets.push({ name, bytes: encodeRequest(r), decodeAndCheck: (b) => {
      const d = decodeRequest(b);
      checkRequest(d);
      expect(decodeRequest(encodeRequest(d))).to.deep.equal(d); // what decodes re-encodes faithfully
    } });
  };
  const addResp = (name: string, r: RaftResponse): void => {
    targets.push({ name, bytes: encodeResponse(r), decodeAndCheck: (b) => {
      const d = decodeResponse(b);
      checkResponse(d);
      expect(decodeResponse(encodeResponse(d))).to.deep.equal(d);
    } });
  };
  addReq('appendEntries', appendEntriesReq());
  addReq('appendEntries small', appendEntriesReq({ term: tm(2), prevLogIndex: ix(0), prevLogTerm: tm(0), entries: [normal(1, 1, [5]), blank(2, 2)] }));
  addReq('vote', voteReq());
  addReq('installSnapshot', snapshotReq());
  addResp('appendEntriesResponse', { type: 'appendEntriesResponse', term: tm(5), success: false, matchIndex: ix(0), conflict: { index: ix(7), term: tm(2) } });
  addResp('voteResponse', { type: 'voteResponse', term: tm(7), voteGranted: true, isCandidateUnknown: false });
  addResp('installSnapshotResponse', { type: 'installSnapshotResponse', term: tm(9) });
  const entryBatch = [normal(1, 1, [1, 2, 3]), blank(2, 1), config(3, 2, JOINT), normal(4, 2, [])];
  targets.push({ name: 'entries', bytes: encodeEntries(entryBatch), decodeAndCheck: (b) => {
    const d = decodeEntries(b);
    checkEntries(d);
    expect(decodeEntries(encodeEntries(d))).to.deep.equal(d);
  } });

  it('every flip either decodes to a valid message or throws MalformedMessageError (2000 cases, seed 0xC0DEC)', () => {
    const rand = mulberry32(0xc0dec);
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const t = targets[Math.floor(rand() * targets.length)];
      const b = t.bytes.slice();
      const flips = 1 + Math.floor(rand() * 4);
      const where: number[] = [];
      for (let f = 0; f < flips; f++) {
        const pos = Math.floor(rand() * b.length);
        // Mostly single-bit flips, sometimes a whole random byte.
        b[pos] = rand() < 0.7 ? b[pos] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
        where.push(pos);
      }
      try {
        t.decodeAndCheck(b);
        accepted++;
      } catch (e) {
        if (e instanceof MalformedMessageError) { refused++; continue; }
        throw new Error(`case ${i} (${t.name}, bytes changed at ${where.join(',')}): decode threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
    }
    // Both outcomes occur: the fuzz really reaches the validators and the accepting paths.
    expect(refused).to.be.greaterThan(100);
    expect(accepted).to.be.greaterThan(100);
    expect(refused + accepted).to.equal(2000);
  });

  it('random garbage of every short length is refused or decoded, never anything else', () => {
    const rand = mulberry32(42);
    for (let i = 0; i < 2000; i++) {
      const b = bytesOf(rand, Math.floor(rand() * 64));
      // Half the time make the first bytes plausible so the decoders get past the first check: a
      // known type byte for RPCs, a small entry count for entry batches.
      const shape = rand() < 0.5;
      const asRpc = b.slice();
      if (shape && asRpc.length > 0) asRpc[0] = [1, 2, 3, 11, 12, 13][Math.floor(rand() * 6)];
      const asEntries = b.slice();
      if (shape && asEntries.length >= 3) { asEntries[0] = 0; asEntries[1] = 0; asEntries[2] = 0; }
      const cases = [[decodeRequest, checkRequest, asRpc], [decodeResponse, checkResponse, asRpc], [decodeEntries, checkEntries, asEntries]] as const;
      for (const [decode, check, input] of cases) {
        try {
          (check as (x: unknown) => void)((decode as (x: Uint8Array) => unknown)(input));
        } catch (e) {
          if (!(e instanceof MalformedMessageError)) throw new Error(`case ${i} [${Array.from(b).join(',')}]: ${(e as Error)?.message}`);
        }
      }
    }
  });
});
