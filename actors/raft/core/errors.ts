/**
 * Errors a caller can act on. Each carries the data needed to act, and a stable `code` so that an
 * error that crossed a thread (and lost its prototype) can be rebuilt with `reviveError`.
 */
import type { Membership, NodeId } from './types';

export abstract class RaftError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The node is not the leader. `leaderId` is the leader it knows of, or null when it knows none. */
export class ForwardToLeaderError extends RaftError {
  readonly code = 'ForwardToLeader';
  constructor(readonly leaderId: NodeId | null) {
    super(leaderId === null ? 'not the leader; no leader known' : `not the leader; forward to node ${leaderId}`);
  }
}

/** An admin command was refused because of the node's state (seed 004: InitWithConfig rules). */
export class NotAllowedError extends RaftError {
  readonly code = 'NotAllowed';
  constructor(readonly reason: string) {
    super(`not allowed: ${reason}`);
  }
}

/** A config was refused because the cluster could not make progress with it. */
export class InoperableConfigError extends RaftError {
  readonly code = 'InoperableConfig';
  constructor(readonly membership: Membership, readonly reason: string) {
    super(`inoperable config: ${reason}`);
  }
}

/** A configuration value failed validation. `field` names it, `value` is what was given. */
export class InvalidConfigError extends RaftError {
  readonly code = 'InvalidConfig';
  constructor(readonly field: string, readonly value: unknown, readonly reason: string) {
    super(`invalid config ${field}=${JSON.stringify(value)}: ${reason}`);
  }
}

/**
 * The log slot a write was given was committed holding another entry (a new leader overwrote it),
 * so the write was definitely NOT applied and never will be; retrying is safe. Raised only once
 * that index is committed: a write whose slot was merely cut from this node's log may still be
 * committed from another node's copy, and waits until a commit decides.
 */
export class ProposalDroppedError extends RaftError {
  readonly code = 'ProposalDropped';
  constructor(readonly index: number) {
    super(`write at index ${index} was overwritten by a new leader and never applied; safe to retry`);
  }
}

/** A malformed message reached a boundary. Nothing was changed by it. */
export class MalformedMessageError extends RaftError {
  readonly code = 'MalformedMessage';
  constructor(readonly reason: string) {
    super(`malformed message: ${reason}`);
  }
}

/**
 * A write whose entry a snapshot covered before this node learned its fate (it was leader, then
 * installed a newer leader's snapshot): it may or may not be in the state. Retry only if the
 * command is idempotent.
 */
export class ProposalOutcomeUnknownError extends RaftError {
  readonly code = 'ProposalOutcomeUnknown';
  constructor(readonly index: number) {
    super(`the outcome of the write at index ${index} is unknown: a snapshot covered it before this node learned whether it committed`);
  }
}

/** An internal invariant failed: the node stops rather than limp on with state it cannot trust. */
export class InvariantViolation extends RaftError {
  readonly code = 'InvariantViolation';
  constructor(readonly reason: string) {
    super(`invariant violated: ${reason}`);
  }
}

/** The node stopped before a request's outcome was known: a write may or may not have been applied. */
export class NodeStoppedError extends RaftError {
  readonly code = 'NodeStopped';
  constructor(readonly nodeId: number) {
    super(`node ${nodeId} stopped; the outcome of the request is unknown`);
  }
}

/**
 * An admin command that only the leader can carry out reached another node (seed 004:
 * ProposeConfigChange "will fail if the Raft node to which this command was submitted is not the
 * Raft leader"). `leaderId` is the leader this node knows of, or null.
 */
export class NodeNotLeaderError extends RaftError {
  readonly code = 'NodeNotLeader';
  constructor(readonly leaderId: NodeId | null) {
    super(leaderId === null ? 'not the leader; no leader known' : `not the leader; the leader is node ${leaderId}`);
  }
}

/** A config change asked for what the config already is. Nothing was appended; a retry of a change that succeeded gets this. */
export class NoopConfigChangeError extends RaftError {
  readonly code = 'Noop';
  constructor(readonly membership: Membership) {
    super(`config change is a no-op: the config already is ${JSON.stringify({ members: membership.members, nonVoters: membership.nonVoters })}`);
  }
}

/** Another membership change is still in progress (one at a time, paper 6). Retry once it has finished. */
export class ConfigChangeInProgressError extends RaftError {
  readonly code = 'ConfigChangeInProgress';
  constructor(readonly reason: string) {
    super(`a config change is already in progress: ${reason}`);
  }
}

export type ConfigChangeAbortReason = 'leadership-lost' | 'catch-up-timeout';

/**
 * A config change stopped before its final config committed. `mayStillComplete` false: nothing of
 * it is in the log, it will not happen. True: its joint or final entry is in the log and the next
 * leader may finish it; watch `membership` in metrics, and retry (a retry of a finished change is a
 * NoopConfigChangeError).
 */
export class ConfigChangeAbortedError extends RaftError {
  readonly code = 'ConfigChangeAborted';
  constructor(readonly reason: ConfigChangeAbortReason, readonly mayStillComplete: boolean, readonly detail: string) {
    super(`config change aborted (${reason}): ${detail}${mayStillComplete ? '; it may still complete under the next leader' : '; it did not take effect'}`);
  }
}

/**
 * The node left the cluster (a config change removed it, or its peers no longer know it) while a
 * request waited on it. The outcome is unknown: the write may have been committed by the remaining
 * members. Retry on the current leader (idempotently, or with a client session).
 */
export class NodeRemovedError extends RaftError {
  readonly code = 'NodeRemoved';
  constructor(readonly nodeId: number) {
    super(`node ${nodeId} left the cluster; the outcome of the request is unknown`);
  }
}

/**
 * A client request reached a node that is out of the cluster: a config change removed it (its
 * config says so, or its peers answered its campaign that they do not know it), so no leader will
 * talk to it again and it cannot forward. Nothing was appended. Send the request to a member.
 */
export class NotAMemberError extends RaftError {
  readonly code = 'NotAMember';
  constructor(readonly nodeId: number) {
    super(`node ${nodeId} is not a member of the cluster (removed by a config change); nothing was appended, send requests to a member`);
  }
}

export type LeaderTransferFailure = 'not-a-voter' | 'in-progress' | 'timeout' | 'superseded' | 'leadership-lost';

/**
 * A leadership transfer (RaftNode.transferLeadership, thesis 3.10) did not hand leadership to its
 * target. `reason`: 'not-a-voter' (the target is not a voter of the latest config), 'in-progress'
 * (another transfer is under way), 'timeout' (the target did not catch up, or did not win, in time;
 * `caughtUp` says whether TimeoutNow was sent), 'superseded' (another node became leader),
 * 'leadership-lost' (this node stopped leading before the target was caught up).
 */
export class LeaderTransferError extends RaftError {
  readonly code = 'LeaderTransfer';
  constructor(readonly reason: LeaderTransferFailure, readonly target: number, readonly caughtUp: boolean, readonly detail: string) {
    super(`leadership transfer to node ${target} failed (${reason}): ${detail}`);
  }
}

/**
 * The leader is handing leadership to another node (thesis 3.10) and takes no writes meanwhile.
 * Nothing was appended; retry shortly on the new leader (`target`).
 */
export class LeaderTransferInProgressError extends RaftError {
  readonly code = 'LeaderTransferInProgress';
  constructor(readonly target: number) {
    super(`the leader is transferring leadership to node ${target}; nothing was appended, retry on the new leader`);
  }
}
