/**
 * The simulator's public API (`actor-raft/sim`): whole clusters in one thread under a virtual
 * clock and seeded faults, checked for safety after every step and for linearizability at the end.
 * See docs/SIMULATION.md.
 *
 * @example
 * import { Simulation, runChaos, runCampaign, seedRange } from './sim';
 * const report = await runChaos({ seed: 1, nodes: 5 });
 */
export { Simulation, SimulationError, NodeDownError, KV_APPLICATION } from './simulation';
export type { SimulationOptions, SimStateMachine, SimulationStats, SimConfigChange } from './simulation';
export { SimNetwork, RELIABLE_NETWORK, UNRELIABLE_NETWORK, validateFaults } from './sim-network';
export type { NetworkFaults, NetworkStats } from './sim-network';
export { SimDisk, DEFAULT_DISK } from './disk';
export type { DiskOptions, CrashEffect } from './disk';
export { SimStorageActor, NodeDisk, DurableView } from './sim-storage';
export { InvariantChecker, InvariantViolationError, describeMembership } from './invariants';
export type { NodeView } from './invariants';
export { KvWorkload } from './workload';
export type { WorkloadOptions, WorkloadStats } from './workload';
export { runChaos, replayCommand, describeNodes, FAULT_KINDS } from './chaos';
export type { ChaosOptions, RunReport, FaultKind, ViolationKind } from './chaos';
export { MembershipNemesis, MEMBERSHIP_CHANGE_KINDS, MEMBERSHIP_CATCH_UP_TIMEOUT_MS, defaultMembers, membersOf, configSettled } from './membership-nemesis';
export type { MembershipReport, MembershipChangeKind, MembershipNemesisHooks } from './membership-nemesis';
export { runCampaign, seedRange, summarize } from './campaign';
export type { CampaignOptions, CampaignSummary } from './campaign';
export * from './linearizability';
