// Entries and RPCs survive encode/decode exactly.
import { expect } from 'chai';
import { decodeEntries, decodeRequest, decodeResponse, encodeEntries, encodeRequest, encodeResponse } from '../../actors/raft/codec';
import type { AppendEntriesRequest, Entry, InstallSnapshotRequest, Membership, RaftRequest, RaftResponse } from '../../actors/raft/core/types';
import { MAX, ix, tm, id, ids, normal, blank, config, JOINT, UNIFORM, seededFloats, bytesOf, refuses, appendEntriesReq, voteReq, snapshotReq } from './fixtures';
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
