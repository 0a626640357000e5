/**
 * Durable storage end to end: Raft nodes on FileStorage, in temp directories.
 *
 * - A follower and then the leader are restarted on their directories while clients write: each
 *   comes back with its log from disk (checked before it can hear from anyone), catches up, and no
 *   acknowledged write is lost; the directories, read offline, agree on every acknowledged entry.
 * - All three nodes stop at once and a new cluster starts on the same directories without
 *   InitWithConfig: the config comes back from the log, a leader is elected, nothing is lost.
 * - A damaged or locked directory refuses the start on a worker-placed storage with the typed
 *   error (revived across the thread), naming the file and offset or the other process.
 * - A leader whose disk hangs (its storage thread blocked) keeps its followers from electing: the
 *   heartbeats come from the Raft thread, which the stall does not block.
 *
 * Every wait is on a condition with a deadline, never a fixed sleep.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../../actors/local-cluster';
import { RaftNode } from '../../actors/node';
import { ForwardToLeaderError, NotAllowedError, ProposalDroppedError } from '../../actors/raft/core/errors';
import { nodeId, type Entry, type NodeId } from '../../actors/raft/core/types';
import { voters } from '../../actors/raft/core/membership';
import type { RaftMetrics } from '../../actors/metrics/metrics';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { ActorSystem } from '../../runtime/system';
import { CPU_POOL_ID } from '../../runtime/cpu-pool';
import { LocalNetwork } from '../../network/local-network';
import { fileStorageSpec, readFileStorage, StorageIoError, StorageLockedError } from '../../storage/file-storage';
import { CorruptLogError } from '../../storage/record-log';
import { KV_SPEC, digests, rejectsWith, waitUntil, type KvDigest } from './helpers';
import { STALLING_STORAGE_MODULE, StallControl, type StallingStorageArgs } from './fixtures/stalling-storage';

const SEGMENT_BYTES = 16 * 1024; // small segments: the runs below cross several segment changes
const dec = new TextDecoder();

const dirsMade: string[] = [];
function tempDirs(n: number): string[] {
  return Array.from({ length: n }, () => {
    const d = mkdtempSync(join(tmpdir(), 'actor-raft-t80-'));
    dirsMade.push(d);
    return d;
  });
}
after(() => { for (const d of dirsMade) rmSync(d, { recursive: true, force: true }); });

/** Storage of node id in dirs[id - 1]. */
const storageIn = (dirs: readonly string[]) => (id: NodeId) => fileStorageSpec({ dir: dirs[id - 1], segmentBytes: SEGMENT_BYTES });

interface Ack { readonly key: string; readonly value: string; readonly index: number; readonly term: number }

/**
 * Clients that put unique keys through whichever node leads, following redirects. A write whose
 * outcome is unknown (node stopped, timeout) is never retried: it may or may not be applied. A
 * dropped one (never applied) is retried. Runs until `stop()` says so; `acked` grows as it goes.
 */
class Writers {
  readonly acked: Ack[] = [];
  readonly unknown = new Set<string>();
  private next = 0;
  private stopped = false;
  private readonly done: Promise<void>;
  /** Resolves when `acked.length` first reaches a threshold. */
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly cluster: () => LocalCluster, private readonly prefix: string, clients: number) {
    this.done = Promise.all(Array.from({ length: clients }, () => this.client())).then(() => undefined);
  }

  /** Resolves once `n` more writes than now are acknowledged (or rejects after timeoutMs). */
  ackedMore(n: number, timeoutMs = 20_000): Promise<void> { return this.ackedAtLeast(this.acked.length + n, timeoutMs); }

  ackedAtLeast(n: number, timeoutMs = 20_000): Promise<void> {
    if (this.acked.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.prefix}: ${n} acks not reached within ${timeoutMs} ms (have ${this.acked.length}, unknown ${this.unknown.size})`)), timeoutMs);
      this.waiters.push({ n, resolve: () => { clearTimeout(t); resolve(); } });
    });
  }

  async stop(): Promise<void> { this.stopped = true; await this.done; }

  /** The agreed leader, or null once the writers are stopped (nodes may be down for good then). */
  private async leader(): Promise<number | null> {
    const deadline = Date.now() + 20_000;
    while (!this.stopped) {
      try {
        return await this.cluster().waitForLeader({ timeoutMs: 500 });
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
    return null;
  }

  private async client(): Promise<void> {
    let target: number | null = await this.leader();
    while (!this.stopped) {
      const i = this.next++;
      const key = `${this.prefix}-${i}`;
      const value = `v${i}`;
      const payload = encodeKv({ op: 'put', key, value });
      for (;;) {
        // Stopped before this write was (re)sent: it was never applied; drop it.
        if (this.stopped || target === null) return;
        const c = this.cluster();
        if (!c.ids.includes(target as NodeId)) { target = await this.leader(); continue; } // not running: nothing was sent
        try {
          const r = await c.node(target).clientWrite(payload, { timeoutMs: 10_000 });
          this.acked.push({ key, value, index: r.index, term: r.term });
          this.waiters = this.waiters.filter((w) => (this.acked.length >= w.n ? (w.resolve(), false) : true));
          break;
        } catch (err) {
          if (err instanceof ForwardToLeaderError) {
            target = err.leaderId ?? await this.leader();
            continue;
          }
          if (err instanceof ProposalDroppedError) continue; // never applied: safe to retry
          this.unknown.add(key); // NodeStoppedError, a timeout...: outcome unknown, never retried
          target = await this.leader();
          break;
        }
      }
    }
  }
}

/** Every acknowledged write is applied on every running node, and the replicas are identical. */
async function expectAllAppliedEverywhere(cluster: LocalCluster, acked: readonly Ack[]): Promise<KvDigest[]> {
  const maxIndex = Math.max(...acked.map((a) => a.index));
  await cluster.waitForApplied(maxIndex, { timeoutMs: 20_000 });
  const leader = await cluster.waitForLeader({ timeoutMs: 20_000 });
  await cluster.waitForApplied((await cluster.node(leader).currentMetrics()).commitIndex, { timeoutMs: 20_000 });
  const ds = await digests(cluster);
  expect(new Set(ds.map((d) => `${d.appliedIndex}/${d.sha256}`)).size, `replicas differ: ${JSON.stringify(ds)}`).to.equal(1);
  for (const id of cluster.ids) {
    const missing: string[] = [];
    for (const a of acked) if ((await cluster.node(id).query<string | null>({ q: 'get', key: a.key })) !== a.value) missing.push(a.key);
    expect(missing, `node ${id}: acknowledged writes not applied`).to.deep.equal([]);
  }
  return ds;
}

/** Reads the directories offline: each holds every acknowledged write at its index and term, and the logs agree up to `upTo`. */
async function expectDurableEverywhere(dirs: readonly string[], acked: readonly Ack[], upTo: number): Promise<Entry[][]> {
  const logs = await Promise.all(dirs.map(async (d) => {
    const r = await readFileStorage(d);
    expect(r.tornBytes, `${d}: a clean stop leaves no torn tail`).to.equal(0);
    return r.entries;
  }));
  for (const [k, log] of logs.entries()) {
    const bad: string[] = [];
    for (const a of acked) {
      const e = log[a.index - 1];
      if (e === undefined || e.index !== a.index || e.term !== a.term || e.kind !== 'normal' || !dec.decode(e.payload).includes(`"key":"${a.key}"`)) {
        bad.push(`${a.key}@${a.index}/t${a.term}: found ${e === undefined ? 'nothing' : `${e.kind}@${e.index}/t${e.term}`}`);
      }
    }
    expect(bad, `${dirs[k]}: acknowledged writes not on disk as acknowledged`).to.deep.equal([]);
    expect(log.length, `${dirs[k]}: log reaches the commit index`).to.be.at.least(upTo);
  }
  for (let i = 0; i < upTo; i++) {
    const terms = logs.map((l) => l[i].term);
    expect(new Set(terms).size, `index ${i + 1}: terms differ across the directories ${JSON.stringify(terms)}`).to.equal(1);
  }
  return logs;
}

describe('t80 durable storage (FileStorage)', function () {
  this.timeout(60_000);

  describe('a 3-node cluster on FileStorage (local placement)', () => {
    let cluster: LocalCluster | null = null;
    afterEach(async () => { await cluster?.shutdown(); cluster = null; });

    it('restarting a follower, then the leader: each recovers its log from disk and catches up; no acknowledged write is lost, and the directories agree', async function () {
      const dirs = tempDirs(3);
      const c = await LocalCluster.start({ size: 3, placement: 'local', seed: 11, stateMachine: KV_SPEC, storage: storageIn(dirs) });
      cluster = c;
      const writers = new Writers(() => c, 'a', 8);
      try {
        await writers.ackedAtLeast(300);

        // Follower restart. Cut off from the network first, so what it knows right after its start
        // can only have come from its own disk.
        const leader1 = await c.waitForLeader();
        const follower = c.ids.find((id) => id !== leader1)!;
        const before = await c.node(follower).currentMetrics();
        c.isolate(follower);
        // Everything it had applied is on its disk (a node applies only what it has made durable).
        const durable = Math.max(before.lastApplied, (await c.node(follower).currentMetrics()).lastApplied);
        expect(durable, 'the follower had applied writes before its restart').to.be.greaterThan(100);
        const f = await c.restartNode(follower);
        const fresh = await f.currentMetrics();
        expect(fresh.lastLogIndex, `follower ${follower}'s log right after restart (it had ${durable} applied)`).to.be.at.least(durable);
        expect(fresh.currentTerm, 'its term comes back from disk').to.be.at.least(before.currentTerm);
        expect([...voters(fresh.membership)].sort(), 'its config comes back from the log').to.deep.equal([1, 2, 3]);
        expect(fresh.state, 'a recovered member starts as a follower, not a pristine NonVoter').to.not.equal('NonVoter');
        c.restore(follower);
        const afterFollower = writers.acked.length;
        await writers.ackedMore(150);
        const { commitIndex } = await c.node(await c.waitForLeader()).currentMetrics();
        await waitUntil(f, (m) => m.lastApplied >= commitIndex, `restarted follower ${follower} catches up to ${commitIndex}`, 20_000);

        // Leader restart, clients still writing.
        const leader2 = await c.waitForLeader();
        const l2m = await c.node(leader2).currentMetrics();
        const restarted = await c.restartNode(leader2);
        const lfresh = await restarted.currentMetrics();
        expect(lfresh.lastLogIndex, `old leader ${leader2}'s log right after restart`).to.be.at.least(l2m.lastApplied);
        expect(lfresh.currentTerm).to.be.at.least(l2m.currentTerm);
        const newLeader = await c.waitForLeader({ timeoutMs: 20_000 });
        const nm = await c.node(newLeader).currentMetrics();
        expect(nm.currentTerm, 'a new term after the leader restart').to.be.greaterThan(l2m.currentTerm);
        const afterLeader = writers.acked.length;
        await writers.ackedMore(150);
        expect(writers.acked.slice(afterLeader).some((a) => a.term > l2m.currentTerm), 'writes acknowledged in a later term').to.equal(true);
        await writers.stop();

        expect(writers.acked.length).to.be.greaterThan(afterFollower);
        await expectAllAppliedEverywhere(c, writers.acked);
        const { commitIndex: finalCommit } = await c.node(await c.waitForLeader()).currentMetrics();
        await c.shutdown();
        cluster = null;
        await expectDurableEverywhere(dirs, writers.acked, finalCommit);
        for (const d of dirs) {
          expect(existsSync(join(d, 'LOCK')), `${d}: the lock is released on stop`).to.equal(false);
          expect(readdirSync(d).filter((n) => n.startsWith('segment-')).length, `${d}: the run crossed segment changes`).to.be.greaterThan(1);
        }
        this.test!.title += ` [acked ${writers.acked.length}, unknown ${writers.unknown.size}, commit ${finalCommit}]`;
      } finally {
        await writers.stop().catch(() => undefined);
      }
    });

    it('stopping all three at once and starting a new cluster on the same directories (no InitWithConfig): a leader is elected, nothing acknowledged is lost, writes go on', async function () {
      const dirs = tempDirs(3);
      const c1 = await LocalCluster.start({ size: 3, placement: 'local', seed: 12, stateMachine: KV_SPEC, storage: storageIn(dirs) });
      cluster = c1;
      const writers = new Writers(() => c1, 'b', 8);
      let termBefore = 0;
      try {
        await writers.ackedAtLeast(200);
        termBefore = (await c1.node(await c1.waitForLeader()).currentMetrics()).currentTerm;
        // All at once, with writes in flight (the clients send no new ones once told to stop).
        const stopping = writers.stop();
        await Promise.all(c1.ids.map((id) => c1.stopNode(id)));
        await stopping;
      } finally {
        await writers.stop();
      }
      await c1.shutdown();
      cluster = null;
      const acked1 = writers.acked.slice();
      const offline = await Promise.all(dirs.map((d) => readFileStorage(d)));
      for (const [k, r] of offline.entries()) {
        expect(r.entries.length, `${dirs[k]} holds a log`).to.be.greaterThan(0);
        expect(r.hardState.currentTerm, `${dirs[k]} holds the term`).to.be.at.least(1);
      }

      const c2 = await LocalCluster.start({ size: 3, placement: 'local', seed: 13, stateMachine: KV_SPEC, storage: storageIn(dirs), init: false });
      cluster = c2;
      for (const id of c2.ids) {
        const m = await c2.node(id).currentMetrics();
        expect(m.lastLogIndex, `node ${id} recovered its log`).to.be.at.least(offline[id - 1].entries.length);
        expect([...voters(m.membership)].sort(), `node ${id} recovered the config from its log`).to.deep.equal([1, 2, 3]);
      }
      const leader = await c2.waitForLeader({ timeoutMs: 20_000 });
      expect((await c2.node(leader).currentMetrics()).currentTerm, 'a new term').to.be.greaterThan(termBefore);
      // The recovered nodes are not pristine: forming a cluster on them again is refused.
      await rejectsWith(c2.node(leader).initWithConfig([1, 2, 3]), NotAllowedError, 'InitWithConfig on a recovered node');

      const writers2 = new Writers(() => c2, 'c', 4);
      try { await writers2.ackedAtLeast(100); } finally { await writers2.stop(); }
      await expectAllAppliedEverywhere(c2, [...acked1, ...writers2.acked]);
      const { commitIndex } = await c2.node(await c2.waitForLeader()).currentMetrics();
      await c2.shutdown();
      cluster = null;
      await expectDurableEverywhere(dirs, [...acked1, ...writers2.acked], commitIndex);
      this.test!.title += ` [acked before ${acked1.length} (unknown ${writers.unknown.size}), after ${writers2.acked.length}]`;
    });
  });

  describe('a node whose storage runs on its own worker thread (worker placement)', () => {
    it('refuses to start on a damaged directory with CorruptLogError (file, offset), and on a directory locked by another live process with StorageLockedError', async () => {
      // A real node's directory: one node, sequential writes, so the segment holds one record each.
      const [damaged, locked] = tempDirs(2);
      for (const dir of [damaged, locked]) {
        const one = await LocalCluster.start({ size: 1, placement: 'local', stateMachine: KV_SPEC, storage: () => fileStorageSpec({ dir }) });
        try {
          await one.waitForLeader();
          for (let i = 0; i < 10; i++) await one.node(1).clientWrite(encodeKv({ op: 'put', key: `k${i}`, value: 'v' }));
        } finally { await one.shutdown(); }
      }
      const seg = join(damaged, 'segment-0000000001.log');
      const bytes = readFileSync(seg);
      const starts = recordStarts(bytes);
      expect(starts.length, 'records in the segment').to.be.at.least(10);
      const victim = starts[Math.floor(starts.length / 2)];
      const next = starts[starts.indexOf(victim) + 1];
      bytes[victim + Math.floor((next - victim) / 2)] ^= 0x20; // a byte in the middle of a record in the middle
      writeFileSync(seg, bytes);
      writeFileSync(join(locked, 'LOCK'), `${process.ppid}\n`);

      const system = ActorSystem.create({ seed: 3 });
      const net = new LocalNetwork();
      try {
        const start = (id: number, dir: string) => RaftNode.start({
          system, id, network: net.endpointSpec(nodeId(id)), stateMachine: KV_SPEC, placement: 'worker', storage: fileStorageSpec({ dir }),
        });
        const [corrupt, lockErr] = await Promise.all([
          rejectsWith(start(1, damaged), CorruptLogError, 'start on a damaged directory'),
          rejectsWith(start(2, locked), StorageLockedError, 'start on a locked directory'),
        ]);
        expect(corrupt.file).to.equal(seg);
        expect(corrupt.offset, `the damaged record starts at ${victim}`).to.equal(victim);
        expect(corrupt.message).to.include(`${seg}: corrupt record at byte offset ${victim}`);
        expect(readFileSync(seg).equals(bytes), 'a refused start changes nothing').to.equal(true);
        expect(existsSync(join(damaged, 'LOCK')), 'and leaves no lock behind').to.equal(false);
        expect(lockErr.pid).to.equal(process.ppid);
        expect(lockErr.dir).to.equal(locked);
        expect(readFileSync(join(locked, 'LOCK'), 'utf8').trim(), 'the other process keeps its lock').to.equal(String(process.ppid));
        // A refused start leaves no actor of the node and no thread behind (the process's CPU pool
        // actor, shared by every node of the system, stays; its pool starts only on use).
        expect(system.actorIds()).to.deep.equal([CPU_POOL_ID]);
        expect(system.arbiterNames()).to.deep.equal([]);
      } finally {
        await system.shutdown();
      }
    });

    it('a leader whose disk hangs for 3 election timeouts keeps its followers: heartbeats go on, no election, and the writes made during the stall complete', async function () {
      const config = { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 600, heartbeatIntervalMs: 50, metricsIntervalMs: 100 };
      const STALL_MS = 3 * config.electionTimeoutMaxMs;
      const [d1, d2, d3] = tempDirs(3);
      const control = new StallControl();
      const system = ActorSystem.create({ seed: 5 });
      const net = new LocalNetwork();
      const nodes: RaftNode[] = [];
      try {
        const args: StallingStorageArgs = { storage: { dir: d1 }, control: control.buffer };
        const n1 = await RaftNode.start({
          system, id: 1, network: net.endpointSpec(nodeId(1)), stateMachine: KV_SPEC, placement: 'worker', config,
          storage: { module: STALLING_STORAGE_MODULE, export: 'createStallingStorage', args },
        });
        nodes.push(n1);
        await n1.initWithConfig([1]);
        await waitUntil(n1, (m) => m.state === 'Leader', 'node 1 leads alone');
        for (const [id, dir] of [[2, d2], [3, d3]] as const) {
          nodes.push(await RaftNode.start({ system, id, network: net.endpointSpec(nodeId(id)), stateMachine: KV_SPEC, placement: 'local', config, storage: fileStorageSpec({ dir }) }));
        }
        const [, n2, n3] = nodes;
        await n1.proposeConfigChange({ add: [2, 3] }, { timeoutMs: 30_000 });
        const term = (await n1.currentMetrics()).currentTerm;
        for (const n of [n2, n3]) await waitUntil(n, (m) => m.state === 'Follower' && m.currentLeader === 1 && m.currentTerm === term, `node ${n.id} follows node 1`);

        // Every published change of term, state or leader on any node, from here on.
        const changes: string[] = [];
        const offs = nodes.map((n) => n.onMetrics((m: RaftMetrics) => {
          if (m.currentTerm !== term || m.currentLeader !== 1 || m.state !== (n.id === 1 ? 'Leader' : 'Follower')) changes.push(`node ${n.id}: ${m.state} term ${m.currentTerm} leader ${m.currentLeader}`);
        }));

        // A steady stream of writes, so that the stall begins on a write and writes arrive during it.
        const put = (key: string, responseMode: 'committed' | 'applied') => n1.clientWrite(encodeKv({ op: 'put', key, value: key }), { responseMode, timeoutMs: 20_000 })
          .then((r) => ({ key, index: r.index, at: Date.now() }));
        let writing = true;
        let seq = 0;
        const background = (async () => { const out: { key: string; index: number; at: number }[] = []; while (writing) out.push(await put(`bg-${seq++}`, 'committed')); return out; })();
        await put('warm-up', 'applied');

        const followersBefore = await Promise.all([n2, n3].map((n) => n.currentMetrics()));
        control.request(STALL_MS);
        await control.waitStarted(1, 10_000);
        // Issued while node 1's storage thread is blocked (checked below against the stall's end).
        const issuedAt = Date.now();
        const during = [...Array.from({ length: 20 }, (_, i) => put(`stall-a-${i}`, 'applied')), ...Array.from({ length: 20 }, (_, i) => put(`stall-c-${i}`, 'committed'))];
        // Replication to the followers goes on meanwhile: they persist and apply what a quorum of
        // them has (node 1 counts itself only through its own disk, which is stuck).
        const followersMid = await Promise.all([n2, n3].map((n, k) => waitUntil(n, (m) => m.lastApplied > followersBefore[k].lastApplied + 5, `node ${n.id} applies during the stall`, STALL_MS)));
        const midAt = Date.now();
        const leaderMid = await n1.currentMetrics();
        await control.waitDone(1, STALL_MS + 10_000);
        expect(control.startedAt, 'the writes were issued after the stall began').to.be.at.most(issuedAt);
        expect(control.endedAt - control.startedAt, 'the storage thread was blocked for the whole stall').to.be.at.least(STALL_MS - 5);
        expect(midAt, 'followers applied new entries before the stall ended').to.be.below(control.endedAt);
        expect(leaderMid.state).to.equal('Leader');
        const results = await Promise.all(during);
        const applied = results.filter((r) => r.key.startsWith('stall-a-'));
        for (const r of applied) expect(r.at, `${r.key} (applied mode) answered after node 1's disk came back`).to.be.at.least(control.endedAt);
        expect(results).to.have.length(40);

        // Keep writing for a further 2 election timeouts' worth after the stall, then stop.
        await waitUntil(n1, () => Date.now() - control.endedAt > 2 * config.electionTimeoutMaxMs, 'writes go on after the stall', 10_000);
        writing = false;
        const bg = await background;
        const last = await put('after', 'applied');
        for (const n of nodes) await waitUntil(n, (m) => m.lastApplied >= last.index, `node ${n.id} applies ${last.index}`, 20_000);
        for (const off of offs) off();

        expect(changes, 'no node changed term, state or leader during or after the stall').to.deep.equal([]);
        for (const [k, n] of [n2, n3].entries()) {
          const m = await n.currentMetrics();
          expect(m.currentTerm, `node ${n.id}'s term`).to.equal(term);
          expect(followersMid[k].currentTerm, `node ${n.id}'s term mid-stall`).to.equal(term);
        }
        const m1 = await n1.currentMetrics();
        expect(m1.state).to.equal('Leader');
        expect(m1.currentTerm).to.equal(term);
        const ds = await Promise.all(nodes.map((n) => n.query<KvDigest>({ q: 'digest' })));
        expect(new Set(ds.map((d) => d.sha256)).size, `replicas differ: ${JSON.stringify(ds)}`).to.equal(1);
        for (const n of nodes) for (const r of [...results, ...bg]) expect(await n.query({ q: 'get', key: r.key }), `node ${n.id}: ${r.key}`).to.equal(r.key);
        this.test!.title += ` [stall ${Math.round(control.endedAt - control.startedAt)} ms, followers applied ${followersMid.map((m, k) => m.lastApplied - followersBefore[k].lastApplied).join('/')} entries during it, ${bg.length} background writes]`;
      } finally {
        await Promise.allSettled(nodes.map((n) => n.stop()));
        await system.shutdown();
      }
    });
  });
});

describe('t80 durable storage: one node per directory within one process', function () {
  this.timeout(30_000);

  // A LOCK naming this very process used to be taken over, so a second node of the same process (a
  // LocalCluster whose storage function gives every id the same dir, or two RaftNodes of one
  // application) opened a directory a running node had open. The second start must be refused, as
  // it is for another process.
  it('a second node of this process on a directory a running node has open is refused with StorageLockedError', async () => {
    const [dir] = tempDirs(1);
    const system = ActorSystem.create({ seed: 9 });
    const net = new LocalNetwork();
    const start = (id: number) => RaftNode.start({ system, id, network: net.endpointSpec(nodeId(id)), stateMachine: KV_SPEC, placement: 'local', storage: fileStorageSpec({ dir }) });
    let second: RaftNode | null = null;
    try {
      const first = await start(1);
      await first.initWithConfig([1]);
      await waitUntil(first, (m) => m.state === 'Leader', 'node 1 leads alone');
      await first.clientWrite(encodeKv({ op: 'put', key: 'k', value: 'v' }));
      let err: unknown = null;
      try { second = await start(2); } catch (e) { err = e; }
      expect(second === null, `a second node started on ${dir}, which node 1 has open`).to.equal(true);
      expect(err).to.be.instanceOf(StorageLockedError);
      // The running node is unharmed and keeps its lock.
      await first.clientWrite(encodeKv({ op: 'put', key: 'k2', value: 'v2' }), { responseMode: 'applied' });
      expect(readFileSync(join(dir, 'LOCK'), 'utf8').split(' ')[0], 'the first node keeps its lock').to.equal(String(process.pid));
    } finally {
      await second?.stop();
      await system.shutdown();
    }
  });
});

/** The byte offsets where the records of a segment start (u32 body length | u32 crc | body). */
function recordStarts(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + 8 <= bytes.length; at += 8 + bytes.readUInt32BE(at)) out.push(at);
  return out;
}

describe('t80 durable storage: a disk that fails under a running node', function () {
  this.timeout(30_000);

  it('stops the node, and onFailed is told StorageIoError (the cause, not a symptom such as ActorGoneError)', async () => {
    const [dir] = tempDirs(1);
    const system = ActorSystem.create({ seed: 11 });
    const net = new LocalNetwork();
    const failures: Error[] = [];
    try {
      const node = await RaftNode.start({
        system, id: 1, network: net.endpointSpec(nodeId(1)), stateMachine: KV_SPEC, placement: 'local',
        storage: fileStorageSpec({ dir }), onFailed: (cause) => failures.push(cause),
      });
      await node.initWithConfig([1]);
      await waitUntil(node, (m) => m.state === 'Leader', 'node 1 leads alone');
      await node.clientWrite(encodeKv({ op: 'put', key: 'a', value: '1' }));
      // Pull the log file out from under the storage actor: its next write fails as a dying disk's would.
      const storage = system.localActor<{ fh: { close(): Promise<void> } }>('n1/storage');
      expect(storage, 'the storage actor runs on this thread').to.not.equal(undefined);
      await storage!.fh.close();
      const write = node.clientWrite(encodeKv({ op: 'put', key: 'b', value: '2' }), { timeoutMs: 10_000 });
      await write.then(() => expect.fail('a write on a failed disk must not be acknowledged'), () => undefined);
      const deadline = Date.now() + 10_000;
      while (failures.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(failures.map((e) => e.name)).to.deep.equal(['StorageIoError']);
      expect((failures[0] as StorageIoError).op).to.equal('write');
      expect((await readFileStorage(dir)).entries.some((e: Entry) => e.kind === 'normal' && dec.decode(e.payload).includes('"b"'))).to.equal(false);
    } finally {
      await system.shutdown();
    }
  });
});
