// Entries and RPCs survive encode/decode exactly.
import { expect } from 'chai';
import { serialize, deserialize } from 'node:v8';
import {
  decodeClientRequest, decodeClientResponse, decodeEntries, decodeRequest, decodeResponse, encodeClientRequest, encodeClientResponse,
  encodeEntries, encodeRequest, encodeResponse, isClientRequest, type ClientRequest, type ClientResponse,
} from '../../actors/raft/codec';
import type { AppendEntriesRequest, Entry, InstallSnapshotRequest, Membership, RaftRequest, RaftResponse } from '../../actors/raft/core/types';
import {
  MAX, ix, tm, id, ids, normal, blank, config, JOINT, UNIFORM, seededFloats, bytesOf, refuses, appendEntriesReq, voteReq, snapshotReq,
  voteResp, timeoutNowReq, forwardWrite, forwardRead, clientOk, clientError, VOTE, FWD, OK, utf8,
} from './fixtures';
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
    const payload = bytesOf(seededFloats(1), 1 << 20);
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
    const rand = seededFloats(7);
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
    ['Vote, pre-vote', voteReq({ preVote: true })],
    ['Vote, transfer', voteReq({ transfer: true })],
    ['Vote, pre-vote and transfer', voteReq({ preVote: true, transfer: true })],
    ['Vote, pre-vote at 2^53 - 1', voteReq({ term: tm(MAX), candidateId: id(MAX), lastLogIndex: ix(MAX), lastLogTerm: tm(MAX), preVote: true, transfer: true })],
    ['TimeoutNow', timeoutNowReq()],
    ['TimeoutNow in term 1 from node 1', timeoutNowReq({ term: tm(1), leaderId: id(1) })],
    ['TimeoutNow at 2^53 - 1', timeoutNowReq({ term: tm(MAX), leaderId: id(MAX) })],
    ['InstallSnapshot, last chunk', snapshotReq()],
    ['InstallSnapshot, first chunk, empty data', snapshotReq({ offset: 0, done: false, data: new Uint8Array(0) })],
    ['InstallSnapshot at 2^53 - 1', snapshotReq({ term: tm(MAX), leaderId: id(MAX), lastIncludedIndex: ix(MAX), lastIncludedTerm: tm(MAX), offset: MAX - 4, byteLength: MAX, membershipIndex: ix(MAX), checksum: 0xffff_ffff })],
    ['InstallSnapshot, a middle chunk of a joint config', snapshotReq({ offset: 0, done: false, byteLength: 1 << 20, membership: JOINT, snapshotId: 'x' })],
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
    ['VoteResponse to a pre-vote, granted', voteResp({ preVote: true })],
    ['VoteResponse to a pre-vote, refused', voteResp({ preVote: true, voteGranted: false })],
    ['VoteResponse to a pre-vote, refused, candidate unknown, at 2^53 - 1', voteResp({ term: tm(MAX), preVote: true, voteGranted: false, isCandidateUnknown: true })],
    ['TimeoutNowResponse', { type: 'timeoutNowResponse', term: tm(8) }],
    ['TimeoutNowResponse in term 0', { type: 'timeoutNowResponse', term: tm(0) }],
    ['TimeoutNowResponse at 2^53 - 1', { type: 'timeoutNowResponse', term: tm(MAX) }],
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

describe('codec: vote flags and TimeoutNow on the wire', () => {
  it('a vote request carries its flags in one trailing byte: pre-vote 1, transfer 2, both 3', () => {
    const cases: Array<[Parameters<typeof voteReq>[0], number]> = [
      [{}, 0], [{ preVote: true }, 1], [{ transfer: true }, 2], [{ preVote: true, transfer: true }, 3],
    ];
    for (const [over, flags] of cases) {
      const bytes = encodeRequest(voteReq(over));
      expect(bytes.length, JSON.stringify(over)).to.equal(VOTE.length);
      expect(bytes[VOTE.flags], JSON.stringify(over)).to.equal(flags);
      const out = decodeRequest(bytes);
      // A flag that is off is absent from the decoded request, not false.
      expect(Object.keys(out).sort(), JSON.stringify(over)).to.deep.equal(Object.keys(voteReq(over)).sort());
    }
  });

  it('flags set to false encode like absent ones, and decode as absent', () => {
    const plain = encodeRequest(voteReq());
    const falsy = encodeRequest(voteReq({ preVote: false, transfer: false }));
    expect(Buffer.from(falsy).equals(Buffer.from(plain))).to.equal(true);
    expect(decodeRequest(falsy)).to.deep.equal(voteReq());
  });

  it('a vote response carries preVote as a last 0/1 byte; a plain one decodes without the field', () => {
    const pre = encodeResponse(voteResp({ preVote: true }));
    const plain = encodeResponse(voteResp());
    expect(pre.length).to.equal(12);
    expect(plain.length).to.equal(12);
    expect([pre[11], plain[11]]).to.deep.equal([1, 0]);
    expect(decodeResponse(plain)).to.not.have.property('preVote');
    expect(decodeResponse(encodeResponse(voteResp({ preVote: false })))).to.deep.equal(voteResp());
  });

  it('TimeoutNow is type 4 (term, leaderId) and its response type 14 (term)', () => {
    const req = encodeRequest(timeoutNowReq({ term: tm(0x1_0000_0002), leaderId: id(5) }));
    expect(Array.from(req)).to.deep.equal([4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
    const resp = encodeResponse({ type: 'timeoutNowResponse', term: tm(3) });
    expect(Array.from(resp)).to.deep.equal([14, 0, 0, 0, 0, 0, 0, 0, 3]);
  });
});

describe('codec: forwarded client requests and responses', () => {
  const requests: Array<[string, ClientRequest]> = [
    ['forwardRead', forwardRead()],
    ['forwardRead from node 2^53 - 1', forwardRead(MAX)],
    ['forwardWrite, committed', forwardWrite()],
    ['forwardWrite, applied', forwardWrite({ responseMode: 'applied' })],
    ['forwardWrite with an empty payload', forwardWrite({ payload: new Uint8Array(0) })],
    ['forwardWrite from node 2^53 - 1, applied', forwardWrite({ from: id(MAX), responseMode: 'applied' })],
    ['forwardWrite with a 256 KiB payload', forwardWrite({ payload: bytesOf(seededFloats(21), 256 * 1024) })],
  ];
  for (const [name, req] of requests) {
    it(`round-trips ${name}`, () => {
      const bytes = encodeClientRequest(req);
      expect(isClientRequest(bytes), 'isClientRequest').to.equal(true);
      const out = decodeClientRequest(bytes);
      expect(out).to.deep.equal(req);
      expect(Buffer.from(encodeClientRequest(out)).equals(Buffer.from(bytes))).to.equal(true);
    });
  }

  const result = serialize({ ok: true, value: 'v1', nested: [1, 2n, new Map([['k', 'v']])] });
  const responses: Array<[string, ClientResponse]> = [
    ['clientOk without a result', clientOk()],
    ['clientOk with a v8-serialized result', clientOk({ result: new Uint8Array(result) })],
    ['clientOk with an empty result', clientOk({ result: new Uint8Array(0) })],
    ['clientOk at 2^53 - 1', clientOk({ index: ix(MAX), term: tm(MAX), result: Uint8Array.of(0) })],
    ['clientOk at index 0 term 0', clientOk({ index: ix(0), term: tm(0) })],
    ['clientError with a leader', clientError()],
    ['clientError without a leader', clientError({ leaderId: null, message: 'no leader known' })],
    ['clientError with props', clientError({
      code: 'LeaderTransfer', message: 'transfer failed', leaderId: id(MAX),
      props: { reason: 'timeout', caughtUp: false, target: 3, nested: { a: [1, 'two', null] } },
    })],
    ['clientError with non-ASCII text', clientError({ code: 'Кодировка', message: 'naïve 👍 — 日本語', props: { 'ключ': 'значение ✓' } })],
    ['clientError with empty code and message', clientError({ code: '', message: '', leaderId: null })],
  ];
  for (const [name, resp] of responses) {
    it(`round-trips ${name}`, () => {
      const bytes = encodeClientResponse(resp);
      const out = decodeClientResponse(bytes);
      expect(out).to.deep.equal(resp);
      expect(Buffer.from(encodeClientResponse(out)).equals(Buffer.from(bytes))).to.equal(true);
    });
  }

  it('a clientOk result deserializes to the value the leader serialized', () => {
    const out = decodeClientResponse(encodeClientResponse(clientOk({ result: new Uint8Array(result) })));
    expect(out.type).to.equal('clientOk');
    const r = (out as Extract<ClientResponse, { type: 'clientOk' }>).result!;
    expect(deserialize(r)).to.deep.equal({ ok: true, value: 'v1', nested: [1, 2n, new Map([['k', 'v']])] });
  });

  it('clientOk without a result decodes without the field (not result: undefined)', () => {
    expect(decodeClientResponse(encodeClientResponse(clientOk()))).to.not.have.property('result');
  });

  it('forwardWrite payloads and clientOk results are views into the message bytes', () => {
    const wb = encodeClientRequest(forwardWrite());
    const w = decodeClientRequest(wb) as Extract<ClientRequest, { type: 'forwardWrite' }>;
    expect(w.payload.buffer).to.equal(wb.buffer);
    expect(w.payload.byteOffset - wb.byteOffset).to.equal(FWD.payload);
    const ob = encodeClientResponse(clientOk({ result: Uint8Array.of(7, 8) }));
    const o = decodeClientResponse(ob) as Extract<ClientResponse, { type: 'clientOk' }>;
    expect(o.result!.buffer).to.equal(ob.buffer);
    expect(o.result!.byteOffset - ob.byteOffset).to.equal(OK.result);
  });

  it('lays forwarded messages out as documented: type byte, from, responseMode, length-prefixed payload', () => {
    expect(Array.from(encodeClientRequest(forwardRead(0x1_0000_0001)))).to.deep.equal([22, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(Array.from(encodeClientRequest(forwardWrite({ from: id(2), responseMode: 'applied', payload: Uint8Array.of(9) }))))
      .to.deep.equal([21, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 1, 9]);
    expect(Array.from(encodeClientResponse(clientOk({ index: ix(3), term: tm(2) })))).to.deep.equal([31, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    // clientError: code, message, leaderId (0 for none), props as JSON.
    const err = encodeClientResponse(clientError({ code: 'E', message: 'm', leaderId: null, props: { a: 1 } }));
    expect(Array.from(err)).to.deep.equal([32, 0, 0, 0, 1, 69, 0, 0, 0, 1, 109, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, ...utf8('{"a":1}')]);
  });

  it('props that JSON cannot hold are left out: the rest of the error still crosses', () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    for (const props of [circular, { big: 10n }]) {
      const out = decodeClientResponse(encodeClientResponse(clientError({ props })));
      expect(out).to.deep.equal(clientError({ props: {} }));
    }
    // Fields JSON drops (undefined, functions) are dropped one by one, the others kept.
    const out = decodeClientResponse(encodeClientResponse(clientError({ props: { keep: 'x', gone: undefined, fn: () => 1 } })));
    expect(out).to.deep.equal(clientError({ props: { keep: 'x' } }));
  });

  it('isClientRequest tells forwarded requests from Raft RPCs and anything else by the type byte', () => {
    for (const [, req] of requests) expect(isClientRequest(encodeClientRequest(req))).to.equal(true);
    for (const req of [appendEntriesReq(), voteReq({ preVote: true }), snapshotReq(), timeoutNowReq()]) expect(isClientRequest(encodeRequest(req)), req.type).to.equal(false);
    for (const [, resp] of responses) expect(isClientRequest(encodeClientResponse(resp))).to.equal(false);
    expect(isClientRequest(new Uint8Array(0))).to.equal(false);
    for (const notBytes of [null, undefined, 'x', [21], { 0: 21, length: 1 }, Buffer.from([21]).buffer]) {
      expect(isClientRequest(notBytes as unknown as Uint8Array), String(notBytes)).to.equal(false);
    }
    // Only the first byte decides: a Buffer (a Uint8Array) with type 21 counts, however malformed the rest.
    expect(isClientRequest(Buffer.from([21]))).to.equal(true);
    expect(isClientRequest(Uint8Array.of(22, 0xff))).to.equal(true);
  });

  it('client messages and Raft RPCs never decode as each other', () => {
    for (const [, req] of requests) {
      const b = encodeClientRequest(req);
      refuses(() => decodeRequest(b), /unknown request type 2[12]/);
      refuses(() => decodeResponse(b), /unknown response type 2[12]/);
      refuses(() => decodeClientResponse(b), /unknown client response type 2[12]/);
    }
    for (const [, resp] of responses) {
      const b = encodeClientResponse(resp);
      refuses(() => decodeRequest(b), /unknown request type 3[12]/);
      refuses(() => decodeResponse(b), /unknown response type 3[12]/);
      refuses(() => decodeClientRequest(b), /unknown client request type 3[12]/);
    }
    refuses(() => decodeClientRequest(encodeRequest(voteReq())), /unknown client request type 2\b/);
    refuses(() => decodeClientRequest(encodeRequest(timeoutNowReq())), /unknown client request type 4\b/);
    refuses(() => decodeClientResponse(encodeResponse(voteResp())), /unknown client response type 12\b/);
    refuses(() => decodeClientResponse(encodeResponse({ type: 'timeoutNowResponse', term: tm(1) })), /unknown client response type 14\b/);
  });
});
