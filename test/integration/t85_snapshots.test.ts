/**
 * Snapshots and log compaction end to end (issue 6), on local placement with small snapshot
 * settings so that compaction, transfers in many chunks and installs all happen within seconds:
 *
 * - a follower isolated while the leader compacts its log rejoins by InstallSnapshot;
 * - a node added to a cluster whose log is compacted joins by snapshot, and never applies the
 *   entries the snapshot covers;
 * - on FileStorage the log stays bounded under a long write load, in memory and on disk;
 * - a node restarted on FileStorage loads its snapshot and does not re-apply what it covers;
 * - the leader changes in the middle of a slow transfer: the new leader finishes the catch-up;
 * - a follower crashes in the middle of an install: it comes back with its previous state, not a
 *   half snapshot, and catches up;
 * - a snapshot whose checksum does not match is refused (SnapshotChecksumError) and changes nothing;
 * - a stale snapshot (covering less than the follower has) must not replace its newer one;
 * - snapshotNow: NotAllowedError without snapshot(); concurrent calls share one snapshot.
 *
 * Log lines are captured with a pino logger passed to LocalCluster; a hook on the stream's debug
 * line 'sending snapshot chunk' acts (isolates a node) at the exact moment a transfer is midway.
 * Every wait is on a condition with a deadline, never a fixed sleep.
 */
import { expect } from 'chai';
import { CPU_POOL_ID, type CpuPoolActor } from '../../runtime/cpu-pool';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { LocalCluster, type LocalClusterOptions } from '../../actors/local-cluster';
import { encodeRequest, decodeResponse } from '../../actors/raft/codec';
import type { RaftConfig } from '../../actors/raft/core/config';
import { ForwardToLeaderError, NodeStoppedError, NotAllowedError, ProposalDroppedError, ProposalOutcomeUnknownError } from '../../actors/raft/core/errors';
import { voters } from '../../actors/raft/core/membership';
import type { InstallSnapshotRequest, LogIndex, NodeId, SnapshotMeta } from '../../actors/raft/core/types';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { raftActorId } from '../../network/network';
import { AskTimeoutError } from '../../runtime/errors';
import { fileStorageSpec, readFileStorage } from '../../storage/file-storage';
import { SnapshotChecksumError, type StorageMsg } from '../../storage/storage';
import { converge, digests, rejectsWith, waitUntil, type KvDigest } from './helpers';
import { NO_SNAPSHOT_KV_SPEC, RECORDING_KV_SPEC, type KvRecord } from './fixtures/recording-kv';

type LogLine = Record<string, unknown> & { msg?: string; node?: number; target?: number; offset?: number };

const dirsMade: string[] = [];
function tempDirs(n: number): string[] {
  return Array.from({ length: n }, () => {
    const d = mkdtempSync(join(tmpdir(), 'actor-raft-t85-'));
    dirsMade.push(d);
    return d;
  });
}
after(() => { for (const d of dirsMade) rmSync(d, { recursive: true, force: true }); });

/** Captures every log line (parsed) and calls `hook` synchronously as it is written. */
class LogCapture {
  readonly lines: LogLine[] = [];
  hook: ((l: LogLine) => void) | null = null;
  readonly logger;
  constructor(level: 'info' | 'debug' = 'info') {
    this.logger = pino({ level }, {
      write: (line: string) => {
        const l = JSON.parse(line) as LogLine;
        // Debug lines are only needed by the hook; keep the rest for the assertions.
        if (l.level !== 20) this.lines.push(l);
        this.hook?.(l);
      },
    });
  }
  find(msg: string, pred: (l: LogLine) => boolean = () => true): LogLine[] { return this.lines.filter((l) => l.msg === msg && pred(l)); }
  /** The snapshot and role lines, compact, for a failure message. */
  summary(): string {
    return JSON.stringify(this.lines.filter((l) => /snapshot|state changed/.test(String(l.msg))).map((l) => ({
      msg: l.msg, node: l.node, target: l.target, term: l.term, role: l.role, index: l.lastIncludedIndex ?? l.index ?? l.lastLogIndex,
    })));
  }
}

/** `p`, or a rejection naming `what()` after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what()}`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

let cluster: LocalCluster | null = null;

async function start(opts: Omit<LocalClusterOptions, 'stateMachine' | 'placement'> & { stateMachine?: LocalClusterOptions['stateMachine'] }): Promise<LocalCluster> {
  cluster = await LocalCluster.start({ seed: 85, placement: 'local', stateMachine: RECORDING_KV_SPEC, ...opts });
  return cluster;
}

/** Resolves at the next metrics update of any node in `c`, or after `ms`: a pause that ends on news. */
function nextUpdate(c: LocalCluster, ms = 100): Promise<void> {
  return new Promise((resolve) => {
    const offs: (() => void)[] = [];
    const done = () => { clearTimeout(t); for (const off of offs) off(); resolve(); };
    const t = setTimeout(done, ms);
    for (const n of c.all()) offs.push(n.onMetrics(done));
  });
}

/** A node that believes it leads, outside `avoid` (null when none does right now). */
function believedLeader(c: LocalCluster, avoid: readonly number[]): number | null {
  for (const n of c.all()) if (!avoid.includes(n.id) && n.metrics()?.state === 'Leader') return n.id;
  return null;
}

/**
 * Puts `key = value` through whichever node leads (outside `avoid`), following redirects and
 * retrying drops and unknown outcomes (a put of a unique key is idempotent). Gives up after 20 s.
 */
async function put(c: LocalCluster, key: string, value: string, avoid: readonly number[] = []): Promise<number> {
  const deadline = Date.now() + 20_000;
  let target: number | null = believedLeader(c, avoid);
  for (;;) {
    if (target !== null && c.ids.includes(target as NodeId) && !avoid.includes(target)) {
      try {
        return (await c.node(target).clientWrite(encodeKv({ op: 'put', key, value }), { timeoutMs: 3_000 })).index;
      } catch (err) {
        const retriable = err instanceof ForwardToLeaderError || err instanceof ProposalDroppedError || err instanceof ProposalOutcomeUnknownError
          || err instanceof NodeStoppedError || err instanceof AskTimeoutError;
        if (!retriable || Date.now() > deadline) throw err;
        target = err instanceof ForwardToLeaderError ? err.leaderId : null;
        if (target !== null) continue;
      }
    }
    if (Date.now() > deadline) throw new Error(`put ${key}: no leader outside [${avoid.join(', ')}] within 20 s`);
    await nextUpdate(c, 50);
    target = believedLeader(c, avoid);
  }
}

/** Puts keys `${prefix}${i}` for i in [0, n), `concurrency` at a time; values of `valueBytes` characters. */
async function putMany(c: LocalCluster, prefix: string, n: number, valueBytes: number, avoid: readonly number[] = [], concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const v = `${prefix}${i}:`.padEnd(valueBytes, String.fromCharCode(97 + (i % 26)));
      await put(c, `${prefix}${i}`, v, avoid);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** Waits for one leader among all nodes, every node applying its commit index, and equal digests. */
async function expectDigestsEqual(c: LocalCluster, timeoutMs = 20_000): Promise<KvDigest[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await converge(c, Math.max(1000, deadline - Date.now()));
    const ds = await digests(c);
    if (ds.every((d) => d.sha256 === ds[0].sha256 && d.appliedIndex === ds[0].appliedIndex)) return ds;
    if (Date.now() > deadline) expect(ds, 'digests of every node').to.deep.equal(ds.map(() => ds[0]));
    await nextUpdate(c);
  }
}

const record = (c: LocalCluster, id: number): Promise<KvRecord> => c.node(id).query<KvRecord>({ q: 'record' });
const storageOf = (c: LocalCluster, id: number) => c.system.ref<StorageMsg>(`n${id}/storage`);

function expectNoNodeFailed(c: LocalCluster): void {
  for (const n of c.all()) expect(n.state, `node ${n.id}'s supervisor`).to.equal('running');
}

/**
 * A leader's stream keeps max(replicationLagThreshold, maxPayloadEntries x maxInflightAppends)
 * entries in memory (2400 by default) and serves a follower that far behind from them, snapshot or
 * not. Here it keeps 32, so a follower a few hundred entries behind must be read from storage,
 * which the snapshot has purged: only InstallSnapshot can catch it up.
 */
const SMALL_STREAM: Partial<RaftConfig> = { replicationLagThreshold: 32, maxPayloadEntries: 16, maxInflightAppends: 2, metricsIntervalMs: 100 };
/** Small snapshot settings: a snapshot every 100 entries, 10 kept behind it, 2 KiB chunks. */
const SMALL: Partial<RaftConfig> = { ...SMALL_STREAM, snapshotLogsSinceLast: 100, snapshotKeepEntries: 10, snapshotMaxChunkBytes: 2048 };
/** Slow transfers: 512-byte chunks. */
const SLOW: Partial<RaftConfig> = { ...SMALL, snapshotMaxChunkBytes: 512 };

describe('t85 snapshots and log compaction', function () {
  this.timeout(40_000);
  afterEach(async function () {
    this.timeout(20_000);
    if (cluster) { const c = cluster; cluster = null; await c.shutdown(); }
  });

  it('a follower isolated while the leader compacts its log rejoins by InstallSnapshot (several chunks); digests equal', async () => {
    const log = new LogCapture();
    const c = await start({ size: 3, config: SMALL, logger: log.logger });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 30, 40);
    await converge(c);
    const f = c.ids.find((id) => id !== leader)!;
    c.isolate(f);
    const before = await c.node(f).currentMetrics();
    await putMany(c, 'b', 400, 60, [f]);
    // Every connected node has purged its log past the entries f needs next (snapshotIndex - keep).
    for (const id of c.ids.filter((i) => i !== f)) {
      await waitUntil(c.node(id), (m) => m.snapshotIndex - 10 > before.lastLogIndex + 1, `log purged past node ${f}'s last index ${before.lastLogIndex}`);
    }
    c.restore(f);
    const after = await waitUntil(c.node(f), (m) => m.snapshotIndex > before.lastLogIndex, `node ${f} holds a snapshot past its old last index`, 20_000);
    await expectDigestsEqual(c);

    // Only an install brings the state machine past a log gap: f was restored from a leader's snapshot.
    const rec = await record(c, f);
    expect(rec.restores.length, `restores of node ${f}: ${JSON.stringify(rec)}`).to.be.at.least(1);
    expect(rec.restores[0]).to.be.above(before.lastLogIndex);
    expect(rec.contiguous, 'applied batches follow each other and the snapshot').to.equal(true);
    expect(after.snapshotIndex).to.be.at.least(rec.restores[0]);
    const finished = log.find('snapshot transfer finished', (l) => l.target === f);
    expect(finished.length, 'a snapshot transfer to the follower finished').to.be.at.least(1);
    expect(finished[0].chunks as number, 'chunks of the transfer').to.be.above(1);
    expect(log.find('restoring the state machine from a snapshot', (l) => l.node === f).length).to.be.at.least(1);
    expectNoNodeFailed(c);
  });

  it('a node added to a cluster with a compacted log joins by snapshot, never applying what it covers', async () => {
    const c = await start({ size: 3, config: SMALL });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 300, 50);
    await waitUntil(c.node(leader), (m) => m.snapshotIndex >= 200, 'leader compacted its log');
    await c.addNode(4);
    const res = await c.node(leader).proposeConfigChange({ add: [4] }, { timeoutMs: 20_000 });
    expect(voters(res.membership)).to.include(4);
    await putMany(c, 'b', 20, 50);
    await expectDigestsEqual(c);
    const rec = await record(c, 4);
    expect(rec.restores.length, JSON.stringify(rec)).to.be.at.least(1);
    expect(rec.restores[0]).to.be.at.least(200);
    expect(rec.firstApplied, 'node 4 applied nothing the snapshot covers').to.equal(rec.restores[0] + 1);
    expect(rec.contiguous).to.equal(true);
    expect((await c.node(4).currentMetrics()).snapshotIndex).to.be.at.least(rec.restores[0]);
    expectNoNodeFailed(c);
  });

  it('with snapshotCompressionLevel 1, a large state (over 1 MiB, packed on the CPU pool) is stored and sent gzipped, and a new node joins by it', async function () {
    this.timeout(60_000);
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } });
    const c = await start({ size: 3, logger, config: { ...SMALL, snapshotLogsSinceLast: 0, snapshotCompressionLevel: 1, snapshotMaxChunkBytes: 64 * 1024 } });
    const leader = await c.waitForLeader();
    await putMany(c, 'big', 150, 10_000); // about 1.5 MB of state
    const meta = await c.node(leader).snapshotNow();
    const created = logs.find((l) => l.msg === 'snapshot created' && l.index === meta.lastIncludedIndex);
    expect(created, 'the leader logged its snapshot').to.not.equal(undefined);
    expect(created!.stateBytes as number).to.be.above(1024 * 1024);
    expect(meta.byteLength, 'stored and sent compressed').to.be.below((created!.stateBytes as number) / 4);
    const pool = c.system.localActor<CpuPoolActor>(CPU_POOL_ID);
    expect(pool?.tasksRun ?? 0, 'packed on the pool').to.be.at.least(1);
    await putMany(c, 'more', 40, 50); // push the log past what the stream keeps, behind the snapshot
    await c.node(leader).snapshotNow();
    await c.addNode(4);
    await c.node(leader).proposeConfigChange({ add: [4] }, { timeoutMs: 20_000 });
    await expectDigestsEqual(c);
    const rec = await record(c, 4);
    expect(rec.restores.length, 'node 4 was restored from the compressed snapshot').to.be.at.least(1);
    expectNoNodeFailed(c);
  });

  it('on FileStorage the log stays bounded under a long write load, in memory and on disk', async function () {
    this.timeout(60_000);
    const LOGS_SINCE_LAST = 200;
    const KEEP = 50;
    const CONCURRENCY = 32;
    const TOTAL = 3000;
    const dirs = tempDirs(3);
    const c = await start({
      size: 3, storage: (id) => fileStorageSpec({ dir: dirs[id - 1], segmentBytes: 64 * 1024 }),
      config: { snapshotLogsSinceLast: LOGS_SINCE_LAST, snapshotKeepEntries: KEEP, snapshotMaxChunkBytes: 16 * 1024, metricsIntervalMs: 25 },
    });
    await c.waitForLeader();
    // Sample every published metrics update of every node during the load.
    const maxGap = new Map<number, number>();
    let samples = 0;
    const offs = c.all().map((n) => n.onMetrics((m) => {
      samples++;
      maxGap.set(m.id, Math.max(maxGap.get(m.id) ?? 0, m.lastLogIndex - m.snapshotIndex));
    }));
    await putMany(c, 'k', TOTAL, 16, [], CONCURRENCY);
    const { commitIndex } = await converge(c);
    for (const off of offs) off();
    expect(commitIndex).to.be.at.least(TOTAL);
    expect(samples, 'metrics samples during the load').to.be.at.least(10);
    // A snapshot starts once LOGS_SINCE_LAST entries are applied since the last; while it is made
    // and written (and while apply trails the log) the load goes on. Measured: at most ~380 here
    // (~200 + what commits during one snapshot's write); without compaction it would reach TOTAL.
    // The bound allows one more LOGS_SINCE_LAST of slack for a slow, shared machine.
    const BOUND = 3 * LOGS_SINCE_LAST;
    for (const id of c.ids) {
      expect(maxGap.get(id), `node ${id}: max(lastLogIndex - snapshotIndex) during the load`).to.be.below(BOUND);
      const m = await c.node(id).currentMetrics();
      expect(m.snapshotIndex, `node ${id} snapshotIndex`).to.be.above(m.lastLogIndex - BOUND);
    }
    // Let the last snapshot and purge settle: every node's storage purged through its snapshot - KEEP.
    for (const id of c.ids) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const m = await c.node(id).currentMetrics();
        const st = await storageOf(c, id).ask<{ firstIndex: number; snapshot: SnapshotMeta | null }>({ type: 'getInitialState' });
        if (st.snapshot !== null && st.snapshot.lastIncludedIndex === m.snapshotIndex && st.firstIndex === m.snapshotIndex - KEEP + 1) break;
        if (Date.now() > deadline) throw new Error(`node ${id}: storage firstIndex ${st.firstIndex}, snapshot ${st.snapshot?.lastIncludedIndex}, metrics snapshotIndex ${m.snapshotIndex}`);
        await nextUpdate(c, 50);
      }
    }
    const finalMetrics = await Promise.all(c.ids.map((id) => c.node(id).currentMetrics()));
    const cc = c;
    cluster = null;
    await cc.shutdown();
    for (const [k, dir] of dirs.entries()) {
      const disk = await readFileStorage(dir);
      const m = finalMetrics[k];
      expect(disk.snapshot, `node ${k + 1}: snapshot on disk`).to.not.equal(null);
      expect(disk.firstIndex, `node ${k + 1}: first index on disk`).to.be.above(1);
      expect(disk.firstIndex).to.equal(disk.snapshot!.lastIncludedIndex - KEEP + 1);
      expect(disk.entries[0].index).to.equal(disk.firstIndex);
      expect(disk.entries[disk.entries.length - 1].index).to.equal(m.lastLogIndex);
      // KEEP entries behind the snapshot, and fewer than LOGS_SINCE_LAST after it unless the last
      // snapshot was being written when the final entries were applied (one client round more).
      expect(disk.entries.length, `node ${k + 1}: entries on disk`).to.be.at.most(KEEP + LOGS_SINCE_LAST + CONCURRENCY);
    }
  });

  it('a node restarted on FileStorage loads its snapshot and does not re-apply what it covers', async () => {
    const dirs = tempDirs(3);
    const c = await start({
      size: 3, storage: (id) => fileStorageSpec({ dir: dirs[id - 1] }),
      config: { snapshotLogsSinceLast: 0, snapshotKeepEntries: 10, metricsIntervalMs: 100 },
    });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 60, 30);
    await converge(c);
    const f = c.ids.find((id) => id !== leader)!;
    const meta = await c.node(f).snapshotNow();
    const m0 = await c.node(f).currentMetrics();
    expect(meta.lastIncludedIndex).to.equal(m0.lastApplied);
    expect(m0.snapshotIndex).to.equal(meta.lastIncludedIndex);
    await putMany(c, 'b', 40, 30);
    await converge(c);
    expect((await c.node(leader).currentMetrics()).snapshotIndex, 'automatic snapshots are off').to.equal(0);

    await c.restartNode(f);
    const started = await c.node(f).currentMetrics();
    expect(started.snapshotIndex, 'the restarted node knows its snapshot').to.equal(meta.lastIncludedIndex);
    await expectDigestsEqual(c);
    const rec = await record(c, f);
    expect(rec.restores, 'restored once, from its own snapshot').to.deep.equal([meta.lastIncludedIndex]);
    expect(rec.firstApplied, 'first index applied after the restart').to.equal(meta.lastIncludedIndex + 1);
    expect(rec.contiguous).to.equal(true);
    const cc = c;
    cluster = null;
    await cc.shutdown();
    const disk = await readFileStorage(dirs[f - 1]);
    expect(disk.snapshot?.id).to.equal(meta.id);
    expect(disk.firstIndex, 'log purged through snapshot - keep').to.equal(meta.lastIncludedIndex - 10 + 1);
  });

  it('the leader changes in the middle of a slow snapshot transfer: the new leader completes the catch-up', async () => {
    const log = new LogCapture('debug');
    const c = await start({ size: 3, logger: log.logger, config: SLOW });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 20, 30);
    await converge(c);
    const f = c.ids.find((id) => id !== leader)!;
    c.isolate(f);
    const before = await c.node(f).currentMetrics();
    await putMany(c, 'b', 200, 400, [f]); // ~80 KB of values: a snapshot of 160+ chunks of 512 bytes
    for (const id of c.ids.filter((i) => i !== f)) {
      await waitUntil(c.node(id), (m) => m.snapshotIndex - 10 > before.lastLogIndex + 1, `node ${id} purged past node ${f}'s log`);
    }
    // When the leader (whoever it is once f is back) is 8 chunks into the transfer to f, cut it off.
    let fired: { leader: number; offset: number } | null = null;
    const firedP = new Promise<{ leader: number; offset: number }>((resolve) => {
      log.hook = (l) => {
        if (fired === null && l.msg === 'sending snapshot chunk' && l.target === f && (l.offset ?? 0) >= 8 * 512) {
          fired = { leader: l.node as number, offset: l.offset as number };
          c.isolate(fired.leader);
          resolve(fired);
        }
      };
    });
    c.restore(f);
    const cut = await within(firedP, 15_000, () => `no transfer to node ${f} reached 8 chunks; ${log.summary()}`);
    log.hook = null;
    const others = c.ids.filter((id) => id !== cut.leader);
    const newLeader = await c.waitForLeader({ among: others, notIn: [cut.leader], timeoutMs: 15_000 });
    await putMany(c, 'c', 10, 30, [cut.leader]);
    const { commitIndex } = await c.node(newLeader).currentMetrics();
    await c.waitForApplied(commitIndex, { among: others, timeoutMs: 20_000 });
    const mid = await c.node(f).currentMetrics();
    expect(mid.snapshotIndex, `node ${f} caught up past its gap`).to.be.above(before.lastLogIndex);
    const finishedByNew = log.find('snapshot transfer finished', (l) => l.target === f && l.node === newLeader);
    expect(finishedByNew.length, 'the new leader transferred its own snapshot to the follower').to.be.at.least(1);
    const rec = await record(c, f);
    expect(rec.restores.length).to.be.at.least(1);
    c.restore(cut.leader);
    await expectDigestsEqual(c);
    expectNoNodeFailed(c);
  });

  it('a follower that crashes in the middle of an install comes back with its previous state, then catches up', async () => {
    const log = new LogCapture('debug');
    const dirs = tempDirs(3);
    const c = await start({
      size: 3, logger: log.logger, storage: (id) => fileStorageSpec({ dir: dirs[id - 1] }),
      config: SLOW,
    });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 150, 100);
    await converge(c);
    const f = c.ids.find((id) => id !== leader)!;
    await waitUntil(c.node(f), (m) => m.snapshotIndex >= 100, `node ${f} took its own snapshot`);
    c.isolate(f);
    const before = await c.node(f).currentMetrics();
    const snap0 = await storageOf(c, f).ask<SnapshotMeta | null>({ type: 'getSnapshot' });
    expect(snap0?.lastIncludedIndex).to.equal(before.snapshotIndex);
    const digest0 = (await digests(c, [f]))[0];
    await putMany(c, 'b', 200, 400, [f]);
    for (const id of c.ids.filter((i) => i !== f)) {
      await waitUntil(c.node(id), (m) => m.snapshotIndex - 10 > before.lastLogIndex + 1, `node ${id} purged past node ${f}'s log`);
    }
    let fired = false;
    const firedP = new Promise<void>((resolve) => {
      log.hook = (l) => {
        if (!fired && l.msg === 'sending snapshot chunk' && l.target === f && (l.offset ?? 0) >= 8 * 512) {
          fired = true;
          c.isolate(f); // the crash: f hears nothing more, and stops below
          resolve();
        }
      };
    });
    c.restore(f);
    await within(firedP, 15_000, () => `no transfer to node ${f} reached 8 chunks; ${log.summary()}`);
    log.hook = null;
    // restartNode(f), split in two to read the directory while f is down.
    await c.stopNode(f);
    const disk = await readFileStorage(dirs[f - 1]);
    expect(disk.snapshot?.id, 'the snapshot on disk is the previous one, not the half-received one').to.equal(snap0!.id);
    expect(disk.entries[disk.entries.length - 1].index, 'the log on disk is the previous one').to.equal(before.lastLogIndex);
    await c.addNode(f); // on the same directory: the restart
    const back = await waitUntil(c.node(f), (m) => m.lastApplied >= before.snapshotIndex, `node ${f} restored its previous snapshot`);
    expect(back.snapshotIndex).to.equal(before.snapshotIndex);
    expect(back.lastLogIndex).to.equal(before.lastLogIndex);
    const recBack = await record(c, f);
    expect(recBack.restores).to.deep.equal([before.snapshotIndex]);
    const d1 = (await digests(c, [f]))[0];
    if (d1.appliedIndex === digest0.appliedIndex) expect(d1).to.deep.equal(digest0);
    c.restore(f);
    await waitUntil(c.node(f), (m) => m.snapshotIndex > before.lastLogIndex, `node ${f} installs a snapshot past its log after the restart`, 20_000);
    await expectDigestsEqual(c);
    const rec = await record(c, f);
    expect(rec.restores.length).to.be.at.least(2);
    expect(rec.restores[1]).to.be.above(before.lastLogIndex);
    expect(rec.contiguous).to.equal(true);
    expectNoNodeFailed(c);
  });

  /** An InstallSnapshot from the current leader in its term, straight to node `to`'s Raft actor. */
  async function sendInstallSnapshot(c: LocalCluster, to: number, fields: Partial<InstallSnapshotRequest> & Pick<InstallSnapshotRequest, 'lastIncludedIndex' | 'data' | 'checksum' | 'snapshotId'>): Promise<Uint8Array> {
    const m = await c.node(to).currentMetrics();
    const req: InstallSnapshotRequest = {
      type: 'installSnapshot', term: m.currentTerm, leaderId: m.currentLeader!, lastIncludedTerm: m.currentTerm,
      offset: 0, done: true, membership: m.membership, membershipIndex: m.membershipIndex, byteLength: fields.data.byteLength,
      ...fields,
    };
    return c.system.ref(raftActorId(to as NodeId)).ask<Uint8Array>({ type: 'rpc', bytes: encodeRequest(req) });
  }

  it('a snapshot whose checksum does not match is refused with SnapshotChecksumError; the follower keeps its state', async () => {
    const c = await start({ size: 3, config: SMALL });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 150, 40);
    await converge(c);
    const f = c.ids.find((id) => id !== leader)!;
    await waitUntil(c.node(f), (m) => m.snapshotIndex >= 100, `node ${f} took its own snapshot`);
    const before = await c.node(f).currentMetrics();
    const snapBefore = await storageOf(c, f).ask<SnapshotMeta | null>({ type: 'getSnapshot' });
    const digestBefore = (await digests(c, [f]))[0];

    const data = new TextEncoder().encode(JSON.stringify({ applied: before.commitIndex + 50, data: [['evil', 'x']] }));
    const err = await rejectsWith(sendInstallSnapshot(c, f, {
      lastIncludedIndex: (before.commitIndex + 50) as LogIndex, data, snapshotId: 'bad-checksum-1', checksum: (crc32(data) ^ 0x5a5a) >>> 0,
    }), SnapshotChecksumError, 'InstallSnapshot with a wrong checksum');
    expect(err.message).to.contain('bad-checksum-1').and.to.contain('crc32');

    const after = await c.node(f).currentMetrics();
    expect({ snap: after.snapshotIndex, applied: after.lastApplied, commit: after.commitIndex, last: after.lastLogIndex })
      .to.deep.equal({ snap: before.snapshotIndex, applied: before.lastApplied, commit: before.commitIndex, last: before.lastLogIndex });
    expect((await digests(c, [f]))[0]).to.deep.equal(digestBefore);
    expect((await storageOf(c, f).ask<SnapshotMeta | null>({ type: 'getSnapshot' }))?.id, 'current snapshot in storage').to.equal(snapBefore?.id);
    expect((await record(c, f)).restores).to.deep.equal([]);
    // The cluster keeps working, f included.
    await putMany(c, 'b', 30, 40);
    await expectDigestsEqual(c);
    expectNoNodeFailed(c);
  });

  // Was a bug: storage made any complete snapshot current while the core ignored one at or below
  // its commit index, so a stale snapshot replaced the follower's newer one in storage and a restart
  // went back to it. The core now answers such chunks at once and never stores them.
  it('a stale InstallSnapshot (below what the follower has applied) does not replace its newer snapshot', async () => {
    const dirs = tempDirs(3);
    const c = await start({ size: 3, config: SMALL, storage: (id) => fileStorageSpec({ dir: dirs[id - 1] }) });
    const leader = await c.waitForLeader();
    await putMany(c, 'a', 250, 40);
    await converge(c);
    const f = c.ids.find((id) => id !== leader)!;
    await waitUntil(c.node(f), (m) => m.snapshotIndex >= 200, `node ${f} took its own snapshots`);
    const before = await c.node(f).currentMetrics();
    const snapBefore = (await storageOf(c, f).ask<SnapshotMeta | null>({ type: 'getSnapshot' }))!;
    expect(snapBefore.lastIncludedIndex).to.equal(before.snapshotIndex);
    // A complete, well-formed snapshot (right length and checksum) from the current leader in its
    // term, 2 entries older than f's own: above f's purge point (snapshotIndex - keep), so storage
    // cannot tell it is stale by its log. It stands for a transfer's late retransmission. The core
    // sees it covers nothing f has not committed ('stale') and ignores it; storage must keep f's
    // newer snapshot too, or storage and core disagree on the snapshot.
    const staleIndex = before.snapshotIndex - 2;
    const data = new TextEncoder().encode(JSON.stringify({ applied: staleIndex, data: [] }));
    const answer = decodeResponse(await sendInstallSnapshot(c, f, {
      lastIncludedIndex: staleIndex as LogIndex, lastIncludedTerm: before.currentTerm, data, snapshotId: `stale-${staleIndex}`, checksum: crc32(data) >>> 0,
    }));
    expect(answer.type).to.equal('installSnapshotResponse');
    const after = await c.node(f).currentMetrics();
    expect(after.snapshotIndex, 'the core ignored the stale snapshot').to.equal(before.snapshotIndex);
    expect((await record(c, f)).restores, 'not restored from it').to.deep.equal([]);
    const now = (await storageOf(c, f).ask<SnapshotMeta | null>({ type: 'getSnapshot' }))!;
    expect({ id: now.id, index: now.lastIncludedIndex }, `node ${f}'s current snapshot in storage after a stale install`)
      .to.deep.equal({ id: snapBefore.id, index: snapBefore.lastIncludedIndex });
    // What follows if storage took it: a restart restores the state machine from it.
    await c.restartNode(f);
    await putMany(c, 'b', 20, 40);
    await expectDigestsEqual(c);
    expectNoNodeFailed(c);
  });

  describe('snapshotNow', () => {
    it('without snapshot() in the state machine: NotAllowedError, and no automatic snapshots', async () => {
      const c = await start({ size: 1, stateMachine: NO_SNAPSHOT_KV_SPEC, config: { snapshotLogsSinceLast: 10, metricsIntervalMs: 100 } });
      await c.waitForLeader();
      await putMany(c, 'a', 40, 10);
      await converge(c);
      await rejectsWith(c.node(1).snapshotNow(), NotAllowedError, 'snapshotNow');
      const m = await c.node(1).currentMetrics();
      expect(m.lastApplied).to.be.at.least(40);
      expect(m.snapshotIndex).to.equal(0);
      expectNoNodeFailed(c);
    });

    // Was a bug: with nothing applied, snapshotNow dereferenced a snapshot that was never started
    // and the TypeError failed the node.
    it('on a pristine node (nothing applied): NotAllowedError, and the node keeps running', async () => {
      const c = await start({ size: 1, init: false, config: { snapshotLogsSinceLast: 0 } });
      await waitUntil(c.node(1), (m) => m.state === 'NonVoter', 'node started');
      let outcome: unknown;
      try { outcome = await c.node(1).snapshotNow({ timeoutMs: 5_000 }); } catch (err) { outcome = err; }
      expect(outcome, `snapshotNow on a pristine node: ${String(outcome)}`).to.be.instanceOf(NotAllowedError);
      expectNoNodeFailed(c);
      await c.node(1).initWithConfig([1]);
      await c.waitForLeader();
      await putMany(c, 'a', 5, 10);
      const meta = await c.node(1).snapshotNow();
      expect(meta.lastIncludedIndex).to.equal((await c.node(1).currentMetrics()).lastApplied);
    });

    it('concurrent calls share one snapshot; a call with nothing new applied does not break the node', async () => {
      const c = await start({ size: 3, config: { snapshotLogsSinceLast: 0, snapshotKeepEntries: 5, metricsIntervalMs: 100 } });
      const leader = await c.waitForLeader();
      await putMany(c, 'a', 50, 2000);
      await converge(c);
      const node = c.node(leader);
      const metas = await Promise.all([node.snapshotNow(), node.snapshotNow(), node.snapshotNow()]);
      expect(new Set(metas.map((m) => m.id)).size, `snapshot ids ${metas.map((m) => m.id).join(', ')}`).to.equal(1);
      const m = await node.currentMetrics();
      expect(m.snapshotIndex).to.equal(metas[0].lastIncludedIndex);
      expect(metas[0].lastIncludedIndex).to.equal(m.lastApplied);
      expect((await storageOf(c, leader).ask<SnapshotMeta | null>({ type: 'getSnapshot' }))?.id).to.equal(metas[0].id);
      // Again, with nothing applied since: the current snapshot, or a refusal; never a broken node.
      let again: SnapshotMeta | Error;
      try { again = await node.snapshotNow({ timeoutMs: 5_000 }); } catch (err) { again = err as Error; }
      if (again instanceof Error) expect(again, `${again.name}: ${again.message}`).to.be.instanceOf(NotAllowedError);
      else expect(again.lastIncludedIndex).to.equal(metas[0].lastIncludedIndex);
      expectNoNodeFailed(c);
      await putMany(c, 'b', 10, 10);
      await expectDigestsEqual(c);
    });
  });
});
