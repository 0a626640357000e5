/**
 * Membership changes (paper section 6; seeds 000 and 004's ProposeConfigChange; docs/MEMBERSHIP.md):
 * growing, shrinking and replacing nodes (the leader included) while clients write, with nodes
 * that are down or never come, a leader crash in the middle of a change, learners, the admin
 * errors, and what metrics publish along the way.
 *
 * The first describe runs under both placements on one cluster, in order (worker nodes cost
 * seconds of thread start-up each): it grows 1 -> 3, checks the refusals, replaces the leader
 * with node 4 (refusing a second change while 4 is awaited in catch-up) and removes a follower,
 * while writers append tokens throughout; it ends by checking that no acknowledged write was lost
 * or applied twice.
 * The second describe ('local' only, one cluster per test) covers the rest.
 */
import { expect } from 'chai';
import type { LocalCluster } from '../../actors/local-cluster';
import { isMembershipCommitted, type RaftMetrics } from '../../actors/metrics/metrics';
import {
  ConfigChangeAbortedError, ConfigChangeInProgressError, InoperableConfigError, MalformedMessageError, NodeNotLeaderError,
  NodeStoppedError, NoopConfigChangeError, NotAMemberError,
} from '../../actors/raft/core/errors';
import type { NodeId } from '../../actors/raft/core/types';
import type { ConfigChangeResult } from '../../actors/raft/raft-actor';
import { PLACEMENTS, digests, rejectsWith, shutdownAndCheck, startKvCluster, waitUntil } from './helpers';
import {
  Writers, isUniform, proposeOnLeader, put, shape, waitForConfig, writeToLeader, type ConfigChange,
} from './membership-helpers';

const without = (ids: readonly number[], ...gone: number[]): number[] => ids.filter((id) => !gone.includes(id));
const ascending = (ids: readonly number[]): number[] => [...ids].sort((a, b) => a - b);

/** Asserts one leader and only Followers besides it among `ids`, all in the leader's term. */
async function expectLeaderAndFollowers(c: LocalCluster, ids: readonly number[]): Promise<number> {
  const leader = await c.waitForLeader({ among: ids, timeoutMs: 15_000 });
  const ms = await Promise.all(ids.map((id) => c.node(id).currentMetrics()));
  const roles = ms.map((m) => `${m.id}:${m.state}`);
  expect(roles, 'roles').to.deep.equal(ms.map((m) => `${m.id}:${m.id === leader ? 'Leader' : 'Follower'}`));
  return leader;
}

for (const placement of PLACEMENTS) {
  describe(`t70 membership under concurrent writes (${placement})`, function () {
    this.timeout(placement === 'worker' ? 90_000 : 30_000);
    let c: LocalCluster;
    let writers: Writers | null = null;
    /** Voters as this describe has changed them, and the nodes it has removed. */
    let members: number[] = [1];
    const removed: number[] = [];

    before(async () => {
      c = await startKvCluster({ size: 1, placement });
      await c.waitForLeader({ timeoutMs: 15_000 });
      writers = new Writers(c, 3);
      writers.start();
      await writers.waitForMoreAcks(20, 15_000, 'writes on the single node');
    });
    after(async () => {
      await writers?.stop().catch(() => undefined);
      if (c) await shutdownAndCheck(c);
    });

    it('grows 1 -> 3 while clients write: the new voters are caught up first, every node ends with the same committed config', async function () {
      await Promise.all([c.addNode(2), c.addNode(3)]);
      for (const id of [2, 3]) expect((await c.node(id).currentMetrics()).state, `pristine node ${id}`).to.equal('NonVoter');
      const { result, attempts } = await proposeOnLeader(c, { add: [2, 3] });
      expect(shape(result.membership)).to.deep.equal({ members: [1, 2, 3], nonVoters: [], membersAfterConsensus: null });
      members = [1, 2, 3];
      for (const id of members) await waitForConfig(c, id, members);
      await expectLeaderAndFollowers(c, members);
      await writers!.waitForMoreAcks(20, 20_000, 'writes after growing to 3');
      this.test!.title += ` [${attempts} proposal(s)]`;
    });

    it('refuses misuse with typed errors that survive the thread, and is unharmed: NodeNotLeader, Noop, Inoperable, Malformed', async function () {
      const leader = await c.waitForLeader({ among: members, timeoutMs: 15_000 });
      const followers = without(members, leader);
      const before = await c.node(leader).currentMetrics();
      const L = c.node(leader);

      // On a follower: NodeNotLeaderError naming the leader.
      for (const f of followers) {
        const err = await rejectsWith(c.node(f).proposeConfigChange({ add: [9] }), NodeNotLeaderError, `change on follower ${f}`);
        expect(err.code).to.equal('NodeNotLeader');
        expect(err.leaderId, `follower ${f} names the leader`).to.equal(leader);
      }

      // Nothing to change: Noop (also what a retry of a finished change gets).
      for (const change of [{ add: [followers[0]] }, { add: [leader] }, { remove: [9] }, {}] as ConfigChange[]) {
        const err = await rejectsWith(L.proposeConfigChange(change), NoopConfigChangeError, `noop ${JSON.stringify(change)}`);
        expect(err.code).to.equal('Noop');
        expect(shape(err.membership)).to.deep.equal({ members: [1, 2, 3], nonVoters: [], membersAfterConsensus: null });
      }

      // A config that cannot make progress: no voter left, or 3 voters shrunk to 1.
      const none = await rejectsWith(L.proposeConfigChange({ remove: [1, 2, 3] }), InoperableConfigError, 'removing every voter');
      expect(none.code).to.equal('InoperableConfig');
      expect(shape(none.membership).members).to.deep.equal([]);
      const one = await rejectsWith(L.proposeConfigChange({ remove: followers }), InoperableConfigError, 'shrinking 3 -> 1');
      expect(shape(one.membership).members).to.deep.equal([leader]);

      // Malformed requests, refused by the handle and by the Raft actor itself (across its thread).
      const bad: unknown[] = [{ add: 'x' }, { add: [0] }, { add: [2], remove: [2] }, null, { foo: [1] }, { add: [1.5] }, [4], { addNonVoters: [2, 2] }];
      for (const b of bad) {
        const err = await rejectsWith(L.proposeConfigChange(b as ConfigChange), MalformedMessageError, `handle: ${JSON.stringify(b)}`);
        expect(err.code).to.equal('MalformedMessage');
        await rejectsWith(c.system.ref(`n${leader}/raft`).ask({ type: 'proposeConfigChange', change: b }, 10_000), MalformedMessageError, `raft actor: ${JSON.stringify(b)}`);
      }

      // None of the refusals appended anything, the leader has no change under way, and writes go on.
      const after = await L.currentMetrics();
      expect(after.membershipIndex, 'no config entry appended by a refused change').to.equal(before.membershipIndex);
      expect(after.configChange).to.equal(null);
      expect(isUniform(after.membership, [1, 2, 3])).to.equal(true);
      await writers!.waitForMoreAcks(20, 20_000, 'writes after the refusals');
    });

    it('replaces the leader in one change ({ add: [4], remove: [leader] }) while 4 is cut off: it waits in catch-up, refuses a second change, completes once 4 is back; the old leader ends NonVoter, the others elect a leader, writes go on', async function () {
      await c.addNode(4);
      c.isolate(4);
      const old = await c.waitForLeader({ among: members, timeoutMs: 15_000 });
      const L = c.node(old);
      const oldTerm = (await L.currentMetrics()).currentTerm;
      const remaining = [...without(members, old), 4];

      // Node 4 runs but is unreachable, so the change waits in catch-up; one change at a time.
      const pending = L.proposeConfigChange({ add: [4], remove: [old] });
      pending.catch(() => undefined); // awaited below
      const catching = await waitUntil(L, (m) => m.configChange?.phase === 'catchingUp' && m.configChange.awaiting.includes(4 as NodeId),
        'the leader waits for node 4 in catch-up');
      expect(ascending(catching.configChange!.target.voters)).to.deep.equal(ascending(remaining));
      expect(isUniform(catching.membership, members), 'catch-up appends no config').to.equal(true);
      for (const change of [{ add: [5] }, { remove: [without(members, old)[0]] }, { add: [4], remove: [old] }, { addNonVoters: [6] }] as ConfigChange[]) {
        const err = await rejectsWith(L.proposeConfigChange(change), ConfigChangeInProgressError, `second change ${JSON.stringify(change)}`);
        expect(err.code).to.equal('ConfigChangeInProgress');
      }
      expect((await L.currentMetrics()).membershipIndex, 'a refused change appends nothing').to.equal(catching.membershipIndex);
      await writers!.waitForMoreAcks(20, 20_000, 'writes while node 4 is awaited');

      // Node 4 is back: the change completes, and the leader it removed steps down.
      c.restore(4);
      let proposals = 1;
      const result: ConfigChangeResult = await pending.catch(async (err: unknown) => {
        // Leadership may move under load (worker threads starting): the change is then proposed again.
        if (!(err instanceof ConfigChangeAbortedError)) throw err;
        const again = await proposeOnLeader(c, { add: [4], remove: [old] });
        proposals += again.attempts;
        return again.result;
      });
      expect(shape(result.membership)).to.deep.equal({ members: ascending(remaining), nonVoters: [], membersAfterConsensus: null });

      const gone = await waitUntil(L, (m) => m.state === 'NonVoter', `old leader ${old} steps down to NonVoter`);
      expect(gone.currentLeader).to.equal(null);
      const fresh = await c.waitForLeader({ among: remaining, notIn: [old], timeoutMs: 15_000 });
      expect((await c.node(fresh).currentMetrics()).currentTerm).to.be.greaterThan(oldTerm);
      for (const id of remaining) await waitForConfig(c, id, remaining);
      await expectLeaderAndFollowers(c, remaining);
      members = remaining;
      removed.push(old);
      await writers!.waitForMoreAcks(20, 20_000, 'writes after replacing the leader');
      expect((await L.currentMetrics()).state, 'the old leader stays out').to.equal('NonVoter');
      this.test!.title += ` [old leader ${old}, new leader ${fresh}, ${proposals} proposal(s)]`;
    });

    it('shrinks 3 -> 2 by removing a follower: it ends NonVoter and the other two keep committing', async function () {
      const leader = await c.waitForLeader({ among: members, timeoutMs: 15_000 });
      const victim = without(members, leader)[0];
      const remaining = without(members, victim);
      const { result } = await proposeOnLeader(c, { remove: [victim] });
      expect(isUniform(result.membership, remaining)).to.equal(true);
      await waitUntil(c.node(victim), (m) => m.state === 'NonVoter', `removed node ${victim} ends NonVoter`);
      for (const id of remaining) await waitForConfig(c, id, remaining);
      members = remaining;
      removed.push(victim);
      await writers!.waitForMoreAcks(20, 20_000, 'writes after the shrink');
    });

    it('lost no acknowledged write across every change: each is applied exactly once, in order, on every member', async function () {
      await writers!.stop();
      const leader = await c.waitForLeader({ among: members, timeoutMs: 15_000 });
      const { commitIndex } = await c.node(leader).currentMetrics();
      await c.waitForApplied(commitIndex, { among: members, timeoutMs: 20_000 });
      for (const id of members) await writers!.verify(id);
      const ds = await digests(c, members as NodeId[]);
      expect(new Set(ds.map((d) => d.sha256)).size, `replicas differ: ${JSON.stringify(ds)}`).to.equal(1);
      for (const id of removed) {
        expect((await c.node(id).currentMetrics()).state, `removed node ${id}`).to.equal('NonVoter');
        const err = await rejectsWith(c.node(id).proposeConfigChange({ add: [9] }), NodeNotLeaderError, `change on removed node ${id}`);
        expect(err.leaderId, 'a removed node knows no leader').to.equal(null);
      }
      expect(writers!.acks).to.be.greaterThan(100);
      this.test!.title += ` [${writers!.summary()}]`;
    });
  });
}

describe('t70 membership (local)', function () {
  this.timeout(40_000);
  let cluster: LocalCluster | null = null;
  const offs: (() => void)[] = [];
  afterEach(async () => {
    for (const off of offs.splice(0)) off();
    const c = cluster;
    cluster = null;
    if (c) await shutdownAndCheck(c);
  });

  /** Writes `n` puts through the leader and returns the last index. */
  async function writeMany(c: LocalCluster, prefix: string, n: number): Promise<number> {
    let last = 0;
    for (let i = 0; i < n; i++) last = (await writeToLeader(c, put(`${prefix}-${i}`, `${i}`))).index;
    return last;
  }

  it('grows 1 -> 3 -> 5: every node ends with the same committed config, one Leader and Followers, and every write', async () => {
    const c = cluster = await startKvCluster({ size: 1, placement: 'local' });
    expect(await c.waitForLeader({ timeoutMs: 15_000 })).to.equal(1);
    await writeMany(c, 'one', 10);

    await Promise.all([c.addNode(2), c.addNode(3)]);
    const to3 = await c.node(1).proposeConfigChange({ add: [2, 3] });
    expect(shape(to3.membership)).to.deep.equal({ members: [1, 2, 3], nonVoters: [], membersAfterConsensus: null });
    await writeMany(c, 'three', 10);

    await Promise.all([c.addNode(4), c.addNode(5)]);
    const leader = await c.waitForLeader({ among: [1, 2, 3], timeoutMs: 15_000 });
    const to5 = await c.node(leader).proposeConfigChange({ add: [4, 5] });
    expect(shape(to5.membership)).to.deep.equal({ members: [1, 2, 3, 4, 5], nonVoters: [], membersAfterConsensus: null });
    expect(to5.index).to.be.greaterThan(to3.index);
    const last = await writeMany(c, 'five', 10);

    for (const id of c.ids) await waitForConfig(c, id, [1, 2, 3, 4, 5]);
    for (const id of c.ids) expect((await c.node(id).currentMetrics()).membershipIndex, `node ${id}`).to.equal(to5.index);
    await expectLeaderAndFollowers(c, c.ids);
    await c.waitForApplied(last, { timeoutMs: 15_000 });
    const ds = await digests(c);
    expect(ds.map((d) => d.keys)).to.deep.equal([30, 30, 30, 30, 30]);
    expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
  });

  // A node stopped under MemoryStorage lost its vote and log: starting a fresh node under an id the
  // config still names could let it vote twice in one term. LocalCluster refuses until it is removed.
  it('refuses to start a fresh node under an id the config still names, and allows it once the node is removed', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    const gone = without(c.ids, leader)[0]!;
    await c.stopNode(gone);
    let refused: unknown = null;
    await c.addNode(gone).catch((err: unknown) => { refused = err; });
    expect(refused).to.be.instanceOf(RangeError);
    expect((refused as Error).message).to.match(new RegExp(`node ${gone} is still in the config`));
    const removed = await c.node(leader).proposeConfigChange({ remove: [gone] });
    expect(removed.membership.members).to.not.include(gone);
    await c.addNode(gone);
    const back = await c.node(leader).proposeConfigChange({ add: [gone] });
    expect(back.membership.members).to.include(gone);
    await waitForConfig(c, gone, [...back.membership.members]);
  });

  it('shrinks 5 -> 3: the removed nodes end NonVoter and get no more entries; the three keep committing', async () => {
    const c = cluster = await startKvCluster({ size: 5, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    await writeMany(c, 'before', 10);
    const gone = without(c.ids, leader).slice(0, 2);
    const remaining = without(c.ids, ...gone);
    const termBefore = (await c.node(leader).currentMetrics()).currentTerm;

    const res = await c.node(leader).proposeConfigChange({ remove: gone });
    expect(isUniform(res.membership, remaining)).to.equal(true);
    for (const id of gone) await waitUntil(c.node(id), (m) => m.state === 'NonVoter', `removed node ${id} ends NonVoter`);
    for (const id of remaining) await waitForConfig(c, id, remaining);

    const last = await writeMany(c, 'after', 10);
    await c.waitForApplied(last, { among: remaining, timeoutMs: 15_000 });
    for (const id of gone) {
      const m = await c.node(id).currentMetrics();
      expect(m.state, `node ${id}`).to.equal('NonVoter');
      expect(m.lastApplied, `removed node ${id} applied nothing after its removal`).to.be.below(last);
      expect(await c.node(id).query({ q: 'get', key: 'after-9' })).to.equal(null);
    }
    // The three agree on a leader (the removed nodes' campaigns, if any, were refused; that they
    // move no term is checked deterministically in the next test).
    const now = await c.waitForLeader({ among: remaining, timeoutMs: 15_000 });
    expect((await c.node(now).currentMetrics()).currentTerm).to.be.at.least(termBefore);
    const ds = await digests(c, remaining as NodeId[]);
    expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
    expect(ds[0].keys).to.equal(20);
  });

  it('a removed node answers forwarded client requests NotAMemberError at once, appending nothing; added back, it forwards again', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local', forwardToLeader: true });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    const gone = without(c.ids, leader)[0];
    // Before: the follower forwards.
    expect((await c.node(gone).clientWrite(put('member', 'yes'))).index).to.be.above(0);
    await c.node(leader).proposeConfigChange({ remove: [gone] });
    await waitUntil(c.node(gone), (m) => m.state === 'NonVoter', `removed node ${gone} ends NonVoter`);
    const before = (await c.node(gone).currentMetrics()).lastLogIndex;
    // A timeout long enough that a request left waiting for a leader would fail the test's own timeout.
    const w = await rejectsWith(c.node(gone).clientWrite(put('member', 'no'), { timeoutMs: 60_000 }), NotAMemberError, 'a write on a removed node');
    expect(w.nodeId).to.equal(gone);
    expect(w.message).to.match(/not a member .* nothing was appended/);
    await rejectsWith(c.node(gone).clientRead({ q: 'get', key: 'member' }, { timeoutMs: 60_000 }), NotAMemberError, 'a linearizable read on a removed node');
    expect((await c.node(gone).currentMetrics()).lastLogIndex, 'nothing appended on the removed node').to.equal(before);
    // Added back: the leader's config lists it again, and it forwards again.
    await c.node(leader).proposeConfigChange({ add: [gone] });
    await waitUntil(c.node(gone), (m) => m.state === 'Follower', `node ${gone} is a follower again`);
    const res = await c.node(gone).clientWrite(put('member', 'again'), { responseMode: 'applied' });
    await c.waitForApplied(res.index);
    for (const id of c.ids) expect(await c.node(id).query({ q: 'get', key: 'member' }), `node ${id}`).to.equal('again');
  });

  it('removes a follower that is down: the change completes without it, and once back it goes NonVoter without moving the term', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    const [down, other] = without(c.ids, leader);
    c.isolate(down);
    await writeMany(c, 'cut', 5);

    const res = await c.node(leader).proposeConfigChange({ remove: [down] });
    expect(isUniform(res.membership, [leader, other])).to.equal(true);
    for (const id of [leader, other]) await waitForConfig(c, id, [leader, other]);
    const last = await writeMany(c, 'two', 5);
    await c.waitForApplied(last, { among: [leader, other], timeoutMs: 15_000 });
    const termBefore = (await c.node(leader).currentMetrics()).currentTerm;

    // Back on the network it campaigns in a higher term, is told it is unknown, and goes NonVoter.
    c.restore(down);
    await waitUntil(c.node(down), (m) => m.state === 'NonVoter', `removed node ${down} ends NonVoter`);
    const again = await writeMany(c, 'again', 5);
    await c.waitForApplied(again, { among: [leader, other], timeoutMs: 15_000 });
    expect(await c.waitForLeader({ among: [leader, other], timeoutMs: 15_000 })).to.equal(leader);
    expect((await c.node(leader).currentMetrics()).currentTerm, 'the stranger did not move the term').to.equal(termBefore);
    expect((await c.node(down).currentMetrics()).lastApplied).to.be.below(again);
  });

  it('adds a node that is not up yet: the change waits in catch-up while writes commit, and completes once the node starts', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    const L = c.node(leader);
    const pending = L.proposeConfigChange({ add: [4] });
    pending.catch(() => undefined); // awaited below
    const m = await waitUntil(L, (x) => x.configChange?.phase === 'catchingUp' && x.configChange.awaiting.includes(4 as NodeId), 'catch-up awaits node 4');
    expect(ascending(m.configChange!.target.voters)).to.deep.equal([1, 2, 3, 4]);

    const last = await writeMany(c, 'waiting', 20);
    await c.waitForApplied(last, { timeoutMs: 15_000 });
    const still = await L.currentMetrics();
    expect(still.configChange?.phase, 'still catching up').to.equal('catchingUp');
    expect(isUniform(still.membership, [1, 2, 3])).to.equal(true);

    await c.addNode(4);
    const res = await pending;
    expect(shape(res.membership)).to.deep.equal({ members: [1, 2, 3, 4], nonVoters: [], membersAfterConsensus: null });
    for (const id of c.ids) await waitForConfig(c, id, [1, 2, 3, 4]);
    const more = await writeMany(c, 'four', 5);
    await c.waitForApplied(more, { timeoutMs: 15_000 });
    await expectLeaderAndFollowers(c, c.ids);
    const ds = await digests(c);
    expect(ds.map((d) => d.keys)).to.deep.equal([25, 25, 25, 25]);
    expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
  });

  it('abandons catch-up of a node that never comes after catchUpTimeoutMs (catch-up-timeout, did not take effect); the next change is accepted', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local', config: { catchUpTimeoutMs: 2_000 } });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    const L = c.node(leader);
    await writeMany(c, 'x', 3);
    const before = await L.currentMetrics();
    await c.addNode(4);
    c.isolate(4);

    const t0 = Date.now();
    const err = await rejectsWith(L.proposeConfigChange({ add: [4] }), ConfigChangeAbortedError, 'adding an unreachable node');
    const waited = Date.now() - t0;
    expect(err.code).to.equal('ConfigChangeAborted');
    expect(err.reason).to.equal('catch-up-timeout');
    expect(err.mayStillComplete).to.equal(false);
    expect(waited, 'gave up after about catchUpTimeoutMs').to.be.within(1_500, 15_000);

    const after = await L.currentMetrics();
    expect(after.configChange).to.equal(null);
    expect(after.membershipIndex).to.equal(before.membershipIndex);
    expect(isUniform(after.membership, [1, 2, 3])).to.equal(true);
    expect((await c.node(4).currentMetrics()).lastLogIndex, 'the cut-off node got nothing').to.equal(0);
    await writeMany(c, 'y', 3);

    c.restore(4);
    const res = await L.proposeConfigChange({ add: [4] });
    expect(isUniform(res.membership, [1, 2, 3, 4])).to.equal(true);
    for (const id of c.ids) await waitForConfig(c, id, [1, 2, 3, 4]);
  });

  // Cut off and crash the leader the moment it publishes the phase: 'joint' (the joint entry just
  // appended: the survivors may end in the old or the new config) or 'uniform' (the joint entry is
  // committed, so whoever wins next holds it and must finish the change: the new config).
  for (const at of ['joint', 'uniform'] as const) {
    it(`a leader crash in the ${at} phase: the proposer learns it failed, the survivors elect one leader per term and end in ${at === 'joint' ? 'the old or the new config, never a mixture' : 'the new config'}; a retry ends it`, async function () {
      const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
      const leader = await c.waitForLeader({ timeoutMs: 15_000 });
      const survivors = without(c.ids, leader);
      await writeMany(c, 'pre', 5);
      await c.addNode(4);

      // Every (term, leader) any node reports, from now on.
      const leadersByTerm = new Map<number, Set<number>>();
      const record = (m: RaftMetrics) => {
        if (m.state !== 'Leader') return;
        const s = leadersByTerm.get(m.currentTerm) ?? new Set<number>();
        s.add(m.id);
        leadersByTerm.set(m.currentTerm, s);
      };
      for (const id of c.ids) offs.push(c.node(id).onMetrics(record));

      // The moment the leader publishes the phase, cut it off; then crash it.
      let caught: string | null = null;
      const reached = new Promise<void>((resolve) => {
        offs.push(c.node(leader).onMetrics((m) => {
          const phase = m.configChange?.phase;
          if (caught === null && (phase === at || (at === 'joint' && phase === 'uniform'))) { caught = phase!; c.isolate(leader); resolve(); }
        }));
      });
      const pending = c.node(leader).proposeConfigChange({ add: [4] });
      pending.catch(() => undefined); // awaited below
      await Promise.race([reached, pending.then(() => { throw new Error('the change completed before the joint phase was seen'); })]);
      await c.stopNode(leader);
      const err = await pending.then(() => null, (e: unknown) => e);
      expect(err instanceof NodeStoppedError || err instanceof ConfigChangeAbortedError, `proposer's error: ${String(err)}`).to.equal(true);

      // Both survivors are voters in the old config and in the new: they elect a leader.
      const fresh = await c.waitForLeader({ among: survivors, notIn: [leader], timeoutMs: 15_000 });
      const settled = await waitUntil(c.node(fresh), (m) => m.membership.membersAfterConsensus === null && isMembershipCommitted(m) && m.configChange === null,
        'the new leader holds a committed uniform config');
      const old = isUniform(settled.membership, [1, 2, 3]);
      const neu = isUniform(settled.membership, [1, 2, 3, 4]);
      expect(old || neu, `config after the crash: ${JSON.stringify(shape(settled.membership))}`).to.equal(true);
      if (caught === 'uniform') expect(neu, 'a committed joint config is finished by the next leader').to.equal(true);
      const outcome = old ? 'old config' : 'new config';
      for (const id of survivors) await waitForConfig(c, id, settled.membership.members);

      // The retry: completes the change, or is Noop because the new leader already finished it.
      const retry = await c.node(fresh).proposeConfigChange({ add: [4] }).then((r) => r, (e: unknown) => e);
      if (neu) expect(retry, `retry: ${String(retry)}`).to.be.instanceOf(NoopConfigChangeError);
      else expect(isUniform((retry as ConfigChangeResult).membership, [1, 2, 3, 4]), `retry: ${String(retry)}`).to.equal(true);
      const alive = [...survivors, 4];
      for (const id of alive) await waitForConfig(c, id, [1, 2, 3, 4]);

      // Three of four voters are up: the cluster commits, everywhere alive.
      const last = await writeMany(c, 'post', 5);
      await c.waitForApplied(last, { among: alive, timeoutMs: 15_000 });
      const ds = await digests(c, alive as NodeId[]);
      expect(new Set(ds.map((d) => d.sha256)).size).to.equal(1);
      expect(ds[0].keys).to.equal(10);
      const twice = [...leadersByTerm].filter(([, s]) => s.size > 1).map(([t, s]) => `term ${t}: ${[...s]}`);
      expect(twice, 'two leaders in one term').to.deep.equal([]);
      this.test!.title += ` [caught ${caught}; survivors ended in the ${outcome}; proposer got ${(err as Error).name}]`;
    });
  }

  // A leader cut off (not crashed) while its change runs learns it lost leadership once it is back:
  // in catch-up nothing of the change is in the log (mayStillComplete false); in the uniform phase
  // the joint entry is committed and the next leader has already finished it (mayStillComplete true).
  for (const at of ['catchingUp', 'uniform'] as const) {
    it(`a leader cut off in the ${at} phase gets ConfigChangeAbortedError('leadership-lost', mayStillComplete ${at === 'uniform'}) once back; a retry ${at === 'uniform' ? 'is Noop' : 'completes'}`, async function () {
      const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
      const leader = await c.waitForLeader({ timeoutMs: 15_000 });
      const survivors = without(c.ids, leader);
      await writeMany(c, 'pre', 5);
      if (at === 'uniform') await c.addNode(4); // else node 4 is not up: catch-up waits for it
      let cut = false;
      offs.push(c.node(leader).onMetrics((m) => { if (!cut && m.configChange?.phase === at) { cut = true; c.isolate(leader); } }));
      const pending = c.node(leader).proposeConfigChange({ add: [4] });
      pending.catch(() => undefined); // awaited below
      await waitUntil(c.node(leader), () => cut, `the leader reaches the ${at} phase`);

      const fresh = await c.waitForLeader({ among: survivors, notIn: [leader], timeoutMs: 15_000 });
      const expected = at === 'uniform' ? [1, 2, 3, 4] : [1, 2, 3];
      for (const id of survivors) await waitForConfig(c, id, expected);
      c.restore(leader);
      const err = await rejectsWith(pending, ConfigChangeAbortedError, 'the cut-off leader\'s change');
      expect(err.reason).to.equal('leadership-lost');
      expect(err.mayStillComplete).to.equal(at === 'uniform');
      await waitUntil(c.node(leader), (m) => m.state === 'Follower' && m.currentLeader === fresh, `node ${leader} follows node ${fresh}`);

      if (at === 'catchingUp') await c.addNode(4);
      const retry = await c.node(fresh).proposeConfigChange({ add: [4] }).then((r) => r, (e: unknown) => e);
      if (at === 'uniform') expect(retry, `retry: ${String(retry)}`).to.be.instanceOf(NoopConfigChangeError);
      else expect(isUniform((retry as ConfigChangeResult).membership, [1, 2, 3, 4]), `retry: ${String(retry)}`).to.equal(true);
      for (const id of c.ids) await waitForConfig(c, id, [1, 2, 3, 4]);
      const last = await writeMany(c, 'post', 5);
      await c.waitForApplied(last, { timeoutMs: 15_000 });
      expect(new Set((await digests(c)).map((d) => d.sha256)).size).to.equal(1);
    });
  }

  it('publishes every membership change in metrics: the joint config with membersAfterConsensus, then the final one, and the phases on the leader', async function () {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    await c.addNode(4);
    const seen = new Map<number, RaftMetrics[]>();
    for (const id of c.ids) {
      seen.set(id, []);
      offs.push(c.node(id).onMetrics((m) => seen.get(id)!.push(m)));
    }
    const grow = await c.node(leader).proposeConfigChange({ add: [4] });
    for (const id of c.ids) await waitForConfig(c, id, [1, 2, 3, 4]);
    const shrink = await c.node(leader).proposeConfigChange({ remove: [4] });
    for (const id of [1, 2, 3]) await waitForConfig(c, id, [1, 2, 3]);
    expect(shrink.index).to.be.greaterThan(grow.index);

    /** The distinct memberships a node published, in order, with the index of each. */
    const configs = (id: number) => {
      const out: { m: string; index: number; committed: boolean }[] = [];
      for (const x of seen.get(id)!) {
        const m = JSON.stringify(shape(x.membership));
        const prev = out[out.length - 1];
        if (prev && prev.m === m) { prev.committed ||= isMembershipCommitted(x); continue; }
        out.push({ m, index: x.membershipIndex, committed: isMembershipCommitted(x) });
      }
      return out;
    };
    const M = (members: number[], after: number[] | null = null) => JSON.stringify({ members, nonVoters: [], membersAfterConsensus: after });
    const expected = [M([1, 2, 3]), M([1, 2, 3], [1, 2, 3, 4]), M([1, 2, 3, 4]), M([1, 2, 3, 4], [1, 2, 3]), M([1, 2, 3])];
    /** True when `got` is `expected` with some entries left out, in the same order. */
    const inOrder = (got: string[]) => { let k = 0; for (const m of got) { while (k < expected.length && expected[k] !== m) k++; if (k++ >= expected.length) return false; } return true; };

    const onLeader = configs(leader);
    expect(onLeader.map((x) => x.m), 'memberships the leader published').to.deep.equal(expected);
    for (let k = 1; k < onLeader.length; k++) expect(onLeader[k].index).to.be.greaterThan(onLeader[k - 1].index);
    // A joint config is followed by the final one in the very step it commits; each final config is published committed.
    expect(onLeader.filter((x) => !x.m.includes('"membersAfterConsensus":[')).map((x) => x.committed), `final configs published as committed: ${JSON.stringify(onLeader)}`).to.deep.equal([true, true, true]);
    expect(onLeader[2].index).to.equal(grow.index);
    expect(onLeader[4].index).to.equal(shrink.index);

    // The leader's phases: catch-up only for the change that adds a voter; joint and uniform for both.
    const phases: string[] = [];
    for (const x of seen.get(leader)!) {
      const p = x.configChange?.phase ?? 'none';
      if (phases[phases.length - 1] !== p) phases.push(p);
    }
    while (phases[0] === 'none') phases.shift(); // periodic metrics before the first proposal
    expect(phases.filter((p) => p !== 'waiting')).to.deep.equal(['catchingUp', 'joint', 'uniform', 'none', 'joint', 'uniform', 'none']);

    // Followers publish the final configs, and nothing but the configs above, in that order.
    for (const id of without([1, 2, 3], leader)) {
      const got = configs(id).map((x) => x.m);
      expect(got, `node ${id}`).to.include(M([1, 2, 3, 4]));
      expect(got[got.length - 1], `node ${id} ends in`).to.equal(M([1, 2, 3]));
      expect(inOrder(got), `node ${id} published ${JSON.stringify(got)}`).to.equal(true);
    }
    // Node 4 went pristine -> voter -> removed: it saw the configs that include it.
    const on4 = configs(4).map((x) => x.m);
    expect(on4).to.include(M([1, 2, 3, 4]));
    this.test!.title += ` [followers: ${without([1, 2, 3], leader).map((id) => configs(id).length)} configs; node 4: ${on4.length}]`;
    await waitUntil(c.node(4), (m) => m.state === 'NonVoter', 'removed node 4 ends NonVoter');
    expect(seen.get(4)!.some((x) => x.configChange !== null), 'configChange is published only by the leader').to.equal(false);
  });

  it('keeps a learner: addNonVoters leaves it NonVoter yet applying every write, and it stays in the config across a leader change; then it can be promoted', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    await writeMany(c, 'early', 5);
    await c.addNode(4);
    const rolesOf4 = new Set<string>();
    offs.push(c.node(4).onMetrics((m) => rolesOf4.add(m.state)));
    const phases = new Set<string>();
    offs.push(c.node(leader).onMetrics((m) => { if (m.configChange) phases.add(m.configChange.phase); }));

    const res = await c.node(leader).proposeConfigChange({ addNonVoters: [4] });
    expect(shape(res.membership)).to.deep.equal({ members: [1, 2, 3], nonVoters: [4], membersAfterConsensus: null });
    expect([...phases], 'a learner changes no quorum: no catch-up, no joint').to.not.include('joint');
    const last = await writeMany(c, 'learner', 5);
    await c.waitForApplied(last, { timeoutMs: 15_000 });
    await waitForConfig(c, 4, [1, 2, 3], [4]);
    expect((await c.node(4).currentMetrics()).state).to.equal('NonVoter');

    // The leader is cut off: the other two elect a leader, which keeps replicating to the learner.
    c.isolate(leader);
    const others = without([1, 2, 3], leader);
    const fresh = await c.waitForLeader({ among: [...others, 4], notIn: [leader], timeoutMs: 15_000 });
    expect(shape((await c.node(fresh).currentMetrics()).membership).nonVoters).to.deep.equal([4]);
    let more = 0;
    for (let i = 0; i < 5; i++) more = (await c.node(fresh).clientWrite(put(`later-${i}`, `${i}`), { timeoutMs: 15_000 })).index;
    await c.waitForApplied(more, { among: [...others, 4], timeoutMs: 15_000 });
    expect(await c.node(4).query({ q: 'get', key: 'later-4' })).to.equal('4');
    expect([...rolesOf4], 'the learner never voted or campaigned').to.deep.equal(['NonVoter']);

    // Healed; then the learner is promoted to voter.
    c.restore(leader);
    await waitUntil(c.node(leader), (m) => m.state === 'Follower' && m.currentLeader === fresh, `node ${leader} follows node ${fresh}`);
    const promoted = await c.node(fresh).proposeConfigChange({ add: [4] });
    expect(shape(promoted.membership)).to.deep.equal({ members: [1, 2, 3, 4], nonVoters: [], membersAfterConsensus: null });
    await waitUntil(c.node(4), (m) => m.state === 'Follower', 'the promoted learner becomes a Follower');
    const top = await c.node(fresh).currentMetrics();
    await c.waitForApplied(top.commitIndex, { timeoutMs: 15_000 });
    const ds = await digests(c);
    expect(new Set(ds.map((d) => d.sha256)).size, JSON.stringify(ds)).to.equal(1);
    expect(ds[0].keys).to.equal(15);
  });

  // Regression (found by this file): a new voter that misses the joint and final entries still
  // believes it is outside the cluster (a NonVoter), but the committed config needs its vote. It
  // used to refuse every vote, and the cluster never elected again. A NonVoter with a log now answers
  // on term and log alone (core.ts handleVoteRequest), a survivor wins, and its replication makes 4
  // a Follower.
  it('a new voter that missed the config entries still votes: after a leader crash the other voters and it elect a leader', async () => {
    const c = cluster = await startKvCluster({ size: 3, placement: 'local' });
    const leader = await c.waitForLeader({ timeoutMs: 15_000 });
    const survivors = without(c.ids, leader);
    await writeMany(c, 'pre', 5);
    await c.addNode(4);
    let cut = false;
    offs.push(c.node(leader).onMetrics((m) => { if (!cut && m.configChange?.phase === 'joint') { cut = true; c.isolate(4); } }));
    const res = await c.node(leader).proposeConfigChange({ add: [4] });
    expect(isUniform(res.membership, [1, 2, 3, 4])).to.equal(true);
    const four = await c.node(4).currentMetrics();
    expect(four.lastLogIndex, 'node 4 missed the config entries (the set-up of this test)').to.be.below(res.index);

    await c.stopNode(leader);
    c.restore(4);
    const alive = [...survivors, 4];
    const fresh = await c.waitForLeader({ among: alive, timeoutMs: 15_000 });
    for (const id of alive) await waitForConfig(c, id, [1, 2, 3, 4]);
    const { index } = await c.node(fresh).clientWrite(put('after', 'crash'), { timeoutMs: 15_000 });
    await c.waitForApplied(index, { among: alive, timeoutMs: 15_000 });
    expect((await c.node(4).currentMetrics()).state).to.be.oneOf(['Follower', 'Leader']);
  });
});
