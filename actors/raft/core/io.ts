/**
 * The core's contract with the outside world (DESIGN.md section 1, etcd's Step/Ready):
 * the Raft actor feeds `Input`s to `RaftCore.step`, then drains `Command`s and executes them.
 * The core never awaits, never reads a clock, never calls Math.random.
 */
import type { ConfigChangeOutcome, ConfigChangeStatus } from './config-change';
import type { LeaderTransferError } from './errors';
import type {
  AppendEntriesRequest, AppendEntriesResponse, Entry, HardState, InstallSnapshotRequest, InstallSnapshotResponse, LogIndex, Membership, NodeId,
  RaftRole, SnapshotMeta, Term, TimeoutNowRequest, TimeoutNowResponse, VoteRequest, VoteResponse,
} from './types';

/** A source of chance the core is handed (seeded in tests and the simulator). */
export interface RandomSource {
  /** Uniform in [0, 1). */
  nextFloat(): number;
}

/** What storage hands the core on start (after a restart, everything that was made durable). */
export interface InitialState {
  readonly hardState: HardState;
  /** Every entry storage holds, in index order: from index 1, or from its first index after a purge. */
  readonly entries: readonly Entry[];
  /** The index the state machine has applied through. */
  readonly lastApplied: LogIndex;
  /** The latest durable snapshot, if any (see ReplicatedLog's constructor for how it meets the log). */
  readonly snapshot?: SnapshotMeta | null;
  /**
   * Where storage's log starts (1, or purged-through + 1): with no entries it is the only word on
   * whether storage's log continues after the snapshot or still starts before it.
   */
  readonly firstIndex?: LogIndex;
}

export type Input =
  /** Time passes. The only way the core learns the time. */
  | { readonly type: 'tick'; readonly nowMs: number }
  /** An AppendEntries RPC arrived; answer with a `reply` command carrying the same reqId. */
  | { readonly type: 'appendEntries'; readonly reqId: number; readonly req: AppendEntriesRequest }
  /** A RequestVote RPC arrived; answer with a `reply` command carrying the same reqId. */
  | { readonly type: 'vote'; readonly reqId: number; readonly req: VoteRequest }
  /**
   * A peer answered our vote request (sent by a `sendVote` command). `requestTerm`, the term of the
   * request answered, lets the core ignore a late answer to an earlier campaign; an "unknown" answer
   * carries the responder's term, not ours, so only the request's term tells its age.
   */
  | { readonly type: 'voteResponse'; readonly from: NodeId; readonly resp: VoteResponse; readonly requestTerm?: Term }
  /**
   * A replication stream of `leaderTerm` learned that `peer` has `matchIndex` durable. With `round`
   * and `sentAtMs`: `peer` answered, in `leaderTerm`, a request sent at `sentAtMs` (the leader's
   * clock) carrying heartbeat round `round` (read-index confirmation, lease, check-quorum).
   */
  | { readonly type: 'replicated'; readonly peer: NodeId; readonly leaderTerm: Term; readonly matchIndex: LogIndex; readonly round?: number; readonly sentAtMs?: number }
  /** A TimeoutNow RPC arrived (leader transfer); answer with a `reply` command carrying the same reqId. */
  | { readonly type: 'timeoutNow'; readonly reqId: number; readonly req: TimeoutNowRequest }
  /** Some response carried a higher term than ours: step down. */
  | { readonly type: 'higherTerm'; readonly term: Term }
  /** Storage made every entry through `index` durable (acks arrive in the order commands were issued). */
  | { readonly type: 'logPersisted'; readonly index: LogIndex }
  /** Storage made the hard state with this `seq` durable. */
  | { readonly type: 'hardStatePersisted'; readonly seq: number }
  /** The state machine has applied through `index`. */
  | { readonly type: 'applied'; readonly index: LogIndex }
  /** An InstallSnapshot chunk arrived; answer with a `reply` command carrying the same reqId. */
  | { readonly type: 'installSnapshot'; readonly reqId: number; readonly req: InstallSnapshotRequest }
  /** Storage holds the chunk of a `storeSnapshotChunk` command (for the last one: the whole snapshot, durable). */
  | { readonly type: 'snapshotChunkStored'; readonly reqId: number; readonly req: InstallSnapshotRequest }
  /** Our state machine's snapshot through meta.lastIncludedIndex is durable in storage. */
  | { readonly type: 'snapshotCreated'; readonly meta: SnapshotMeta };

export type Command =
  /** Make this hard state durable, then feed back `hardStatePersisted(seq)`. */
  | { readonly type: 'saveHardState'; readonly hardState: HardState; readonly seq: number }
  /**
   * Make these entries durable, then feed back `logPersisted(last index)`. When `truncateFrom` is set,
   * first delete every entry at index >= truncateFrom (a follower repairing its log, paper 5.3).
   */
  | { readonly type: 'appendLog'; readonly entries: readonly Entry[]; readonly truncateFrom: LogIndex | null }
  /** Send a RequestVote; feed the answer back as `voteResponse`. Issued only after our vote is durable. */
  | { readonly type: 'sendVote'; readonly to: NodeId; readonly req: VoteRequest }
  /** Answer an RPC. Issued only once the persistence rules of seed 002 are met. */
  | { readonly type: 'reply'; readonly reqId: number; readonly resp: AppendEntriesResponse | VoteResponse | InstallSnapshotResponse | TimeoutNowResponse }
  /**
   * Write this InstallSnapshot chunk to storage (`writeSnapshot`), then feed back
   * `snapshotChunkStored`. If storage refuses it, answer the RPC with the error instead.
   */
  | { readonly type: 'storeSnapshotChunk'; readonly reqId: number; readonly req: InstallSnapshotRequest }
  /** Delete log entries at or below `throughIndex` from storage (covered by the snapshot; no ack needed). */
  | { readonly type: 'purgeLog'; readonly throughIndex: LogIndex }
  /**
   * The log contradicted the snapshot and was dropped: make storage drop it too (truncate from
   * snapshotIndex + 1, purge through snapshotIndex), then feed back `logPersisted(snapshotIndex)`.
   */
  | { readonly type: 'resetLog'; readonly snapshotIndex: LogIndex }
  /** The state machine must take the state of this snapshot (read it from storage) before applying anything after it. */
  | { readonly type: 'restoreSnapshot'; readonly meta: SnapshotMeta }
  /**
   * We became leader of `term`: start a replication stream to every target, each starting at
   * `nextIndex` (our last index + 1 at election), carrying `commitIndex`.
   */
  | { readonly type: 'startReplication'; readonly term: Term; readonly targets: readonly NodeId[]; readonly nextIndex: LogIndex; readonly commitIndex: LogIndex; readonly round: number }
  /**
   * Every stream sends a heartbeat now, and tags every request from now on with `round`; answers
   * come back as `replicated` inputs carrying the round (read-index confirmation).
   */
  | { readonly type: 'heartbeatRound'; readonly round: number }
  /** Send TimeoutNow to `to` (leader transfer); the answer needs no feeding back. */
  | { readonly type: 'sendTimeoutNow'; readonly to: NodeId; readonly req: TimeoutNowRequest }
  /** These reads (ids given to `read`) are linearizable at `readIndex`, which the state machine has applied. */
  | { readonly type: 'readsReady'; readonly ids: readonly number[]; readonly readIndex: LogIndex }
  /** These reads could not be confirmed (leadership was lost): answer them with `error`. */
  | { readonly type: 'readsFailed'; readonly ids: readonly number[]; readonly error: Error }
  /** The leader transfer `id` (from `transferLeadership`) ended. */
  | { readonly type: 'transferSettled'; readonly id: number; readonly outcome: TransferOutcome }
  /** The set of replication targets changed while leading (a config entry was appended). */
  | { readonly type: 'replicationTargets'; readonly targets: readonly NodeId[] }
  /** New entries appended by the leader, to be sent by every stream (the line-rate path). */
  | { readonly type: 'replicate'; readonly entries: readonly Entry[] }
  /** The commit index moved. Streams piggyback it; the actor answers clients waiting on commit. */
  | { readonly type: 'commit'; readonly commitIndex: LogIndex }
  /** Stop every replication stream (we are no longer leader). */
  | { readonly type: 'stopReplication' }
  /** Hand these committed entries to the state machine: consecutive, in index order, each exactly once. */
  | { readonly type: 'apply'; readonly entries: readonly Entry[] }
  /**
   * We became a NonVoter outside the config (removed, or a candidate told it is unknown): no leader
   * will replicate to us, so writes waiting here for their commit will never learn it.
   */
  | { readonly type: 'leftCluster' }
  /** The config change `id` (from `proposeConfigChange`) ended: answer whoever proposed it. */
  | { readonly type: 'configChangeSettled'; readonly id: number; readonly outcome: ConfigChangeOutcome };

export type TransferOutcome = { readonly ok: true; readonly leader: NodeId } | { readonly ok: false; readonly error: LeaderTransferError };

/** How `read` confirms a read: a quorum round (read-index), or the leader's lease when it is valid. */
export type ReadMode = 'index' | 'lease';

/** A snapshot of the core's state for metrics and tests. */
export interface CoreStatus {
  readonly id: NodeId;
  readonly role: RaftRole;
  readonly currentTerm: Term;
  readonly votedFor: NodeId | null;
  readonly currentLeader: NodeId | null;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  readonly durableIndex: LogIndex;
  readonly commitIndex: LogIndex;
  readonly lastApplied: LogIndex;
  readonly membership: Membership;
  /** The index of the config entry `membership` comes from; 0 before any (pristine, or InitWithConfig's). */
  readonly membershipIndex: LogIndex;
  /** The leader's config change in progress, or null (always null on other roles). */
  readonly configChange: ConfigChangeStatus | null;
  /** The latest snapshot's last index and term (0 when none). */
  readonly snapshotIndex: LogIndex;
  readonly snapshotTerm: Term;
  /** The node a leader transfer of ours hands leadership to, until it settles; else null. */
  readonly transferTarget: NodeId | null;
  /** A leader's lease end (its clock), when lease reads would be served; null when it holds none. */
  readonly leaseUntilMs: number | null;
  /** Pre-vote rounds and real elections this node started since it started (volatile counters). */
  readonly preVoteRounds: number;
  readonly electionsStarted: number;
  /** Read-index confirmation rounds started (each confirms a batch of reads). */
  readonly readIndexRounds: number;
  /** Times this node stepped down as leader because no quorum answered for electionTimeoutMaxMs (check-quorum). */
  readonly quorumLossStepDowns: number;
}

/** What `propose` returns on the leader: where the new entries went. */
export interface ProposeResult {
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly term: Term;
}
