/**
 * The Raft extensions end to end on cores wired in-process (test/core/helpers/cluster.ts), with the
 * library's defaults (EXTENSIONS_CONFIG: pre-vote and check-quorum on): a node cut off does not
 * disrupt the cluster when it returns, a cut-off leader steps down, partial connectivity leaves a
 * stable leader, reads are answered linearizably, and leadership is handed over on request.
 */
import { expect } from 'chai';
import type { RaftConfig } from '../../actors/raft/core/config';
import { ForwardToLeaderError, LeaderTransferError, LeaderTransferInProgressError } from '../../actors/raft/core/errors';
import { Cluster, type ClusterNode } from './helpers/cluster';
import { EXTENSIONS_CONFIG, n, TEST_CONFIG } from './helpers/fixtures';
import { expectSameAppliedPrefix, payload } from './helpers/membership';

const { electionTimeoutMinMs: MIN_MS, electionTimeoutMaxMs: MAX_MS } = EXTENSIONS_CONFIG;

function formCluster(seed: number, config: RaftConfig = EXTENSIONS_CONFIG, ids: readonly number[] = [1, 2, 3]): Cluster {
  const c = new Cluster(ids, seed, config);
  for (const id of ids) c.act(id, (core) => core.initWithConfig(ids.map(n)), false);
  c.deliverAll();
  c.runUntil(() => c.withRole('Leader').length === 1 && c.withRole('Follower').length === ids.length - 1);
  c.advance(400); // heartbeats flow; every node holds the leader's blank
  return c;
}

function leaderOf(c: Cluster): ClusterNode {
  const leaders = c.withRole('Leader');
  expect(leaders).to.have.length(1);
  return leaders[0]!;
}

const others = (c: Cluster, node: ClusterNode): ClusterNode[] => [...c.nodes.values()].filter((x) => x !== node);
const termOf = (x: ClusterNode): number => x.core.status().currentTerm;
const terms = (c: Cluster): number[] => [...c.nodes.values()].map(termOf);
const allApplied = (nodes: Iterable<ClusterNode>, index: number) => [...nodes].every((x) => x.core.status().lastApplied >= index);

/** Proposes one distinct entry on the leader and waits until every node in `nodes` applied it. */
function write(c: Cluster, leader: ClusterNode, k: number, nodes: Iterable<ClusterNode> = c.nodes.values()): number {
  const { lastIndex } = c.act(leader.id, (core) => core.propose([payload(k)]));
  c.runUntil(() => allApplied(nodes, lastIndex), 2000);
  return lastIndex;
}

describe('extensions cluster: pre-vote and check-quorum keep a healthy cluster undisturbed', () => {
  for (const seed of [1, 2, 3]) {
    it(`a follower cut off for many election timeouts keeps its term; on its return leader and term are unchanged (seed ${seed})`, () => {
      const c = formCluster(seed);
      const leader = leaderOf(c);
      const term = termOf(leader);
      const cut = others(c, leader)[0]!;
      c.isolate(cut.id);
      for (let elapsed = 0; elapsed < 20 * MAX_MS; elapsed += 50) {
        c.advance(50);
        expect(termOf(cut), `the cut-off follower's term at +${elapsed + 50} ms`).to.equal(term);
        expect(cut.core.status().role, 'pre-vote never lets it campaign').to.equal('Follower');
        expect(leader.core.status()).to.include({ role: 'Leader', currentTerm: term });
      }
      expect(cut.core.status().currentLeader, 'it did give up on the leader and ask for pre-votes').to.equal(null);
      write(c, leader, 1, others(c, cut));

      c.heal();
      c.advance(500);
      expect(leaderOf(c)).to.equal(leader);
      expect(terms(c)).to.deep.equal([term, term, term]);
      expect(cut.core.status().currentLeader).to.equal(leader.id);
      write(c, leader, 2);
      expectSameAppliedPrefix(c.nodes.values());
    });
  }

  for (const seed of [4, 5, 6]) {
    it(`a cut-off leader steps down within 2 x electionTimeoutMaxMs, in its term, while the majority elects another (seed ${seed})`, () => {
      const c = formCluster(seed);
      const old = leaderOf(c);
      const term = termOf(old);
      const t0 = c.nowMs;
      c.isolate(old.id);
      c.runUntil(() => old.core.status().role !== 'Leader', 2 * MAX_MS);
      expect(c.nowMs - t0).to.be.at.most(2 * MAX_MS);
      expect(old.core.status()).to.include({ role: 'Follower', currentTerm: term, currentLeader: null });
      c.runUntil(() => others(c, old).some((x) => x.core.status().role === 'Leader'), 2000);
      const fresh = others(c, old).find((x) => x.core.status().role === 'Leader')!;
      expect(termOf(fresh)).to.be.greaterThan(term);
      write(c, fresh, 1, others(c, old));
      c.advance(2000);
      expect(termOf(old), 'alone, it never wins a pre-vote, so its term stays').to.equal(term);

      c.heal();
      c.runUntil(() => old.core.status().currentLeader === fresh.id && allApplied([old], fresh.core.status().commitIndex), 2000);
      expect(leaderOf(c)).to.equal(fresh);
      expect(terms(c)).to.deep.equal(terms(c).map(() => termOf(fresh)));
      expectSameAppliedPrefix(c.nodes.values());
    });
  }

  for (const seed of [7, 8, 9]) {
    it(`partial connectivity: with only the leader-follower link cut, the leader keeps leading and no term grows (seed ${seed})`, () => {
      const c = formCluster(seed);
      const leader = leaderOf(c);
      const term = termOf(leader);
      const [cut, bridge] = others(c, leader) as [ClusterNode, ClusterNode];
      c.cutLink(leader.id, cut.id);
      for (let elapsed = 0; elapsed < 5000; elapsed += 50) {
        c.advance(50);
        expect(terms(c), `terms at +${elapsed + 50} ms`).to.deep.equal([term, term, term]);
        expect(leader.core.status().role).to.equal('Leader');
        expect(bridge.core.status().currentLeader).to.equal(leader.id);
      }
      expect(cut.core.status()).to.include({ role: 'Follower', currentLeader: null });
      write(c, leader, 1, [leader, bridge]);

      c.healLink(leader.id, cut.id);
      c.runUntil(() => allApplied([cut], leader.core.status().commitIndex), 1000);
      expect(cut.core.status().currentLeader).to.equal(leader.id);
      expect(terms(c)).to.deep.equal([term, term, term]);
      expectSameAppliedPrefix(c.nodes.values());
    });
  }

  it('without pre-vote and check-quorum (the paper alone) the same cut link makes terms grow: the disruption the extensions prevent', () => {
    const c = formCluster(7, TEST_CONFIG);
    const leader = leaderOf(c);
    const term = termOf(leader);
    c.cutLink(leader.id, others(c, leader)[0]!.id);
    c.advance(5000);
    expect(Math.max(...terms(c))).to.be.greaterThan(term + 2);
  });
});

describe('extensions cluster: reads', () => {
  it('an index read on the leader is answered after one round at the commit index of when it arrived; a follower refuses reads', () => {
    const c = formCluster(11);
    const leader = leaderOf(c);
    const follower = others(c, leader)[0]!;
    const written = write(c, leader, 1);
    c.act(leader.id, (core) => core.read(1, 'index'));
    expect(leader.reads).to.deep.equal([{ id: 1, readIndex: written }]);

    // A read arriving while a write is in flight need not wait for it: its index is the commit index it found.
    const commit = leader.core.status().commitIndex;
    c.act(leader.id, (core) => { core.propose([payload(2)]); core.read(2, 'index'); }, false);
    expect(leader.reads).to.have.length(1);
    c.deliverAll();
    expect(leader.reads[1]).to.deep.equal({ id: 2, readIndex: commit });
    expect(leader.core.status().commitIndex).to.equal(commit + 1);

    const err = (() => { try { follower.core.read(3, 'index'); } catch (e) { return e; } return null; })();
    expect(err).to.be.instanceOf(ForwardToLeaderError);
    expect((err as ForwardToLeaderError).leaderId).to.equal(leader.id);
  });

  it('a lease read is answered at once, before any message moves, while heartbeats keep the lease', () => {
    const c = formCluster(12);
    const leader = leaderOf(c);
    const written = write(c, leader, 1);
    c.advance(60);
    expect(leader.core.status().leaseUntilMs).to.be.greaterThan(c.nowMs);
    c.act(leader.id, (core) => core.read(1, 'lease'), false);
    expect(leader.reads).to.deep.equal([{ id: 1, readIndex: written }]);
    c.deliverAll();
  });

  for (const seed of [13, 14, 15]) {
    it(`a cut-off leader serves lease reads only until its lease ends, before any other leader is elected, and fails the rest when it steps down (seed ${seed})`, () => {
      const c = formCluster(seed);
      const old = leaderOf(c);
      const t0 = c.nowMs;
      c.isolate(old.id);
      c.act(old.id, (core) => core.read(99, 'index')); // no quorum will ever answer
      const served = new Map<number, number>();
      let asked = 0;
      let electedAt: number | null = null;
      while (electedAt === null) {
        if (c.nowMs - t0 > 3000) throw new Error('no new leader within 3 s');
        if (old.core.status().role === 'Leader') {
          const id = ++asked;
          c.act(old.id, (core) => core.read(id, 'lease'));
          if (old.reads.some((r) => r.id === id && 'readIndex' in r)) served.set(id, c.nowMs);
        }
        c.advance(5);
        if (others(c, old).some((x) => x.core.status().role === 'Leader')) electedAt = c.nowMs;
      }
      expect(served.size, 'the lease held for a while after the cut').to.be.greaterThan(0);
      const lastServed = Math.max(...served.values());
      expect(lastServed).to.be.lessThan(electedAt);
      expect(lastServed, 'the lease ends electionTimeoutMinMs - margin after the last answered heartbeat').to.be.lessThan(t0 + MIN_MS - EXTENSIONS_CONFIG.leaseClockDriftMarginMs);
      c.runUntil(() => old.core.status().role !== 'Leader', 2 * MAX_MS);
      // Every read got exactly one answer: served from the lease, or failed when leadership was lost.
      const answered = old.reads.map((r) => r.id).sort((a, b) => a - b);
      expect(answered).to.deep.equal([...Array.from({ length: asked }, (_, k) => k + 1), 99]);
      for (const r of old.reads) {
        if (served.has(r.id)) continue;
        expect('error' in r && r.error, `read ${r.id}`).to.be.instanceOf(ForwardToLeaderError);
      }
    });
  }
});

describe('extensions cluster: leader transfer', () => {
  for (const seed of [21, 22, 23]) {
    it(`hands leadership to a lagging target once it catches up: it wins the next term at once, and the old leader settles ok (seed ${seed})`, () => {
      const c = formCluster(seed);
      const old = leaderOf(c);
      const term = termOf(old);
      const [target, third] = others(c, old) as [ClusterNode, ClusterNode];
      // Put the target behind: writes it misses.
      c.cutLink(old.id, target.id);
      for (let k = 0; k < 5; k++) c.act(old.id, (core) => core.propose([payload(k)]));
      c.advance(10);
      c.healLink(old.id, target.id);
      expect(target.core.status().lastLogIndex).to.be.lessThan(old.core.status().lastLogIndex);

      const t0 = c.nowMs;
      c.act(old.id, (core) => core.transferLeadership(7, target.id, 1000));
      expect(old.core.status().transferTarget).to.equal(target.id);
      expect(() => old.core.propose([payload(100)])).to.throw(LeaderTransferInProgressError);
      c.runUntil(() => old.transfers.length > 0, 1000);

      expect(old.transfers).to.deep.equal([{ id: 7, outcome: { ok: true, leader: target.id } }]);
      expect(c.nowMs - t0, 'no election timeout was waited for').to.be.lessThan(MIN_MS);
      expect(target.core.status()).to.include({ role: 'Leader', currentTerm: term + 1 });
      c.advance(100);
      for (const x of [old, third]) expect(x.core.status()).to.include({ role: 'Follower', currentTerm: term + 1, currentLeader: target.id });
      write(c, target, 200);
      expectSameAppliedPrefix(c.nodes.values());
    });
  }

  it('a transfer to an unreachable target times out; the leader keeps leading and takes writes again', () => {
    const c = formCluster(24);
    const leader = leaderOf(c);
    const term = termOf(leader);
    const [target, third] = others(c, leader) as [ClusterNode, ClusterNode];
    c.isolate(target.id);
    c.act(leader.id, (core) => core.transferLeadership(8, target.id, 400));
    c.runUntil(() => leader.transfers.length > 0, 1000);
    const outcome = leader.transfers[0]!.outcome;
    if (outcome.ok) throw new Error('expected the transfer to fail');
    expect(outcome.error).to.be.instanceOf(LeaderTransferError);
    expect(outcome.error).to.include({ reason: 'timeout', target: target.id, caughtUp: true }); // it held the log, TimeoutNow was lost
    expect(leader.core.status()).to.include({ role: 'Leader', currentTerm: term, transferTarget: null });
    write(c, leader, 1, [leader, third]);
    // TimeoutNow went out this term, so the lease stays void: a lease read takes a round, and is still answered.
    expect(leader.core.status().leaseUntilMs).to.equal(null);
    c.act(leader.id, (core) => core.read(5, 'lease'));
    expect(leader.reads).to.deep.equal([{ id: 5, readIndex: leader.core.status().commitIndex }]);
    c.heal();
    c.runUntil(() => allApplied([target], leader.core.status().commitIndex), 1000);
    expect(terms(c)).to.deep.equal([term, term, term]);
  });
});
