/**
 * actor-raft: Raft consensus for Node.js as message-passing actors.
 *
 * @example
 * import { LocalCluster, jsonCodec } from 'actor-raft';
 * const cluster = await LocalCluster.start({ size: 3, stateMachine: { module: MY_SM_MODULE, export: 'create', args: {} } });
 * const leader = await cluster.waitForLeader();
 * await cluster.node(leader).clientWrite(jsonCodec<MyCommand>().encode({ op: 'incr' }));
 */
export {
  RaftNode, type RaftNodeOptions, type ClientWriteOptions, type ClientReadOptions, type ReadConsistencyLevel, type SessionRef,
  type ConfigChange, type NodePlacement, type WaitOptions,
} from './actors/node';
export { LocalCluster, MAX_CLUSTER_SIZE, type LocalClusterOptions } from './actors/local-cluster';
export type { ClientWriteResponse, ConfigChangeResult, ResponseMode, ReadIndexResponse, TransferResult } from './actors/raft/raft-actor';
export {
  withSessions, encodeCommand, encodePlain, encodeRegister, decodeEnvelope, SessionExpiredError, SessionSerialError, SessionMalformedError,
  isSessionErrorResult, sessionErrorOf, type SessionStateMachine,
} from './actors/apply/sessions';
export type { ConfigChangePhase, ConfigChangeStatus, ConfigTarget } from './actors/raft/core/config-change';
export type { StateMachine, StateMachineSpec } from './actors/apply/state-machine';
export { isMembershipCommitted, type RaftMetrics } from './actors/metrics/metrics';
export { buildConfig, DEFAULT_CONFIG, type RaftConfig } from './actors/raft/core/config';
export * from './actors/raft/core/errors';
export * from './actors/raft/core/types';
export { RaftCore } from './actors/raft/core/core';
export type { Input, Command, CoreStatus, InitialState, ProposeResult, RandomSource, ReadMode, TransferOutcome } from './actors/raft/core/io';
export { encodeEntries, decodeEntries, encodeRequest, decodeRequest, encodeResponse, decodeResponse } from './actors/raft/codec';
export {
  type StorageMsg, type StoredState, StorageContractError, LogPurgedError, SnapshotGoneError, SnapshotChecksumError,
} from './storage/storage';
export { MemoryStorageActor, MemoryStore, createMemoryStorage, MEMORY_STORAGE_MODULE } from './storage/memory-storage';
export {
  fileStorageSpec, readFileStorage, FileStorageActor, FileStorageStats, StorageIoError, StorageLockedError, FILE_STORAGE_MODULE,
  DEFAULT_SEGMENT_BYTES, type FileStorageOptions,
} from './storage/file-storage';
export { CorruptLogError } from './storage/record-log';
export { type NetworkMsg, type InboundRpc, UnreachableError, raftActorId } from './network/network';
export { LocalNetwork, MAX_LOCAL_NODES } from './network/local-network';
export {
  tcpNetworkSpec, createTcpNetwork, validateTcpNetworkOptions, parseAddress, parsePeers, TcpNetworkStats, LATENCY_BOUNDS_MS,
  type TcpAddress, type TcpTlsOptions, type TcpNetworkOptions, type TcpNetworkMsg, type TcpNetworkStatsSnapshot,
} from './network/tcp-network';
export { FrameError } from './network/tcp-frames';
export { freePorts } from './network/free-ports';
export { ActorSystem, Supervisor, jsonCodec, createLogger, VirtualClock, RealClock, SeededRandom, LOCAL, onArbiter, DeferredReply } from './runtime';
export type { Actor, ActorContext, ActorRef, ActorSpec, Placement } from './runtime';
