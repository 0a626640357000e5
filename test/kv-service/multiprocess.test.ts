/**
 * The KV service as users run it: real `actor-raft-kv` processes on loopback, talking TCP to each
 * other and HTTP to the clients, broken with SIGKILL and reshaped with /admin/members while a
 * concurrent client load runs. Every request the clients make is recorded, and the whole history
 * must be linearizable (sim/linearizability's checker: a write with unknown outcome may have taken
 * effect or not); the final state, read from every node, must be one the acknowledged and unknown
 * writes explain, and every replica must hold it.
 *
 * Nothing here waits a fixed time: each step waits, under a generous deadline, for what the nodes
 * report (GET /status) or for the load to have completed a number of requests.
 *
 * On failure the nodes' stderr tails and the history's summary are printed, and the history is
 * written to a JSON file in the temp dir. MP_TRACE=1 prints each step with its time and keeps the
 * history file of a passing run too.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvCluster, summarize, type ClusterOptions, type NodeStatus } from './harness/cluster';
import { explainIllegal, History } from './harness/history';
import { KvHttpClient } from './harness/http';
import { ClientLoad, type LoadTarget } from './harness/load';
import { findStaleObservations } from './harness/stale-reads';
import { pollUntil } from './harness/wait';

/** Few keys, so that clients collide on them and cas sees real contention. */
const KEYS = ['k0', 'k1', 'k2'];
const CLIENTS = 6;
/** Longer than the service's own request timeout (10 s), so a live node always answers first. */
const LOAD_TIMEOUT_MS = 15_000;
/** Acknowledged writes each phase of the load must add: before a fault, and after it. */
const WRITES_BEFORE_FAULT = 60;
const WRITES_AFTER_FAULT = 40;
const ROUNDS = 3;
const PHASE_TIMEOUT_MS = 30_000;
const CHECKER_BUDGET_MS = 20_000;
/** Client ids of the test's own reads in the history, above the load's. */
const PROBE_CLIENT = 1_000;

const started = Date.now();
/** Progress lines with elapsed seconds, when MP_TRACE is set. */
function trace(msg: string): void {
  if (process.env.MP_TRACE) console.log(`      [${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

interface Run {
  cluster: KvCluster;
  history: History;
  http: KvHttpClient;
  load: ClientLoad | null;
  /** Nodes the load sends to: running and listening (a starting node would only refuse connections). */
  targets: number[];
}

/** One cluster per describe block, torn down (processes, directories, sockets) even on failure. */
function useCluster(ids: readonly number[], placement: ClusterOptions['placement']): () => Run {
  let run: Run | null = null;
  before(async () => {
    const cluster = await KvCluster.create({ ids, placement, startTimeoutMs: 60_000 });
    run = { cluster, history: new History(), http: new KvHttpClient({ timeoutMs: LOAD_TIMEOUT_MS, maxSockets: CLIENTS + 2 }), load: null, targets: [] };
  });
  afterEach(function () {
    if (run === null) return;
    const failed = this.currentTest?.state === 'failed';
    if (!failed && !process.env.MP_TRACE) return;
    const file = join(tmpdir(), `actor-raft-kv-mp-history-${process.pid}-${Date.now()}.json`);
    try { writeFileSync(file, JSON.stringify(run.history.records)); } catch { /* the report below still helps */ }
    if (!failed) { trace(`history records in ${file}`); return; }
    console.error(`\n----- failure report: load ${JSON.stringify(run.load?.stats)}, history ${JSON.stringify(run.history.summary())}` +
      ` (records in ${file}); anomalies: ${JSON.stringify(run.http.anomalies.slice(0, 20))}\n${run.cluster.logs()}\n----- end of failure report`);
  });
  after(async function () {
    this.timeout(60_000);
    if (run === null) return;
    const r = run;
    run = null;
    r.load?.stop().catch(() => { /* already reported by the test */ });
    r.http.close();
    await r.cluster.cleanup();
  });
  return () => {
    if (run === null) throw new Error('cluster not set up');
    return run;
  };
}

function startLoad(r: Run, valuePrefix: string, seed: number): ClientLoad {
  const load = new ClientLoad({
    http: r.http, history: r.history, keys: KEYS, clients: CLIENTS, valuePrefix, seed,
    targets: (): LoadTarget[] => r.targets.map((id) => ({ id, http: r.cluster.node(id).http })),
  });
  r.load = load;
  load.start();
  return load;
}

/** Waits until the load has had `n` more writes acknowledged than now. */
async function moreWrites(load: ClientLoad, n: number, what: string): Promise<void> {
  const target = load.stats.okWrites + n;
  await load.waitFor((s) => s.okWrites >= target, PHASE_TIMEOUT_MS, `${n} more acknowledged writes ${what}`);
}

async function formCluster(cluster: KvCluster, ids: readonly number[]): Promise<number> {
  await Promise.all(ids.map((id) => cluster.start(id)));
  await cluster.init(ids);
  return cluster.waitForLeader(ids);
}

/** A linearizable GET from node `id`, recorded in the history as the test's own client. */
async function probeRead(r: Run, id: number, key: string): Promise<string> {
  const rec = r.history.invoke(PROBE_CLIENT + id, { op: 'get', key }, id);
  const out = await r.http.get(r.cluster.node(id).http, key);
  r.history.complete(rec, out);
  if (out.outcome !== 'ok') throw new Error(`linearizable GET ${key} from node ${id}: ${out.detail ?? out.outcome}`);
  return out.output as string;
}

/** A PUT recorded in the history as the test's own client; it must be acknowledged. */
async function probeWrite(r: Run, id: number, key: string, value: string): Promise<void> {
  const rec = r.history.invoke(PROBE_CLIENT + id, { op: 'put', key, value }, id);
  const out = await r.http.put(r.cluster.node(id).http, key, value);
  r.history.complete(rec, out);
  if (out.outcome !== 'ok') throw new Error(`PUT ${key}=${value} via node ${id}: ${out.detail ?? out.outcome}`);
}

/** Waits until every node of `ids` has applied the same index as the leader's commit and its log end, and returns their stale reads of `keys`, which must agree. */
async function convergedStaleReads(r: Run, ids: readonly number[], keys: readonly string[]): Promise<Map<string, string>> {
  let last = '';
  return pollUntil(async () => {
    const s = await r.cluster.statuses(ids);
    const all = [...s.values()];
    if (all.some((m) => m === null)) return undefined;
    const leader = all.find((m) => m!.state === 'Leader');
    if (!leader || !all.every((m) => m!.lastApplied === leader.commitIndex && leader.commitIndex === leader.lastLogIndex)) {
      last = JSON.stringify(summarize(s));
      return undefined;
    }
    const values = new Map<string, string>();
    for (const key of keys) {
      const seen = await Promise.all(ids.map(async (id) => {
        const out = await r.http.get(r.cluster.node(id).http, key, true);
        if (out.outcome !== 'ok') throw new Error(`stale GET ${key} from node ${id}: ${out.detail ?? out.outcome}`);
        return out.output as string;
      }));
      if (new Set(seen).size !== 1) { last = `stale reads of ${key} differ: ${JSON.stringify(seen)}`; return undefined; }
      values.set(key, seen[0]);
    }
    return values;
  }, { timeoutMs: PHASE_TIMEOUT_MS, what: `nodes ${ids.join(',')} to converge`, describe: () => last });
}

/**
 * The end-of-run checks: every node converges to the same state, its linearizable reads agree
 * with it, each final value was written by an acknowledged or unknown write, and the whole
 * history (final reads included) is linearizable.
 */
async function checkFinalState(r: Run, ids: readonly number[]): Promise<void> {
  const stale = await convergedStaleReads(r, ids, KEYS);
  for (const key of KEYS) {
    const written = new Set(r.history.records
      .filter((x) => x.input.key === key && x.input.op !== 'get' && (x.outcome === 'ok' || x.outcome === 'unknown' || x.outcome === null))
      .filter((x) => !(x.input.op === 'cas' && x.outcome === 'ok' && x.output === false))
      .map((x) => (x.input as { value: string }).value));
    for (const id of ids) {
      const v = await probeRead(r, id, key);
      expect(v, `linearizable GET ${key} from node ${id} after the load`).to.equal(stale.get(key));
    }
    expect(written.has(stale.get(key)!), `final value of ${key} (${JSON.stringify(stale.get(key))}) was written by an acknowledged or unknown write`).to.equal(true);
  }
  // A 503 whose body says "not-applied" is a promise the checker does not rely on; check it here.
  const notApplied = new Set(r.history.records.filter((x) => x.notApplied && x.input.op !== 'get').map((x) => (x.input as { value: string }).value));
  const contradicted = r.history.records.filter((x) => x.input.op === 'get' && x.outcome === 'ok' && notApplied.has(x.output as string));
  expect(contradicted.map((x) => `get ${x.input.key} from node ${x.node} -> ${String(x.output)}`),
    `reads that saw a write the service answered 503 "not-applied" (${notApplied.size} such writes)`).to.deep.equal([]);
  // A lost acknowledged write shows as a stale observation; said here precisely, and without
  // depending on the checker's budget, which an illegal history of this size can exhaust.
  expect(findStaleObservations(r.history.records), 'observations older than an acknowledged write (lost writes)').to.deep.equal([]);
  trace(`converged; ${notApplied.size} writes answered "not-applied"; checking the history`);
  const { result, operations } = r.history.check({ timeoutMs: CHECKER_BUDGET_MS });
  trace(`checker: ${result.verdict} on ${operations} operations in ${result.elapsedMs.toFixed(0)} ms`);
  if (result.verdict === 'illegal') expect.fail(`history of ${operations} operations is not linearizable:\n${explainIllegal(result, r.history)}`);
  expect(result.verdict, `checker verdict on ${operations} operations (unknown: out of budget)`).to.equal('ok');
}

/** Load requests (not the test's probes) that node `id` answered ok, among the records from index `from` on. */
function okAnswersFrom(r: Run, id: number, from: number): number {
  return r.history.records.slice(from).filter((x) => x.node === id && x.client < PROBE_CLIENT && x.outcome === 'ok').length;
}

function expectSaneLoad(r: Run, minWrites: number): void {
  const s = r.history.summary();
  console.log(`      history: ${JSON.stringify(s)}`);
  expect(r.http.anomalies, 'answers that point at a bug in the client or the service').to.deep.equal([]);
  expect(s.open, 'requests still open after the load stopped').to.equal(0);
  expect(s.puts + s.casSwapped, 'acknowledged writes').to.be.at.least(minWrites);
  expect(s.reads, 'successful reads').to.be.at.least(minWrites / 2);
  expect(s.casRefused, 'cas refused with 409 (the keys are contended)').to.be.greaterThan(0);
}

describe('KV service: three processes, kill -9 of the leader under load', function () {
  this.timeout(150_000);
  // Node 1 runs the CLI's default placement (storage and apply on threads of their own, which a
  // SIGKILL takes down mid-fsync), the others everything on one thread: both kinds crash and
  // restart, and the test stays short (a worker-placement start costs twice as long, ~10 s on a
  // loaded 2-core machine).
  const run = useCluster([1, 2, 3], (id) => (id === 1 ? 'worker' : 'local'));
  const ALL = [1, 2, 3];

  it('forms, serves a write from every node, and keeps a linearizable history through leader crashes and restarts', async () => {
    const r = run();
    const { cluster } = r;
    let leader = await formCluster(cluster, ALL);
    trace(`formed, leader ${leader}`);

    // A write through a follower (forwarded), read back from every node, then stale.
    const follower = ALL.find((id) => id !== leader)!;
    await probeWrite(r, follower, 'hello', 'world');
    for (const id of ALL) expect(await probeRead(r, id, 'hello'), `linearizable GET from node ${id}`).to.equal('world');
    const stale = await convergedStaleReads(r, ALL, ['hello']);
    expect(stale.get('hello')).to.equal('world');

    r.targets = [...ALL];
    const load = startLoad(r, 'kill', 1);
    for (let round = 1; round <= ROUNDS; round++) {
      await moreWrites(load, WRITES_BEFORE_FAULT, `before kill ${round}`);
      leader = await cluster.waitForLeader(ALL);
      const killed = leader;
      const term = (await cluster.status(killed)).currentTerm;
      const survivors = ALL.filter((id) => id !== killed);
      r.targets = survivors;
      trace(`round ${round}: kill -9 leader ${killed}`);
      await cluster.kill9(killed);

      leader = await cluster.waitForLeader(survivors);
      const st = await cluster.status(leader);
      expect(leader, `round ${round}: a new leader`).to.not.equal(killed);
      expect(st.currentTerm, `round ${round}: the new leader's term`).to.be.greaterThan(term);
      trace(`round ${round}: new leader ${leader}, term ${st.currentTerm}`);
      await moreWrites(load, WRITES_AFTER_FAULT, `after kill ${round}, under leader ${leader}`);
      expect((await cluster.status(leader)).commitIndex, `round ${round}: the new leader committed more`).to.be.greaterThan(st.commitIndex);

      trace(`round ${round}: restart ${killed}`);
      const restartedAt = r.history.records.length;
      await cluster.start(killed);
      trace(`round ${round}: node ${killed} listening`);
      r.targets = [...ALL];
      const caughtUp = await cluster.waitForApplied(ALL);
      trace(`round ${round}: node ${killed} caught up to ${caughtUp}`);
      await moreWrites(load, WRITES_AFTER_FAULT, `after restart ${round}`);
      expect(okAnswersFrom(r, killed, restartedAt), `round ${round}: client requests the restarted node ${killed} answered`).to.be.greaterThan(0);
    }
    await load.stop();
    trace('load stopped');

    expectSaneLoad(r, ROUNDS * (WRITES_BEFORE_FAULT + 2 * WRITES_AFTER_FAULT));
    await checkFinalState(r, ALL);
  });
});

describe('KV service: membership changes under load', function () {
  this.timeout(150_000);
  // Everything on one thread per process: the other placement, and four processes start faster this way.
  const run = useCluster([1, 2, 3, 4], 'local');

  /** POSTs a change to the leader of `voters`, retrying while leadership moves, until `target` is the committed, uniform config. */
  async function changeMembers(r: Run, voters: readonly number[], change: { add?: number[]; remove?: number[] }, target: readonly number[]): Promise<NodeStatus> {
    const want = [...target].sort((a, b) => a - b);
    const done = (m: NodeStatus) => m.membership.membersAfterConsensus === null && m.commitIndex >= m.membershipIndex &&
      JSON.stringify([...m.membership.members].sort((a, b) => a - b)) === JSON.stringify(want);
    let lastAnswer = '';
    return pollUntil(async () => {
      const s = await r.cluster.statuses(r.cluster.running());
      const leaders = [...s.values()].filter((m): m is NodeStatus => m?.state === 'Leader');
      const leader = leaders.sort((a, b) => b.currentTerm - a.currentTerm)[0];
      if (!leader) return undefined;
      if (done(leader)) return leader;
      if (leader.configChange !== null) return undefined; // ours, still under way (after a lost answer too)
      const ans = await r.http.request(r.cluster.node(leader.id).http, 'POST', '/admin/members', JSON.stringify(change), 90_000);
      lastAnswer = ans.kind === 'error' ? ans.code : `${ans.status} ${ans.text.slice(0, 300)}`;
      trace(`POST /admin/members ${JSON.stringify(change)} to node ${leader.id}: ${lastAnswer}`);
      return undefined;
    }, { timeoutMs: 90_000, intervalMs: 100, what: `membership ${want.join(',')}`, describe: async () => `last answer ${lastAnswer}; ${JSON.stringify(summarize(await r.cluster.statuses(voters)))}` });
  }

  it('adds a fourth process and removes the leader while clients keep a linearizable history', async () => {
    const r = run();
    const { cluster } = r;
    const first = [1, 2, 3];
    await formCluster(cluster, first);
    await cluster.start(4); // pristine: not initialised, learns everything from the leader
    trace('formed; node 4 started');

    r.targets = [...first];
    const load = startLoad(r, 'member', 2);
    await moreWrites(load, WRITES_BEFORE_FAULT, 'before the add');
    trace('adding node 4');

    await changeMembers(r, first, { add: [4] }, [1, 2, 3, 4]);
    const four = [1, 2, 3, 4];
    trace('node 4 added');
    await cluster.waitForApplied(four);
    trace('node 4 caught up');
    r.targets = [...four];
    await moreWrites(load, WRITES_AFTER_FAULT, 'after the add');
    expect(await probeRead(r, 4, 'k0'), 'the new node serves linearizable reads').to.be.a('string');
    const served = okAnswersFrom(r, 4, 0);
    expect(served, 'client requests node 4 answered after it joined').to.be.greaterThan(0);

    const removed = await cluster.waitForLeader(four);
    const rest = four.filter((id) => id !== removed);
    // Clients stop using the node as it is removed: once out, it knows no leader, so it would hold
    // each request for the service's whole request timeout before answering 503.
    r.targets = [...rest];
    trace(`removing the leader ${removed}`);
    await changeMembers(r, four, { remove: [removed] }, rest);
    trace(`node ${removed} removed`);
    const leader = await cluster.waitForLeader(rest);
    expect(rest, 'the leader after the removal').to.include(leader);
    await moreWrites(load, WRITES_AFTER_FAULT, 'after the removal');
    await load.stop();
    trace('load stopped');

    expect(okAnswersFrom(r, 4, 0), 'client requests node 4 answered during and after the removal').to.be.greaterThan(served);
    for (const [id, m] of await cluster.statuses(rest)) {
      expect(m, `node ${id} answers /status`).to.not.equal(null);
      expect([...m!.membership.members].sort(), `node ${id}'s membership`).to.deep.equal(rest);
      expect(m!.membership.membersAfterConsensus, `node ${id}: out of joint consensus`).to.equal(null);
      expect(m!.membership.nonVoters, `node ${id}: no learners left`).to.deep.equal([]);
    }
    const old = await cluster.status(removed);
    trace(`the removed node says: ${JSON.stringify(summarize(new Map([[removed, old]])))}`);
    expect(old.state, `the removed node ${removed} no longer leads`).to.not.equal('Leader');
    expect(old.membership.members, `the removed node ${removed}'s own view of the membership`).to.not.include(removed);
    expect(cluster.procs.get(removed)!.running, `the removed node ${removed} is still running`).to.equal(true);

    expectSaneLoad(r, WRITES_BEFORE_FAULT + 2 * WRITES_AFTER_FAULT);
    await checkFinalState(r, rest);
  });
});
