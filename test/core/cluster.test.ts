/**
 * End to end on three cores wired in-process (test/core/helpers/cluster.ts): election, replication,
 * a partitioned leader, its return, and a restart, checking State Machine Safety throughout: "if a
 * server has applied a log entry at a given index to its state machine, no other server will ever
 * apply a different log entry for the same index" (paper 5.4.3).
 */
import { expect } from 'chai';
import type { Entry } from '../../actors/raft/core/types';
import { Cluster, type ClusterNode } from './helpers/cluster';
import { n } from './helpers/fixtures';
import { entryKey, expectSameAppliedPrefix, payload } from './helpers/membership';


function formCluster(seed: number): Cluster {
  const c = new Cluster([1, 2, 3], seed);
  for (const id of [1, 2, 3]) c.act(id, (core) => core.initWithConfig([1, 2, 3].map(n)), false);
  c.deliverAll();
  c.runUntil(() => c.withRole('Leader').length === 1 && c.withRole('Follower').length === 2);
  return c;
}

function leaderOf(c: Cluster): ClusterNode {
  const leaders = c.withRole('Leader');
  expect(leaders).to.have.length(1);
  return leaders[0]!;
}

function proposeAll(c: Cluster, leaderId: number, from: number, count: number): void {
  for (let k = from; k < from + count; k += 7) {
    const batch = Array.from({ length: Math.min(7, from + count - k) }, (_, j) => payload(k + j));
    c.act(leaderId, (core) => core.propose(batch));
    c.advance(5);
  }
}

const allApplied = (nodes: ClusterNode[], index: number) => nodes.every((x) => x.applied.length >= index);

describe('cluster: three cores end to end', () => {
  it('elects, replicates 100 proposals, and every node applies the same entries in order', () => {
    const c = formCluster(11);
    const leader = leaderOf(c);
    proposeAll(c, leader.id, 0, 100);
    const last = leader.core.status().lastLogIndex;
    c.runUntil(() => allApplied([...c.nodes.values()], last));
    expectSameAppliedPrefix(c.nodes.values());
    for (const node of c.nodes.values()) {
      const payloads = node.applied.filter((e) => e.kind === 'normal').map((e) => (e.kind === 'normal' ? (e.payload[0]! << 8) | e.payload[1]! : -1));
      expect(payloads).to.deep.equal(Array.from({ length: 100 }, (_, k) => k));
      expect(node.applied[0]!.kind).to.equal('config');
      expect(node.core.status()).to.include({ commitIndex: last, lastApplied: last, currentLeader: leader.id });
    }
  });

  for (const seed of [21, 22, 23]) {
    it(`a partitioned leader is replaced in a higher term, rejoins as follower, and no applied entry differs (seed ${seed})`, () => {
      const c = formCluster(seed);
      const old = leaderOf(c);
      const oldTerm = old.core.status().currentTerm;
      proposeAll(c, old.id, 0, 30);
      const committedBefore = old.core.status().lastLogIndex;
      c.runUntil(() => allApplied([...c.nodes.values()], committedBefore));

      const stray = (e: Entry) => e.kind === 'normal' && e.payload[0] === 900 >> 8 && e.payload[1]! >= (900 & 0xff) && e.payload[1]! <= (902 & 0xff);
      // Cut the leader off; what it accepts now can never commit.
      c.isolate(old.id);
      c.act(old.id, (core) => core.propose([payload(900), payload(901), payload(902)]));
      const others = [...c.nodes.values()].filter((x) => x !== old);
      c.runUntil(() => others.some((x) => x.core.status().role === 'Leader'));
      const fresh = others.find((x) => x.core.status().role === 'Leader')!;
      expect(fresh.core.status().currentTerm).to.be.greaterThan(oldTerm);
      expect(old.core.status().role, 'the old leader does not know yet').to.equal('Leader');
      proposeAll(c, fresh.id, 100, 20);
      const lastNew = fresh.core.status().lastLogIndex;
      c.runUntil(() => allApplied(others, lastNew));

      // Heal: the old leader meets a higher term, steps down, and its stray entries are overwritten.
      expect(old.storage.log.filter(stray), 'the isolated leader did write its proposals').to.have.length(3);
      c.heal();
      c.runUntil(() => old.core.status().role === 'Follower' && old.applied.length >= lastNew);
      expect(old.core.status().currentLeader).to.equal(fresh.id);
      expectSameAppliedPrefix(c.nodes.values());
      for (const node of c.nodes.values()) {
        expect(node.applied.some(stray), `node ${node.id} applied an entry the isolated leader accepted`).to.equal(false);
        expect(node.storage.log.map(entryKey)).to.deep.equal(fresh.storage.log.map(entryKey));
      }
    });
  }

  it('a follower restarted from storage catches up without applying anything twice', () => {
    const c = formCluster(31);
    const leader = leaderOf(c);
    const follower = c.withRole('Follower')[0]!;
    proposeAll(c, leader.id, 0, 20);
    c.runUntil(() => allApplied([...c.nodes.values()], leader.core.status().lastLogIndex));
    c.restart(follower.id);
    expect(follower.core.status()).to.include({ role: 'Follower', commitIndex: follower.applied.length });
    proposeAll(c, leader.id, 20, 20);
    const last = leader.core.status().lastLogIndex;
    c.runUntil(() => allApplied([...c.nodes.values()], last));
    expect(follower.applied.map((e) => e.index)).to.deep.equal(Array.from({ length: last }, (_, k) => k + 1));
    expectSameAppliedPrefix(c.nodes.values());
  });

  it('when the leader restarts, the others elect a new leader and the old one rejoins as follower', () => {
    const c = formCluster(41);
    const old = leaderOf(c);
    proposeAll(c, old.id, 0, 10);
    c.runUntil(() => allApplied([...c.nodes.values()], old.core.status().lastLogIndex));
    c.restart(old.id);
    c.runUntil(() => c.withRole('Leader').length === 1 && c.withRole('Follower').length === 2);
    const fresh = leaderOf(c);
    proposeAll(c, fresh.id, 10, 10);
    const last = fresh.core.status().lastLogIndex;
    c.runUntil(() => allApplied([...c.nodes.values()], last));
    expectSameAppliedPrefix(c.nodes.values());
  });
});
