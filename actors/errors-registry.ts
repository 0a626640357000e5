/**
 * Teaches the runtime to rebuild actor-raft's typed errors after they cross a thread, so that
 * `err instanceof ForwardToLeaderError` and `err.leaderId` work on the application's side.
 * Imported for its effect by every module that may throw or receive these errors.
 */
import { registerErrorClass } from '../runtime/errors';
import {
  ConfigChangeAbortedError, ConfigChangeInProgressError, NodeNotLeaderError, NodeRemovedError, NoopConfigChangeError,
  type ConfigChangeAbortReason, ForwardToLeaderError, InoperableConfigError, InvalidConfigError, InvariantViolation, MalformedMessageError,
  NodeStoppedError, NotAllowedError, NotAMemberError, ProposalDroppedError, ProposalOutcomeUnknownError,
  LeaderTransferError, LeaderTransferInProgressError, type LeaderTransferFailure,
} from './raft/core/errors';
import type { Membership, NodeId } from './raft/core/types';
import { UnreachableError } from '../network/network';
import { LogPurgedError, SnapshotChecksumError, SnapshotGoneError, StorageContractError } from '../storage/storage';
import { CorruptLogError } from '../storage/record-log';
import { StorageIoError, StorageLockedError } from '../storage/file-storage';

const str = (v: unknown): string => String(v);

registerErrorClass('ForwardToLeader', (p) => new ForwardToLeaderError((p.leaderId ?? null) as NodeId | null));
registerErrorClass('NotAllowed', (p) => new NotAllowedError(str(p.reason)));
registerErrorClass('InoperableConfig', (p) => new InoperableConfigError(p.membership as Membership, str(p.reason)));
registerErrorClass('InvalidConfig', (p) => new InvalidConfigError(str(p.field), p.value, str(p.reason)));
registerErrorClass('ProposalDropped', (p) => new ProposalDroppedError(Number(p.index)));
registerErrorClass('MalformedMessage', (p) => new MalformedMessageError(str(p.reason)));
registerErrorClass('InvariantViolation', (p) => new InvariantViolation(str(p.reason)));
registerErrorClass('Unreachable', (p) => new UnreachableError(Number(p.target), str(p.reason), { notSent: p.notSent === true }));
registerErrorClass('StorageContract', (p) => new StorageContractError(str(p.reason)));
registerErrorClass('LogPurged', (p) => new LogPurgedError(Number(p.firstIndex)));
registerErrorClass('SnapshotGone', (p) => new SnapshotGoneError(str(p.id)));
registerErrorClass('SnapshotChecksum', (p) => new SnapshotChecksumError(str(p.id), str(p.reason)));
registerErrorClass('CorruptLog', (p) => new CorruptLogError(str(p.file), Number(p.offset), str(p.reason)));
registerErrorClass('StorageLocked', (p) => new StorageLockedError(str(p.dir), Number(p.pid)));
registerErrorClass('StorageIo', (p) => new StorageIoError(str(p.op), str(p.file), str(p.reason)));
registerErrorClass('NodeStopped', (p) => new NodeStoppedError(Number(p.nodeId)));
registerErrorClass('NodeNotLeader', (p) => new NodeNotLeaderError((p.leaderId ?? null) as NodeId | null));
registerErrorClass('Noop', (p) => new NoopConfigChangeError(p.membership as Membership));
registerErrorClass('ConfigChangeInProgress', (p) => new ConfigChangeInProgressError(str(p.reason)));
registerErrorClass('ConfigChangeAborted', (p) => new ConfigChangeAbortedError(p.reason as ConfigChangeAbortReason, p.mayStillComplete === true, str(p.detail)));
registerErrorClass('NodeRemoved', (p) => new NodeRemovedError(Number(p.nodeId)));
registerErrorClass('NotAMember', (p) => new NotAMemberError(Number(p.nodeId)));
registerErrorClass('ProposalOutcomeUnknown', (p) => new ProposalOutcomeUnknownError(Number(p.index)));
registerErrorClass('LeaderTransfer', (p) => new LeaderTransferError(p.reason as LeaderTransferFailure, Number(p.target), p.caughtUp === true, str(p.detail)));
registerErrorClass('LeaderTransferInProgress', (p) => new LeaderTransferInProgressError(Number(p.target)));
