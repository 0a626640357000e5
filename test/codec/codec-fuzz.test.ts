// Seeded byte-flip fuzzing: decode returns a valid message or refuses, never anything else.
import { expect } from 'chai';
import {
  decodeClientRequest, decodeClientResponse, decodeEntries, decodeRequest, decodeResponse, encodeClientRequest, encodeClientResponse,
  encodeEntries, encodeRequest, encodeResponse, type ClientRequest, type ClientResponse,
} from '../../actors/raft/codec';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import type { Entry, RaftRequest, RaftResponse } from '../../actors/raft/core/types';
import {
  ix, tm, normal, blank, config, JOINT, seededFloats, bytesOf, appendEntriesReq, voteReq, snapshotReq,
  voteResp, timeoutNowReq, forwardWrite, forwardRead, clientOk, clientError,
} from './fixtures';
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
      // Flags are present only when set.
      if ('preVote' in r) expect(r.preVote).to.equal(true);
      if ('transfer' in r) expect(r.transfer).to.equal(true);
      break;
    case 'timeoutNow':
      expect(r.term).to.be.at.least(1);
      expect(isSafe(r.leaderId, 1)).to.equal(true);
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
      if ('preVote' in r) expect(r.preVote).to.equal(true);
      break;
    case 'installSnapshotResponse': break;
    case 'timeoutNowResponse': break;
    default: expect.fail(`decoded an unknown response type ${(r as { type: string }).type}`);
  }
}

function checkClientRequest(r: ClientRequest): void {
  expect(isSafe(r.from, 1), 'from').to.equal(true);
  switch (r.type) {
    case 'forwardRead': expect(Object.keys(r).sort()).to.deep.equal(['from', 'type']); break;
    case 'forwardWrite':
      expect(['committed', 'applied']).to.include(r.responseMode);
      expect(r.payload).to.be.instanceOf(Uint8Array);
      break;
    default: expect.fail(`decoded an unknown client request type ${(r as { type: string }).type}`);
  }
}

function checkClientResponse(r: ClientResponse): void {
  switch (r.type) {
    case 'clientOk':
      expect(isSafe(r.index, 0) && isSafe(r.term, 0)).to.equal(true);
      if ('result' in r) expect(r.result).to.be.instanceOf(Uint8Array);
      break;
    case 'clientError':
      expect(typeof r.code).to.equal('string');
      expect(typeof r.message).to.equal('string');
      if (r.leaderId !== null) expect(isSafe(r.leaderId, 1)).to.equal(true);
      expect(r.props).to.be.an('object');
      expect(Array.isArray(r.props)).to.equal(false);
      expect(r.props).to.not.equal(null);
      break;
    default: expect.fail(`decoded an unknown client response type ${(r as { type: string }).type}`);
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
  // Issue 7: vote flags, TimeoutNow, forwarded client requests and their answers.
  addReq('vote, pre-vote', voteReq({ preVote: true }));
  addReq('vote, transfer', voteReq({ transfer: true }));
  addReq('timeoutNow', timeoutNowReq());
  addResp('voteResponse, pre-vote', voteResp({ preVote: true, voteGranted: false }));
  addResp('timeoutNowResponse', { type: 'timeoutNowResponse', term: tm(8) });
  const addClientReq = (name: string, r: ClientRequest): void => {
    targets.push({ name, bytes: encodeClientRequest(r), decodeAndCheck: (b) => {
      const d = decodeClientRequest(b);
      checkClientRequest(d);
      expect(decodeClientRequest(encodeClientRequest(d))).to.deep.equal(d);
    } });
  };
  const addClientResp = (name: string, r: ClientResponse): void => {
    targets.push({ name, bytes: encodeClientResponse(r), decodeAndCheck: (b) => {
      const d = decodeClientResponse(b);
      checkClientResponse(d);
      expect(decodeClientResponse(encodeClientResponse(d))).to.deep.equal(d);
    } });
  };
  addClientReq('forwardRead', forwardRead());
  addClientReq('forwardWrite', forwardWrite({ responseMode: 'applied' }));
  addClientResp('clientOk', clientOk());
  addClientResp('clientOk with a result', clientOk({ result: Uint8Array.of(0xff, 0x0f, 0x22, 0x02, 0x6f, 0x6b) }));
  addClientResp('clientError', clientError({ props: { reason: 'timeout', caughtUp: false } }));
  addClientResp('clientError, no leader', clientError({ leaderId: null, code: 'NotAllowed', message: 'nope' }));
  const entryBatch = [normal(1, 1, [1, 2, 3]), blank(2, 1), config(3, 2, JOINT), normal(4, 2, [])];
  targets.push({ name: 'entries', bytes: encodeEntries(entryBatch), decodeAndCheck: (b) => {
    const d = decodeEntries(b);
    checkEntries(d);
    expect(decodeEntries(encodeEntries(d))).to.deep.equal(d);
  } });

  it('every flip either decodes to a valid message or throws MalformedMessageError (4000 cases, seed 0xC0DEC)', () => {
    const rand = seededFloats(0xc0dec);
    let refused = 0;
    let accepted = 0;
    const reached = new Set<string>();
    for (let i = 0; i < 4000; i++) {
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
        reached.add(t.name);
      } catch (e) {
        if (e instanceof MalformedMessageError) { refused++; continue; }
        throw new Error(`case ${i} (${t.name}, bytes changed at ${where.join(',')}): decode threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
    }
    // Both outcomes occur: the fuzz really reaches the validators and the accepting paths.
    expect(refused).to.be.greaterThan(200);
    expect(accepted).to.be.greaterThan(200);
    expect(refused + accepted).to.equal(4000);
    // Every target decoded a flipped variant at least once (the flips reach its accepting path).
    expect([...reached].sort()).to.deep.equal(targets.map((t) => t.name).sort());
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

  it('random bytes into decodeClientRequest / decodeClientResponse never throw anything but MalformedMessageError', () => {
    const rand = seededFloats(0xf0_4d);
    let accepted = 0;
    let refused = 0;
    const types = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const b = bytesOf(rand, Math.floor(rand() * 80));
      // Mostly a known client type byte, so the decoders get past the first check; sometimes a
      // plausible short length field at the usual places (payload, result, error code).
      if (b.length > 0 && rand() < 0.8) b[0] = [21, 22, 31, 32][Math.floor(rand() * 4)];
      if (b.length > 14 && rand() < 0.5) { b[10] = 0; b[11] = 0; b[12] = 0; }
      if (b.length > 22 && rand() < 0.5) { b[18] = 0; b[19] = 0; b[20] = 0; }
      if (b.length > 5 && rand() < 0.5) { b[1] = 0; b[2] = 0; b[3] = 0; }
      const cases = [[decodeClientRequest, checkClientRequest], [decodeClientResponse, checkClientResponse]] as const;
      for (const [decode, check] of cases) {
        try {
          const d = (decode as (x: Uint8Array) => ClientRequest | ClientResponse)(b);
          (check as (x: unknown) => void)(d);
          accepted++;
          types.add(d.type);
        } catch (e) {
          if (!(e instanceof MalformedMessageError)) throw new Error(`case ${i} [${Array.from(b).join(',')}]: ${(e as Error)?.name}: ${(e as Error)?.message}`);
          refused++;
        }
      }
    }
    expect(refused).to.be.greaterThan(1000);
    // Random bytes are rarely a whole valid message, but short ones are: the accepting paths run too.
    expect(accepted).to.be.greaterThan(0);
    expect(types.size, [...types].join(',')).to.be.at.least(1);
  });

  it('random garbage with a TimeoutNow or vote type byte is refused or decoded, never anything else', () => {
    const rand = seededFloats(0x7e4);
    for (let i = 0; i < 3000; i++) {
      const b = bytesOf(rand, Math.floor(rand() * 48));
      if (b.length > 0) b[0] = [2, 4, 12, 14][Math.floor(rand() * 4)];
      // Keep the u53 high halves small sometimes, so the decoders reach the checks after them.
      for (const at of [1, 9, 17, 25]) if (b.length > at && rand() < 0.6) b[at] = 0;
      for (const [decode, check] of [[decodeRequest, checkRequest], [decodeResponse, checkResponse]] as const) {
        try {
          (check as (x: unknown) => void)((decode as (x: Uint8Array) => unknown)(b));
        } catch (e) {
          if (!(e instanceof MalformedMessageError)) throw new Error(`case ${i} [${Array.from(b).join(',')}]: ${(e as Error)?.name}: ${(e as Error)?.message}`);
        }
      }
    }
  });

  it('exact-length random bodies behind each client type byte decode to valid messages or are refused', () => {
    // Lengths chosen so the fixed part of each message is complete: the checks after the reads run.
    const rand = seededFloats(0xc11e);
    const seen = { forwardRead: 0, forwardWrite: 0, clientOk: 0, clientError: 0 };
    for (let i = 0; i < 4000; i++) {
      const kind = i % 4;
      let b: Uint8Array;
      if (kind === 0) { b = bytesOf(rand, 9); b[0] = 22; b[1] = 0; b[2] = rand() < 0.8 ? 0 : b[2]; }
      else if (kind === 1) {
        const n = Math.floor(rand() * 6);
        b = bytesOf(rand, 14 + n); b[0] = 21; b[1] = 0; b[2] = rand() < 0.8 ? 0 : b[2];
        if (rand() < 0.7) b[9] = b[9] & 1;
        if (rand() < 0.8) { b[10] = 0; b[11] = 0; b[12] = 0; b[13] = rand() < 0.8 ? n : b[13]; }
      } else if (kind === 2) {
        const withResult = rand() < 0.5;
        const n = Math.floor(rand() * 4);
        b = bytesOf(rand, withResult ? 22 + n : 18); b[0] = 31; b[1] = 0; b[2] = 0; b[9] = 0; b[10] = 0;
        if (rand() < 0.7) b[17] = withResult ? 1 : 0;
        if (withResult && rand() < 0.8) { b[18] = 0; b[19] = 0; b[20] = 0; b[21] = n; }
      } else {
        // code "E", message "m", a random leader, props of random JSON-ish text or random bytes.
        const bodies = ['{}', '[]', 'null', '{"a":1}', '{"a":', '1', '"s"'];
        const props = rand() < 0.7 ? new TextEncoder().encode(bodies[Math.floor(rand() * bodies.length)]) : bytesOf(rand, Math.floor(rand() * 6));
        const head = [32, 0, 0, 0, 1, 0x45, 0, 0, 0, 1, 0x6d, 0, rand() < 0.5 ? 0 : 0x40, ...bytesOf(rand, 6), 0, 0, 0, props.length];
        b = Uint8Array.from([...head, ...props]);
        if (rand() < 0.2) b[5] = 0xff; // not UTF-8
      }
      for (const decode of [decodeClientRequest, decodeClientResponse] as const) {
        try {
          const d = (decode as (x: Uint8Array) => ClientRequest | ClientResponse)(b);
          if (d.type === 'forwardRead' || d.type === 'forwardWrite') checkClientRequest(d); else checkClientResponse(d);
          seen[d.type]++;
          // What decodes re-encodes to the same bytes.
          const again = d.type === 'forwardRead' || d.type === 'forwardWrite' ? encodeClientRequest(d) : encodeClientResponse(d);
          expect(Buffer.from(again).equals(Buffer.from(b)), `case ${i}: ${d.type} re-encodes differently`).to.equal(true);
        } catch (e) {
          if (!(e instanceof MalformedMessageError)) throw new Error(`case ${i} [${Array.from(b).join(',')}]: ${(e as Error)?.name}: ${(e as Error)?.message}`);
        }
      }
    }
    for (const [type, n] of Object.entries(seen)) expect(n, `${type} decoded`).to.be.greaterThan(50);
  });
});
