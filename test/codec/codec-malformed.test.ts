// Malformed input is refused with MalformedMessageError and a message that says why.
import { expect } from 'chai';
import {
  decodeClientRequest, decodeClientResponse, decodeEntries, decodeRequest, decodeResponse, encodeClientRequest, encodeClientResponse,
  encodeEntries, encodeRequest, encodeResponse, MAX_PAYLOAD_BYTES, validateMembership,
} from '../../actors/raft/codec';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import {
  MAX, ix, tm, id, normal, blank, config, JOINT, Bytes, utf8, refuses, appendEntriesReq, voteReq, snapshotReq, AE,
  voteResp, timeoutNowReq, forwardWrite, forwardRead, clientOk, clientError, VOTE, FWD, OK,
} from './fixtures';
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
    for (const t of [0, 5, 10, 15, 21, 255]) {
      refuses(() => decodeRequest(Uint8Array.of(t)), new RegExp(`unknown request type ${t}\\b`));
    }
    for (const t of [0, 1, 2, 3, 15, 31, 255]) {
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

  it('refuses an InstallSnapshot whose description does not hold together', () => {
    const bad: Array<[Partial<Parameters<typeof snapshotReq>[0]>, RegExp]> = [
      [{ snapshotId: '' }, /snapshot id must be 1-128 characters/],
      [{ snapshotId: '../etc/passwd' }, /snapshot id must be/],
      [{ snapshotId: 'x'.repeat(129) }, /snapshot id must be/],
      [{ lastIncludedIndex: ix(0), membershipIndex: ix(0) }, /lastIncludedIndex must be >= 1/],
      [{ membershipIndex: ix(101) }, /membershipIndex 101 is above lastIncludedIndex 100/],
      [{ lastIncludedTerm: tm(10) }, /lastIncludedTerm 10 is above the request's term 9/],
      [{ offset: 4098 }, /runs past the snapshot's 4100 bytes/],
      [{ offset: 0, done: true }, /the last chunk ends at 4, not at the snapshot's 4100 bytes/],
      [{ membership: { members: [], nonVoters: [], membersAfterConsensus: null } }, /membership has no members/],
    ];
    for (const [over, re] of bad) refuses(() => decodeRequest(encodeRequest(snapshotReq(over as never))), re);
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

describe('codec: malformed vote flags, TimeoutNow and forwarded client messages', () => {
  const withTail = (b: Uint8Array, extra: number): Uint8Array => { const o = new Uint8Array(b.length + extra); o.set(b); return o; };
  /** Every message of issue 7, with its decoder. */
  const all: Array<[string, Uint8Array, (b: Uint8Array) => unknown]> = [
    ['vote, pre-vote', encodeRequest(voteReq({ preVote: true })), decodeRequest],
    ['vote, pre-vote and transfer', encodeRequest(voteReq({ preVote: true, transfer: true })), decodeRequest],
    ['vote response, pre-vote', encodeResponse(voteResp({ preVote: true })), decodeResponse],
    ['TimeoutNow', encodeRequest(timeoutNowReq()), decodeRequest],
    ['TimeoutNow response', encodeResponse({ type: 'timeoutNowResponse', term: tm(8) }), decodeResponse],
    ['forwardRead', encodeClientRequest(forwardRead()), decodeClientRequest],
    ['forwardWrite', encodeClientRequest(forwardWrite({ responseMode: 'applied' })), decodeClientRequest],
    ['forwardWrite, empty payload', encodeClientRequest(forwardWrite({ payload: new Uint8Array(0) })), decodeClientRequest],
    ['clientOk', encodeClientResponse(clientOk()), decodeClientResponse],
    ['clientOk with a result', encodeClientResponse(clientOk({ result: Uint8Array.of(1, 2, 3) })), decodeClientResponse],
    ['clientError', encodeClientResponse(clientError({ props: { reason: 'x' } })), decodeClientResponse],
    ['clientError, no leader, empty strings', encodeClientResponse(clientError({ code: '', message: '', leaderId: null })), decodeClientResponse],
  ];

  it('each decodes whole (the table is valid)', () => {
    for (const [name, bytes, decode] of all) expect(() => decode(bytes), name).to.not.throw();
  });

  it('refuses each truncated at every prefix length', () => {
    for (const [name, bytes, decode] of all) {
      for (let n = 0; n < bytes.length; n++) {
        const err = refuses(() => decode(bytes.slice(0, n)), /truncated: /);
        expect(err.message, `${name} cut to ${n}`).to.match(/needs \d+ bytes at offset \d+, \d+ left/);
      }
    }
  });

  it('refuses each with trailing bytes', () => {
    for (const [name, bytes, decode] of all) {
      for (const extra of [1, 7]) {
        const err = refuses(() => decode(withTail(bytes, extra)), new RegExp(`${extra} trailing bytes`));
        expect(err.reason, name).to.equal(`${extra} trailing bytes`);
      }
    }
  });

  it('refuses each when it is not a Uint8Array', () => {
    refuses(() => decodeClientRequest('21' as unknown as Uint8Array), /expected a Uint8Array/);
    refuses(() => decodeClientResponse([31] as unknown as Uint8Array), /expected a Uint8Array/);
    refuses(() => decodeClientRequest(null as unknown as Uint8Array), /expected a Uint8Array/);
    refuses(() => decodeClientResponse(new ArrayBuffer(9) as unknown as Uint8Array), /expected a Uint8Array/);
  });

  it('refuses an empty buffer', () => {
    refuses(() => decodeClientRequest(new Uint8Array(0)), /truncated: message type/);
    refuses(() => decodeClientResponse(new Uint8Array(0)), /truncated: message type/);
  });

  it('refuses unknown vote flag bits, alone or beside known ones', () => {
    for (const flags of [4, 5, 7, 8, 0x10, 0x40, 0x80, 0x83, 0xff]) {
      const b = encodeRequest(voteReq());
      b[VOTE.flags] = flags;
      refuses(() => decodeRequest(b), new RegExp(`unknown vote flags ${flags}\\b`));
    }
    // The known ones alone or together are accepted (the byte the test writes is the encoder's).
    for (const flags of [0, 1, 2, 3]) {
      const b = encodeRequest(voteReq());
      b[VOTE.flags] = flags;
      expect(decodeRequest(b)).to.deep.equal(voteReq({ ...(flags & 1 ? { preVote: true } : {}), ...(flags & 2 ? { transfer: true } : {}) }));
    }
  });

  it('refuses a pre-vote request in term 0, or with lastLogTerm above its term, whatever the flags', () => {
    for (const flags of [{ preVote: true }, { transfer: true }, { preVote: true, transfer: true }]) {
      refuses(() => decodeRequest(encodeRequest(voteReq({ ...flags, term: tm(0), lastLogTerm: tm(0) }))), /vote request in term 0/);
      refuses(() => decodeRequest(encodeRequest(voteReq({ ...flags, term: tm(3), lastLogTerm: tm(4) }))), /lastLogTerm above the request term/);
      refuses(() => decodeRequest(encodeRequest(voteReq({ ...flags, candidateId: id(0) }))), /candidateId must be >= 1/);
    }
  });

  it('refuses a vote response whose preVote byte is not 0 or 1', () => {
    for (const v of [2, 3, 0x80, 0xff]) {
      const b = encodeResponse(voteResp());
      b[11] = v;
      refuses(() => decodeResponse(b), new RegExp(`preVote must be 0 or 1, got ${v}\\b`));
    }
  });

  it('refuses a TimeoutNow in term 0, with leader 0, or with a field of 2^53 and above', () => {
    refuses(() => decodeRequest(encodeRequest(timeoutNowReq({ term: tm(0) }))), /TimeoutNow in term 0/);
    refuses(() => decodeRequest(encodeRequest(timeoutNowReq({ leaderId: id(0) }))), /leaderId must be >= 1/);
    refuses(() => decodeRequest(encodeRequest(timeoutNowReq({ term: tm(0), leaderId: id(0) }))), /malformed message: /);
    refuses(() => decodeRequest(new Bytes().u8(4).u64(0x20_0000, 0).u53(1).done()), /term exceeds 2\^53/);
    refuses(() => decodeRequest(new Bytes().u8(4).u53(1).u64(0xffff_ffff, 0xffff_ffff).done()), /leaderId exceeds 2\^53/);
    refuses(() => decodeResponse(new Bytes().u8(14).u64(0x20_0000, 0).done()), /term exceeds 2\^53/);
  });

  it('refuses an unknown client request or response type', () => {
    for (const t of [0, 1, 2, 4, 11, 20, 23, 31, 32, 255]) {
      refuses(() => decodeClientRequest(new Bytes().u8(t).u53(1).done()), new RegExp(`unknown client request type ${t}\\b`));
    }
    for (const t of [0, 2, 12, 14, 21, 22, 30, 33, 255]) {
      refuses(() => decodeClientResponse(new Bytes().u8(t).u53(1).u53(1).u8(0).done()), new RegExp(`unknown client response type ${t}\\b`));
    }
    // Raft's decoders do not know the client types.
    for (const t of [21, 22]) refuses(() => decodeRequest(encodeClientRequest(t === 21 ? forwardWrite() : forwardRead())), new RegExp(`unknown request type ${t}\\b`));
    for (const t of [31, 32]) refuses(() => decodeResponse(encodeClientResponse(t === 31 ? clientOk() : clientError())), new RegExp(`unknown response type ${t}\\b`));
  });

  it('refuses a forwarded request from node 0 or from an id of 2^53 and above', () => {
    refuses(() => decodeClientRequest(encodeClientRequest(forwardRead(0))), /from must be >= 1/);
    refuses(() => decodeClientRequest(encodeClientRequest(forwardWrite({ from: id(0) }))), /from must be >= 1/);
    for (const hi of [0x20_0000, 0xffff_ffff]) {
      refuses(() => decodeClientRequest(new Bytes().u8(22).u64(hi, 1).done()), /from exceeds 2\^53/);
      refuses(() => decodeClientRequest(new Bytes().u8(21).u64(hi, 1).u8(0).blob([1]).done()), /from exceeds 2\^53/);
    }
  });

  it('refuses a forwardWrite whose responseMode byte is not 0 or 1', () => {
    for (const v of [2, 0xff]) {
      const b = encodeClientRequest(forwardWrite());
      b[FWD.responseMode] = v;
      refuses(() => decodeClientRequest(b), new RegExp(`responseMode must be 0 or 1, got ${v}\\b`));
    }
  });

  it('refuses length fields claiming more than MAX_PAYLOAD_BYTES (or more than is there), without allocating them', () => {
    const over = MAX_PAYLOAD_BYTES + 1;
    const w = encodeClientRequest(forwardWrite({ payload: new Uint8Array(0) }));
    for (const n of [over, 0xffff_ffff]) {
      const b = w.slice(); new DataView(b.buffer).setUint32(FWD.payloadLength, n);
      refuses(() => decodeClientRequest(b), new RegExp(`payload of ${n} bytes exceeds ${MAX_PAYLOAD_BYTES}`));
    }
    // Within the bound but longer than the message: truncated.
    const short = w.slice(); new DataView(short.buffer).setUint32(FWD.payloadLength, 5);
    refuses(() => decodeClientRequest(short), /truncated: payload needs 5 bytes at offset 14, 0 left/);
    const ok = encodeClientResponse(clientOk({ result: new Uint8Array(0) }));
    const r = ok.slice(); new DataView(r.buffer).setUint32(OK.resultLength, over);
    refuses(() => decodeClientResponse(r), new RegExp(`result of ${over} bytes exceeds`));
    // clientError: code, message and props each have a length field.
    refuses(() => decodeClientResponse(new Bytes().u8(32).u32(over).done()), new RegExp(`error code of ${over} bytes exceeds`));
    refuses(() => decodeClientResponse(new Bytes().u8(32).blob(utf8('E')).u32(over).done()), new RegExp(`error message of ${over} bytes exceeds`));
    refuses(() => decodeClientResponse(new Bytes().u8(32).blob(utf8('E')).blob(utf8('m')).u53(0).u32(0xffff_ffff).done()), /error props of \d+ bytes exceeds/);
  });

  it('refuses a clientOk whose has-result byte is not 0 or 1, or whose index or term is 2^53 and above', () => {
    const b = encodeClientResponse(clientOk());
    b[OK.hasResult] = 2;
    refuses(() => decodeClientResponse(b), /has result must be 0 or 1, got 2/);
    refuses(() => decodeClientResponse(new Bytes().u8(31).u64(0x20_0000, 0).u53(1).u8(0).done()), /index exceeds 2\^53/);
    refuses(() => decodeClientResponse(new Bytes().u8(31).u53(1).u64(0x20_0000, 0).u8(0).done()), /term exceeds 2\^53/);
    // A result flag of 0 followed by result bytes: trailing.
    refuses(() => decodeClientResponse(new Bytes().u8(31).u53(1).u53(1).u8(0).blob([1]).done()), /5 trailing bytes/);
  });

  describe('clientError bodies', () => {
    const errorBytes = (code: Uint8Array | string, message: Uint8Array | string, props: Uint8Array | string, leader = 2): Uint8Array => new Bytes().u8(32)
      .blob(typeof code === 'string' ? utf8(code) : code).blob(typeof message === 'string' ? utf8(message) : message)
      .u53(leader).blob(typeof props === 'string' ? utf8(props) : props).done();

    it('accepts a hand-built valid one (the test builder agrees with the codec)', () => {
      expect(decodeClientResponse(errorBytes('NotAllowed', 'no', '{"x":[1]}', 0)))
        .to.deep.equal({ type: 'clientError', code: 'NotAllowed', message: 'no', leaderId: null, props: { x: [1] } });
    });

    it('refuses props that are not JSON', () => {
      for (const props of ['', '{', '{"a":1', 'nul', '{a:1}', "{'a':1}", '{"a":1}}', 'undefined']) {
        refuses(() => decodeClientResponse(errorBytes('E', 'm', props)), /error props are not JSON/);
      }
    });

    it('refuses props that are JSON but not an object', () => {
      for (const props of ['null', '42', '"text"', 'true', 'false', '[]', '[1,2]', '[{"a":1}]']) {
        refuses(() => decodeClientResponse(errorBytes('E', 'm', props)), /error props must be a JSON object/);
      }
    });

    it('refuses a code, message or props that is not UTF-8', () => {
      const bad = [Uint8Array.of(0xff), Uint8Array.of(0x41, 0xc3), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xc0, 0xaf)];
      for (const b of bad) {
        refuses(() => decodeClientResponse(errorBytes(b, 'm', '{}')), /error code is not UTF-8/);
        refuses(() => decodeClientResponse(errorBytes('E', b, '{}')), /error message is not UTF-8/);
        refuses(() => decodeClientResponse(errorBytes('E', 'm', Uint8Array.of(0x7b, ...b, 0x7d))), /error props is not UTF-8/);
      }
    });

    it('refuses a leader id of 2^53 and above', () => {
      const b = new Bytes().u8(32).blob(utf8('E')).blob(utf8('m')).u64(0x20_0000, 0).blob(utf8('{}')).done();
      refuses(() => decodeClientResponse(b), /leaderId exceeds 2\^53/);
    });
  });
});

// ---- fuzz ----
