// Shared builders and helpers of the codec tests (not a test file: mocha picks up *.test.ts only).
import { expect } from 'chai';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import type { ClientRequest, ClientResponse } from '../../actors/raft/codec';
import type { AppendEntriesRequest, Entry, InstallSnapshotRequest, LogIndex, Membership, NodeId, Term, TimeoutNowRequest, VoteRequest, VoteResponse } from '../../actors/raft/core/types';
import { SeededRandom } from '../../runtime/random';
export const MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1

export const ix = (n: number): LogIndex => n as LogIndex;
export const tm = (n: number): Term => n as Term;
export const id = (n: number): NodeId => n as NodeId;
export const ids = (...n: number[]): NodeId[] => n.map(id);

export const normal = (index: number, term: number, payload: Uint8Array | number[] = []): Entry =>
  ({ kind: 'normal', index: ix(index), term: tm(term), payload: payload instanceof Uint8Array ? payload : Uint8Array.from(payload) });
export const blank = (index: number, term: number): Entry => ({ kind: 'blank', index: ix(index), term: tm(term) });
export const config = (index: number, term: number, membership: Membership): Entry => ({ kind: 'config', index: ix(index), term: tm(term), membership });

export const JOINT: Membership = { members: ids(1, 2, 3), nonVoters: ids(7), membersAfterConsensus: ids(2, 3, 4, 5) };
export const UNIFORM: Membership = { members: ids(1), nonVoters: [], membersAfterConsensus: null };

/** Seeded floats in [0, 1): the same on every run (the runtime's SeededRandom). */
export function seededFloats(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.nextFloat();
}

export function bytesOf(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A hand-rolled writer, independent of the codec's, to build bytes the encoder would never write. */
export class Bytes {
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
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Asserts `fn` throws MalformedMessageError whose message matches `re`. */
export function refuses(fn: () => unknown, re: RegExp): MalformedMessageError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(caught, 'expected a MalformedMessageError, nothing was thrown').to.be.instanceOf(MalformedMessageError);
  const err = caught as MalformedMessageError;
  expect(err.code).to.equal('MalformedMessage');
  expect(err.message).to.match(/^malformed message: /);
  expect(err.message).to.match(re);
  return err;
}

export function appendEntriesReq(over: Partial<AppendEntriesRequest> = {}): AppendEntriesRequest {
  return {
    type: 'appendEntries', term: tm(5), leaderId: id(2), prevLogIndex: ix(9), prevLogTerm: tm(3),
    entries: [normal(10, 3, [1, 2, 3]), blank(11, 4), config(12, 5, JOINT), normal(13, 5, [])],
    leaderCommit: ix(8), ...over,
  };
}
export const voteReq = (over: Partial<VoteRequest> = {}): VoteRequest =>
  ({ type: 'vote', term: tm(7), candidateId: id(3), lastLogIndex: ix(42), lastLogTerm: tm(6), ...over });
export const snapshotReq = (over: Partial<InstallSnapshotRequest> = {}): InstallSnapshotRequest => ({
  type: 'installSnapshot', term: tm(9), leaderId: id(1), lastIncludedIndex: ix(100), lastIncludedTerm: tm(8),
  offset: 4096, data: Uint8Array.from([9, 8, 7, 6]), done: true,
  snapshotId: '8-100-ab12', membership: { members: [id(1), id(2), id(3)], nonVoters: [id(4)], membersAfterConsensus: null }, membershipIndex: ix(90),
  byteLength: 4100, checksum: 0xdeadbeef, ...over,
});

/** Byte offsets of the AppendEntries header fields, as laid out by the codec. */
export const AE = { type: 0, term: 1, leaderId: 9, prevLogIndex: 17, prevLogTerm: 25, leaderCommit: 33, count: 41, firstEntry: 45 };

export const voteResp = (over: Partial<VoteResponse> = {}): VoteResponse =>
  ({ type: 'voteResponse', term: tm(7), voteGranted: true, isCandidateUnknown: false, ...over });
export const timeoutNowReq = (over: Partial<TimeoutNowRequest> = {}): TimeoutNowRequest =>
  ({ type: 'timeoutNow', term: tm(8), leaderId: id(2), ...over });

// Forwarded client requests and their answers (not Raft RPCs).
export const forwardWrite = (over: Partial<Extract<ClientRequest, { type: 'forwardWrite' }>> = {}): ClientRequest =>
  ({ type: 'forwardWrite', from: id(3), payload: Uint8Array.from([1, 2, 3, 250]), responseMode: 'committed', ...over });
export const forwardRead = (from = 3): ClientRequest => ({ type: 'forwardRead', from: id(from) });
export const clientOk = (over: Partial<Extract<ClientResponse, { type: 'clientOk' }>> = {}): ClientResponse =>
  ({ type: 'clientOk', index: ix(41), term: tm(6), ...over });
export const clientError = (over: Partial<Extract<ClientResponse, { type: 'clientError' }>> = {}): ClientResponse =>
  ({ type: 'clientError', code: 'ForwardToLeader', message: 'not the leader; the leader is 2', leaderId: id(2), props: {}, ...over });

/** Byte offsets of the vote request fields, and of the forwarded client messages' fields. */
export const VOTE = { type: 0, term: 1, candidateId: 9, lastLogIndex: 17, lastLogTerm: 25, flags: 33, length: 34 };
export const FWD = { type: 0, from: 1, responseMode: 9, payloadLength: 10, payload: 14 };
export const OK = { type: 0, index: 1, term: 9, hasResult: 17, resultLength: 18, result: 22 };
