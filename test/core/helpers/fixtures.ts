/**
 * Building blocks for single-core tests: typed ids, entries, a core from a given durable state, and
 * drivers that play storage (acknowledge persistence at once) so a test reads like the paper.
 */
import { buildConfig, type RaftConfig } from '../../../actors/raft/core/config';
import { RaftCore } from '../../../actors/raft/core/core';
import type { Command, Input } from '../../../actors/raft/core/io';
import type {
  AppendEntriesRequest, Entry, LogIndex, Membership, SnapshotMeta, NodeId, Term, VoteRequest,
} from '../../../actors/raft/core/types';
import { SeededRandom } from './random';
import type { RandomSource } from '../../../actors/raft/core/io';

export const n = (v: number): NodeId => v as NodeId;
export const t = (v: number): Term => v as Term;
export const i = (v: number): LogIndex => v as LogIndex;

/**
 * The paper's algorithm alone: the tests named after paper sections check its rules one by one,
 * so the extensions that change elections (pre-vote, check-quorum) are off here. Tests of the
 * extensions use EXTENSIONS_CONFIG, which is the library's default.
 */
export const TEST_CONFIG: RaftConfig = buildConfig({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 50, preVote: false, checkQuorum: false });
/** The library's defaults for the timing above: pre-vote and check-quorum on. */
export const EXTENSIONS_CONFIG: RaftConfig = buildConfig({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 50 });

export function membership(...members: number[]): Membership {
  return { members: members.map(n), nonVoters: [], membersAfterConsensus: null };
}

export const configEntry = (index: number, term: number, m: Membership): Entry => ({ index: i(index), term: t(term), kind: 'config', membership: m });
export const blankEntry = (index: number, term: number): Entry => ({ index: i(index), term: t(term), kind: 'blank' });
export const normalEntry = (index: number, term: number, byte = index): Entry => ({ index: i(index), term: t(term), kind: 'normal', payload: Uint8Array.of(byte & 0xff) });

/** A log of the given terms, index 1 first; index 1 is a config entry for `members`. */
export function logOfTerms(terms: readonly number[], members: Membership = membership(1, 2, 3)): Entry[] {
  return terms.map((term, k) => (k === 0 ? configEntry(1, term, members) : normalEntry(k + 1, term)));
}

export interface CoreSpec {
  id?: number;
  entries?: readonly Entry[];
  term?: number;
  votedFor?: number | null;
  lastApplied?: number;
  nowMs?: number;
  random?: RandomSource;
  config?: RaftConfig;
  /** A durable snapshot storage hands back with the log (the log then holds entries from after it, or from earlier). */
  snapshot?: SnapshotMeta | null;
}

export function makeCore(spec: CoreSpec = {}): RaftCore {
  const entries = spec.entries ?? [];
  return new RaftCore({
    id: n(spec.id ?? 1),
    config: spec.config ?? TEST_CONFIG,
    random: spec.random ?? new SeededRandom(spec.id ?? 1),
    nowMs: spec.nowMs ?? 0,
    initial: {
      hardState: { currentTerm: t(spec.term ?? (entries.length > 0 ? entries[entries.length - 1]!.term : 0)), votedFor: spec.votedFor === undefined || spec.votedFor === null ? null : n(spec.votedFor) },
      entries,
      lastApplied: i(spec.lastApplied ?? 0),
      snapshot: spec.snapshot ?? null,
    },
  });
}

/** A member of {1,2,3} (or `members`) with the given log, as a Follower. */
export function follower(id: number, terms: readonly number[], extra: Omit<CoreSpec, 'id' | 'entries'> = {}): RaftCore {
  return makeCore({ ...extra, id, entries: logOfTerms(terms) });
}

export function ofType<K extends Command['type']>(cmds: readonly Command[], type: K): Extract<Command, { type: K }>[] {
  return cmds.filter((c): c is Extract<Command, { type: K }> => c.type === type);
}

/** Acknowledges every persistence command in `cmds` (as fast storage would) and returns what that produced. */
export function ackPersistence(core: RaftCore, cmds: readonly Command[]): Command[] {
  for (const c of cmds) {
    if (c.type === 'saveHardState') core.step({ type: 'hardStatePersisted', seq: c.seq });
    else if (c.type === 'appendLog') core.step({ type: 'logPersisted', index: c.entries[c.entries.length - 1]!.index });
  }
  return core.takeCommands();
}

/** Steps `input`, then plays instant storage until quiet; returns every command emitted on the way. */
export function stepDurably(core: RaftCore, input?: Input): Command[] {
  if (input !== undefined) core.step(input);
  const all: Command[] = [];
  let cmds = core.takeCommands();
  while (cmds.length > 0) {
    all.push(...cmds);
    cmds = ackPersistence(core, cmds);
  }
  return all;
}

/** Ticks the core to its election deadline. */
export function timeOut(core: RaftCore): Command[] {
  const deadline = core.nextDeadlineMs();
  if (deadline === null) throw new Error('core has no election deadline');
  return stepDurably(core, { type: 'tick', nowMs: deadline });
}

export function voteReq(candidateId: number, term: number, lastLogIndex: number, lastLogTerm: number): VoteRequest {
  return { type: 'vote', term: t(term), candidateId: n(candidateId), lastLogIndex: i(lastLogIndex), lastLogTerm: t(lastLogTerm) };
}

export function appendReq(leaderId: number, term: number, prevLogIndex: number, prevLogTerm: number, entries: readonly Entry[], leaderCommit = 0): AppendEntriesRequest {
  return { type: 'appendEntries', term: t(term), leaderId: n(leaderId), prevLogIndex: i(prevLogIndex), prevLogTerm: t(prevLogTerm), entries, leaderCommit: i(leaderCommit) };
}

/**
 * Makes a member of {1,2,3} (log `terms`) the leader: it times out, and node 2 grants its vote.
 * Returns the commands of the whole election, with persistence acknowledged.
 */
export function electLeader(core: RaftCore, voter = 2): Command[] {
  const cmds = timeOut(core);
  const term = core.status().currentTerm;
  cmds.push(...stepDurably(core, { type: 'voteResponse', from: n(voter), resp: { type: 'voteResponse', term, voteGranted: true, isCandidateUnknown: false } }));
  if (core.status().role !== 'Leader') throw new Error(`node did not become leader: ${core.status().role}`);
  return cmds;
}
