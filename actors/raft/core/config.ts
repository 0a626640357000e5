import { InvalidConfigError } from './errors';

/** Tunables of one Raft node. Units are in the names. */
export interface RaftConfig {
  /** Lower bound of the randomized election timeout (paper 5.2). */
  readonly electionTimeoutMinMs: number;
  /** Upper bound (exclusive) of the randomized election timeout. */
  readonly electionTimeoutMaxMs: number;
  /** How often a leader's replication stream sends a heartbeat to an idle follower. */
  readonly heartbeatIntervalMs: number;
  /** Most entries carried by one AppendEntries request. */
  readonly maxPayloadEntries: number;
  /** Most AppendEntries requests in flight to one follower (the pipeline window). */
  readonly maxInflightAppends: number;
  /** A stream more than this many entries behind the leader's last index is "lagging" and reads from storage. */
  readonly replicationLagThreshold: number;
  /** Most entries handed to the state machine in one apply batch. */
  readonly maxApplyBatchEntries: number;
  /** Periodic metrics interval; changes of state, leader or membership are published at once. */
  readonly metricsIntervalMs: number;
  /**
   * A config change abandons its catch-up phase (ConfigChangeAbortedError, 'catch-up-timeout') when a
   * node being added makes no replication progress for this long: a node that is down or cannot
   * keep up must not hold up further changes forever.
   */
  readonly catchUpTimeoutMs: number;
  /**
   * Take a snapshot once this many entries were applied since the last one (seed 000: snapshots
   * "triggered based on configuration & distance from last snapshot"); 0 disables automatic
   * snapshots (RaftNode.snapshotNow still works).
   */
  readonly snapshotLogsSinceLast: number;
  /**
   * Entries kept in the log behind a snapshot, so a follower slightly behind still catches up from
   * the log instead of a whole snapshot. The log is purged through (snapshot index - this).
   */
  readonly snapshotKeepEntries: number;
  /** Largest InstallSnapshot chunk (and storage write) of a snapshot transfer. */
  readonly snapshotMaxChunkBytes: number;
  /**
   * gzip level of snapshots (1 fastest .. 9 smallest; 0 stores them as the state machine made
   * them). Large snapshots are packed on the process's piscina pool (runtime/cpu-pool.ts).
   */
  readonly snapshotCompressionLevel: number;
  /**
   * Pre-vote (thesis 9.6): a node whose election timer fires first asks whether it could win,
   * without raising its term; only a yes from a quorum starts a real election. A node back from a
   * partition therefore never deposes a healthy leader with a higher term.
   */
  readonly preVote: boolean;
  /**
   * Check-quorum (thesis 6.2): a leader that has not heard from a quorum for electionTimeoutMaxMs
   * steps down; and a node that heard from a leader within electionTimeoutMinMs neither grants a
   * vote nor adopts a candidate's term (the leader's lease, which lease reads rely on). Keeps a
   * stable leader under partial connectivity.
   */
  readonly checkQuorum: boolean;
  /**
   * Lease reads: the leader serves a read locally while a quorum acknowledged a heartbeat sent less
   * than electionTimeoutMinMs - this margin ago. The margin absorbs clock drift between the leader
   * and its followers over one election timeout (about 2 x drift rate x electionTimeoutMinMs is
   * needed; the default 50 ms of 150 ms tolerates ~15% drift). Must be below electionTimeoutMinMs.
   */
  readonly leaseClockDriftMarginMs: number;
}

export const DEFAULT_CONFIG: RaftConfig = Object.freeze({
  electionTimeoutMinMs: 150,
  electionTimeoutMaxMs: 300,
  heartbeatIntervalMs: 50,
  maxPayloadEntries: 300,
  maxInflightAppends: 8,
  replicationLagThreshold: 1000,
  maxApplyBatchEntries: 1024,
  metricsIntervalMs: 1000,
  catchUpTimeoutMs: 30_000,
  snapshotLogsSinceLast: 5000,
  snapshotKeepEntries: 1000,
  snapshotMaxChunkBytes: 3 * 1024 * 1024,
  snapshotCompressionLevel: 0,
  preVote: true,
  checkQuorum: true,
  leaseClockDriftMarginMs: 50,
});

/** Fields that may be 0 (the rest must be at least 1). */
const ZERO_ALLOWED: readonly (keyof RaftConfig)[] = ['snapshotLogsSinceLast', 'snapshotKeepEntries', 'snapshotCompressionLevel', 'leaseClockDriftMarginMs'];

const INTEGER_FIELDS: readonly (keyof RaftConfig)[] = [
  'electionTimeoutMinMs', 'electionTimeoutMaxMs', 'heartbeatIntervalMs', 'maxPayloadEntries',
  'maxInflightAppends', 'replicationLagThreshold', 'maxApplyBatchEntries', 'metricsIntervalMs',
  'catchUpTimeoutMs', 'snapshotLogsSinceLast', 'snapshotKeepEntries', 'snapshotMaxChunkBytes', 'snapshotCompressionLevel',
  'leaseClockDriftMarginMs',
];

const BOOLEAN_FIELDS: readonly (keyof RaftConfig)[] = ['preVote', 'checkQuorum'];

/**
 * Fills defaults and validates. Throws `InvalidConfigError` naming the first bad field.
 * @example const cfg = buildConfig({ heartbeatIntervalMs: 20, electionTimeoutMinMs: 100, electionTimeoutMaxMs: 200 });
 */
export function buildConfig(partial: Partial<RaftConfig> = {}): RaftConfig {
  if (partial === null || typeof partial !== 'object') throw new InvalidConfigError('config', partial, 'must be an object');
  for (const key of Object.keys(partial)) {
    if (!(INTEGER_FIELDS as readonly string[]).includes(key) && !(BOOLEAN_FIELDS as readonly string[]).includes(key)) throw new InvalidConfigError(key, (partial as Record<string, unknown>)[key], 'unknown field');
  }
  const cfg: RaftConfig = { ...DEFAULT_CONFIG, ...partial };
  for (const f of INTEGER_FIELDS) {
    const v = cfg[f];
    const min = ZERO_ALLOWED.includes(f) ? 0 : 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31) {
      throw new InvalidConfigError(f, v, `must be an integer between ${min} and 2^31`);
    }
  }
  for (const f of BOOLEAN_FIELDS) {
    if (typeof cfg[f] !== 'boolean') throw new InvalidConfigError(f, cfg[f], 'must be true or false');
  }
  if (cfg.leaseClockDriftMarginMs >= cfg.electionTimeoutMinMs) {
    throw new InvalidConfigError('leaseClockDriftMarginMs', cfg.leaseClockDriftMarginMs, `must be below electionTimeoutMinMs (${cfg.electionTimeoutMinMs}), or no lease is ever valid`);
  }
  if (cfg.snapshotCompressionLevel > 9) {
    throw new InvalidConfigError('snapshotCompressionLevel', cfg.snapshotCompressionLevel, 'must be 0 (none) to 9 (gzip levels)');
  }
  if (cfg.snapshotMaxChunkBytes > 64 * 1024 * 1024) {
    throw new InvalidConfigError('snapshotMaxChunkBytes', cfg.snapshotMaxChunkBytes, 'must be at most 64 MiB (the largest payload an RPC carries)');
  }
  if (cfg.electionTimeoutMaxMs <= cfg.electionTimeoutMinMs) {
    throw new InvalidConfigError('electionTimeoutMaxMs', cfg.electionTimeoutMaxMs, `must exceed electionTimeoutMinMs (${cfg.electionTimeoutMinMs})`);
  }
  if (cfg.heartbeatIntervalMs >= cfg.electionTimeoutMinMs) {
    throw new InvalidConfigError('heartbeatIntervalMs', cfg.heartbeatIntervalMs, `must be below electionTimeoutMinMs (${cfg.electionTimeoutMinMs}) or followers time out between heartbeats`);
  }
  return Object.freeze(cfg);
}
