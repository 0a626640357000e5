/**
 * Protocol vocabulary shared by every layer: typed ids, log entries, membership, hard state
 * and the RPCs. Pure data: nothing here does I/O, and everything survives a structured clone.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A node's id. Branded so a term or an index can never be passed where a node id belongs. */
export type NodeId = Brand<number, 'NodeId'>;
/** A Raft term (paper 5.1). */
export type Term = Brand<number, 'Term'>;
/** A position in the replicated log, 1-based; 0 means "before the first entry". */
export type LogIndex = Brand<number, 'LogIndex'>;

/** Largest id/term/index we accept: every value must stay an exact integer in a double. */
export const MAX_SAFE_ID = Number.MAX_SAFE_INTEGER;

function checkU53(what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new TypeError(`${what} must be a safe integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/** Validates and brands a node id. `nodeId(1)`; throws TypeError on 0, negatives, fractions. */
export const nodeId = (v: number): NodeId => checkU53('NodeId', v, 1) as NodeId;
/** Validates and brands a term (0 allowed: a pristine node is in term 0). */
export const term = (v: number): Term => checkU53('Term', v, 0) as Term;
/** Validates and brands a log index (0 allowed: the empty log). */
export const logIndex = (v: number): LogIndex => checkU53('LogIndex', v, 0) as LogIndex;

export const TERM_ZERO = 0 as Term;
export const INDEX_ZERO = 0 as LogIndex;

/** Cluster membership (seed 000's EntryConfigChange). */
export interface Membership {
  /** Voting members. During joint consensus these are the *old* config's voters. */
  readonly members: readonly NodeId[];
  /** Nodes that receive the log but do not vote and are not counted for commit. */
  readonly nonVoters: readonly NodeId[];
  /**
   * Set while in joint consensus: the *new* config's voters. Agreement then needs a majority of
   * `members` and a majority of `membersAfterConsensus` (Raft section 6). `null` when uniform.
   */
  readonly membersAfterConsensus: readonly NodeId[] | null;
}

/**
 * What a snapshot covers (seed 002): the state machine's state through `lastIncludedIndex`, the
 * config in force there, and how to check its bytes. Snapshot pointers never travel in
 * AppendEntries (seed 000): only in InstallSnapshot and in storage.
 */
export interface SnapshotMeta {
  /** Unique per snapshot; chosen by whoever makes it (e.g. `${term}-${index}-${random}`). At most 128 chars of [A-Za-z0-9_-]. */
  readonly id: string;
  readonly lastIncludedIndex: LogIndex;
  readonly lastIncludedTerm: Term;
  /** The config in force at lastIncludedIndex (the latest config entry at or below it, else the base). */
  readonly membership: Membership;
  /** The index of that config entry; 0 when it is the base membership (no config entry yet). */
  readonly membershipIndex: LogIndex;
  /** Size of the snapshot data in bytes, and crc32 of the data (node:zlib). */
  readonly byteLength: number;
  readonly checksum: number;
}

export type EntryKind = 'normal' | 'blank' | 'config';

interface EntryBase {
  readonly index: LogIndex;
  readonly term: Term;
}
/** An application command: opaque bytes, the state machine decides what they mean. */
export interface NormalEntry extends EntryBase { readonly kind: 'normal'; readonly payload: Uint8Array }
/** The no-op a new leader commits to learn its commit index (paper 5.4.2, 8). */
export interface BlankEntry extends EntryBase { readonly kind: 'blank' }
/** A membership change; takes effect as soon as it is in a node's log (paper 6). */
export interface ConfigEntry extends EntryBase { readonly kind: 'config'; readonly membership: Membership }
export type Entry = NormalEntry | BlankEntry | ConfigEntry;

/** What must be durable before a vote is asked for or given (seed 002, rules 1 and 2). */
export interface HardState {
  readonly currentTerm: Term;
  readonly votedFor: NodeId | null;
}

/** The role a node plays. A pristine node, or one outside the config, is a passive NonVoter. */
export type RaftRole = 'NonVoter' | 'Follower' | 'Candidate' | 'Leader';

// ---- RPCs (paper Figure 2, with the fast-backtrack hint and seed 000's isCandidateUnknown) ----

export interface AppendEntriesRequest {
  readonly type: 'appendEntries';
  readonly term: Term;
  readonly leaderId: NodeId;
  readonly prevLogIndex: LogIndex;
  readonly prevLogTerm: Term;
  readonly entries: readonly Entry[];
  readonly leaderCommit: LogIndex;
}

/**
 * Fast backtrack (paper 5.3, last paragraphs): on a mismatch the follower names the first index of
 * the conflicting term (or its last index + 1 when its log is too short), so the leader skips a whole
 * term per round trip instead of one entry.
 */
export interface ConflictHint {
  readonly index: LogIndex;
  readonly term: Term;
}

export interface AppendEntriesResponse {
  readonly type: 'appendEntriesResponse';
  readonly term: Term;
  readonly success: boolean;
  /** On success: the last index the request covered, now durable on the follower. */
  readonly matchIndex: LogIndex;
  /** On a log mismatch: where the leader should retry from. */
  readonly conflict: ConflictHint | null;
}

export interface VoteRequest {
  readonly type: 'vote';
  /** For a pre-vote: the term the candidate would campaign in (its term + 1), not adopted by anyone. */
  readonly term: Term;
  readonly candidateId: NodeId;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  /**
   * A pre-vote (thesis 9.6): "would you vote for me?", asked before incrementing the term. Granting
   * one changes nothing on the voter, so a node cut off from the cluster never raises its term.
   */
  readonly preVote?: boolean;
  /**
   * The campaign was started by the leader's TimeoutNow (leader transfer, thesis 3.10): voters
   * grant it even while they believe the current leader's lease holds.
   */
  readonly transfer?: boolean;
}

export interface VoteResponse {
  readonly type: 'voteResponse';
  readonly term: Term;
  readonly voteGranted: boolean;
  /** Seed 000: the candidate is neither a member nor a non-voter of the responder's config. */
  readonly isCandidateUnknown: boolean;
  /** The answer to a pre-vote (`term` is the responder's own term, which a pre-vote never changes). */
  readonly preVote?: boolean;
}

/**
 * One chunk of a snapshot (paper 7), sent by a leader to a follower that needs entries it has
 * purged. `offset` is where `data` goes in the snapshot's bytes; `done` marks the last chunk. The
 * rest describes the whole snapshot (its SnapshotMeta), on every chunk, so a follower can check a
 * chunk belongs to the transfer it is receiving and verify the whole at the end.
 */
export interface InstallSnapshotRequest {
  readonly type: 'installSnapshot';
  readonly term: Term;
  readonly leaderId: NodeId;
  readonly lastIncludedIndex: LogIndex;
  readonly lastIncludedTerm: Term;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
  readonly snapshotId: string;
  readonly membership: Membership;
  readonly membershipIndex: LogIndex;
  readonly byteLength: number;
  readonly checksum: number;
}

/** The SnapshotMeta an InstallSnapshot request describes. */
export function snapshotMetaOf(req: InstallSnapshotRequest): SnapshotMeta {
  return {
    id: req.snapshotId, lastIncludedIndex: req.lastIncludedIndex, lastIncludedTerm: req.lastIncludedTerm,
    membership: req.membership, membershipIndex: req.membershipIndex, byteLength: req.byteLength, checksum: req.checksum,
  };
}
export interface InstallSnapshotResponse {
  readonly type: 'installSnapshotResponse';
  readonly term: Term;
}

/** Leader transfer (thesis 3.10): the leader tells an up-to-date voter to start an election at once. */
export interface TimeoutNowRequest {
  readonly type: 'timeoutNow';
  readonly term: Term;
  readonly leaderId: NodeId;
}
export interface TimeoutNowResponse {
  readonly type: 'timeoutNowResponse';
  readonly term: Term;
}

export type RaftRequest = AppendEntriesRequest | VoteRequest | InstallSnapshotRequest | TimeoutNowRequest;
export type RaftResponse = AppendEntriesResponse | VoteResponse | InstallSnapshotResponse | TimeoutNowResponse;
