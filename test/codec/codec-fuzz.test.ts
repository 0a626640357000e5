// Seeded byte-flip fuzzing: decode returns a valid message or refuses, never anything else.
import { expect } from 'chai';
import { decodeEntries, decodeRequest, decodeResponse, encodeEntries, encodeRequest, encodeResponse } from '../../actors/raft/codec';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import type { Entry, RaftRequest, RaftResponse } from '../../actors/raft/core/types';
import { ix, tm, normal, blank, config, JOINT, seededFloats, bytesOf, appendEntriesReq, voteReq, snapshotReq } from './fixtures';
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
    const rand = seededFloats(0xc0dec);
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
    const rand = seededFloats(42);
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
