/**
 * Cluster formation (seeds 000 and 004): InitWithConfig, the pristine NonVoter, and the
 * isCandidateUnknown failsafe.
 */
import { expect } from 'chai';
import { InoperableConfigError, NotAllowedError } from '../../actors/raft/core/errors';
import type { Membership, VoteResponse } from '../../actors/raft/core/types';
import { Cluster } from './helpers/cluster';
import {
  configEntry, follower, i, makeCore, membership, n, ofType, stepDurably, t, timeOut, voteReq,
} from './helpers/fixtures';

const unknown = (term: number) => ({ type: 'voteResponse' as const, term: t(term), voteGranted: false, isCandidateUnknown: true });

describe('InitWithConfig (seeds 000, 004)', () => {
  // Seed 004: "This command will fail if the node is not in the NonVoter state, or if the node's log
  // index is not 0."
  it('is not allowed on a node that is not a NonVoter', () => {
    const core = follower(1, [1]);
    expect(() => core.initWithConfig([n(1)])).to.throw(NotAllowedError, /not a pristine NonVoter/);
  });

  it('is not allowed on a NonVoter whose log is not at index 0', () => {
    const m: Membership = { members: [2, 3, 4].map(n), nonVoters: [n(1)], membersAfterConsensus: null };
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, m)] });
    expect(core.status().role).to.equal('NonVoter');
    expect(() => core.initWithConfig([n(1)])).to.throw(NotAllowedError, /index 1/);
  });

  it('is not allowed twice: the first call already made the node a candidate', () => {
    const core = makeCore({ id: 1 });
    core.initWithConfig([n(1), n(2)]);
    expect(() => core.initWithConfig([n(1), n(2)])).to.throw(NotAllowedError);
  });

  const inoperable: { name: string; members: number[]; reason: RegExp }[] = [
    { name: 'empty', members: [], reason: /no members/ },
    { name: 'with a duplicate', members: [1, 2, 2], reason: /node 2 is listed twice/ },
    { name: 'without this node', members: [2, 3], reason: /this node \(1\)/ },
  ];
  for (const c of inoperable) {
    // Seed 004: "command should be called with all discovered nodes, including the calling node's ID".
    it(`refuses a member list that is ${c.name} with InoperableConfigError, changing nothing`, () => {
      const core = makeCore({ id: 1 });
      let err: unknown;
      try { core.initWithConfig(c.members.map(n)); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(InoperableConfigError);
      expect((err as InoperableConfigError).membership.members).to.deep.equal(c.members);
      expect((err as Error).message).to.match(c.reason);
      expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 0 });
      expect(core.takeCommands()).to.deep.equal([]);
    });
  }

  // Seed 004: "For single-node clusters, the node will immediately become leader" / seed 000: "once a
  // node becomes leader and detects that its index is 0, it will commit a new config entry (instead of
  // the normal blank entry created by new leaders)."
  it('a single node becomes leader once its vote is durable, and its first entry is the config', () => {
    const core = makeCore({ id: 1 });
    core.initWithConfig([n(1)]);
    const save = core.takeCommands();
    expect(save).to.deep.equal([{ type: 'saveHardState', hardState: { currentTerm: 1, votedFor: 1 }, seq: 1 }]);
    expect(core.status().role).to.equal('Candidate');
    core.step({ type: 'hardStatePersisted', seq: 1 });
    const cmds = core.takeCommands();
    const config = { index: 1, term: 1, kind: 'config', membership: membership(1) };
    expect(cmds).to.deep.equal([
      { type: 'startReplication', term: 1, targets: [], nextIndex: 1, commitIndex: 0, round: 0 },
      { type: 'appendLog', entries: [config], truncateFrom: null },
      { type: 'replicate', entries: [config] },
    ]);
    const after = stepDurably(core, { type: 'logPersisted', index: i(1) });
    expect(ofType(after, 'apply')).to.deep.equal([{ type: 'apply', entries: [config] }]);
    expect(core.status()).to.include({ role: 'Leader', commitIndex: 1 });
    expect(core.propose([Uint8Array.of(1)])).to.deep.equal({ firstIndex: 2, lastIndex: 2, term: 1 });
  });

  // Seed 004: "EVERY node in the cluster MUST perform this action ... It is safe for all nodes to
  // issue this command in parallel."
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`three pristine nodes initialising in parallel elect exactly one leader per term (seed ${seed})`, () => {
      const c = new Cluster([1, 2, 3], seed);
      // All three call it before any message moves, as nodes started together would.
      for (const id of [1, 2, 3]) c.act(id, (core) => core.initWithConfig([1, 2, 3].map(n)), false);
      c.deliverAll();
      c.runUntil(() => c.withRole('Leader').length === 1 && c.withRole('Follower').length === 2);
      const leader = c.withRole('Leader')[0]!;
      c.runUntil(() => [...c.nodes.values()].every((x) => x.core.status().commitIndex >= 1));
      for (const node of c.nodes.values()) {
        expect(node.storage.log[0]).to.deep.include({ index: 1, kind: 'config', membership: membership(1, 2, 3) });
        expect(node.core.status().currentLeader).to.equal(leader.id);
      }
      // The cluster harness throws on two leaders in one term; every term that had a leader had one.
      expect([...c.leaderOfTerm.keys()]).to.include(leader.core.status().currentTerm);
    });
  }

  // Seed 000: "if a race condition takes place where two nodes persists an initial config and start an
  // election, whichever node becomes leader will end up committing its entries to the cluster."
  it('a node that initialises late is refused by pristine peers, then wins or follows once they catch up', () => {
    const c = new Cluster([1, 2, 3], 9);
    c.act(1, (core) => core.initWithConfig([1, 2, 3].map(n)));
    c.advance(1000);
    // Peers 2 and 3 are still pristine: they answered "unknown", node 1 (index 0) kept campaigning.
    expect(c.node(1).core.status().role).to.equal('Candidate');
    expect(c.node(1).core.status().currentTerm).to.be.greaterThan(1);
    expect(c.node(2).core.status()).to.include({ role: 'NonVoter', currentTerm: 0 });
    c.act(2, (core) => core.initWithConfig([1, 2, 3].map(n)));
    c.runUntil(() => c.withRole('Leader').length === 1);
    // Node 3 never ran InitWithConfig; it still learns the config from the leader and joins.
    c.runUntil(() => c.node(3).core.status().role === 'Follower');
    expect(c.node(3).core.status().membership).to.deep.equal(membership(1, 2, 3));
    expect(() => c.node(3).core.initWithConfig([1, 2, 3].map(n))).to.throw(NotAllowedError);
  });

  // Seed 000: "if a candidate receives such a rejection and its index > 0, then it will go into
  // non-voter state. If its index == 0, it will continue as a candidate as such is the case only
  // during initial cluster formation."
  it('isCandidateUnknown keeps a candidate at index 0 campaigning', () => {
    const core = makeCore({ id: 1 });
    core.initWithConfig([n(1), n(2), n(3)]);
    stepDurably(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: unknown(0) });
    expect(core.status().role).to.equal('Candidate');
    // It keeps its timer, and campaigns again when the timer fires.
    timeOut(core);
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2 });
  });

  it('isCandidateUnknown sends a candidate with entries to NonVoter', () => {
    const core = follower(1, [1]);
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: unknown(1) });
    expect(core.status().role).to.equal('NonVoter');
    expect(core.nextDeadlineMs()).to.equal(null);
  });

  // Seed 000: "is_candidate_unknown ... will be set to true if the candidate is not a member or
  // non-voter", and the §6 failsafe: "This implementation does not accept RPCs from members which are
  // not part of its configuration" (for votes: a removed node must not disrupt the cluster).
  it('a vote request from an unknown candidate is refused and does not move our term', () => {
    const core = follower(1, [1], { term: 2 });
    const deadline = core.nextDeadlineMs();
    core.step({ type: 'vote', reqId: 8, req: voteReq(9, 50, 1, 1) });
    expect(core.takeCommands()).to.deep.equal([
      { type: 'reply', reqId: 8, resp: { type: 'voteResponse', term: 2, voteGranted: false, isCandidateUnknown: true } },
    ]);
    expect(core.status()).to.include({ currentTerm: 2, votedFor: null, role: 'Follower' });
    expect(core.nextDeadlineMs()).to.equal(deadline);
  });

  // Refinement of seed 000: a node whose log is behind the candidate's may just not have received
  // the config that added it (it was partitioned while the node joined). Its ignorance proves
  // nothing, so it refuses plainly; "unknown" would send a legitimate voter to NonVoter.
  it('a node whose log is behind the unknown candidate refuses plainly, without "unknown", and keeps its term', () => {
    const core = follower(1, [1], { term: 2 });
    core.step({ type: 'vote', reqId: 8, req: voteReq(9, 50, 99, 40) });
    expect(core.takeCommands()).to.deep.equal([
      { type: 'reply', reqId: 8, resp: { type: 'voteResponse', term: 2, voteGranted: false, isCandidateUnknown: false } },
    ]);
    expect(core.status()).to.include({ currentTerm: 2, votedFor: null, role: 'Follower' });
  });

  // Simulator seed 6: a node restarted pristine (its InitWithConfig config never reached its disk)
  // answered "unknown" to every candidate, each candidate with entries went NonVoter, and the
  // healed cluster never elected a leader again.
  it('a candidate with entries keeps campaigning when a pristine node refuses it', () => {
    const pristine = makeCore({ id: 5 });
    const refusal = ofType(stepDurably(pristine, { type: 'vote', reqId: 1, req: voteReq(2, 7, 40, 6) }), 'reply')[0]!.resp as VoteResponse;
    expect(refusal).to.include({ voteGranted: false, isCandidateUnknown: false });
    expect(pristine.status()).to.include({ role: 'NonVoter', currentTerm: 0 });
  });

  it('a non-voter of our config is known: its vote request is a normal refusal, not "unknown"', () => {
    const m: Membership = { members: [1, 2, 3].map(n), nonVoters: [n(4)], membersAfterConsensus: null };
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, m)] });
    const cmds = stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(4, 2, 1, 1) });
    expect(ofType(cmds, 'reply')[0]!.resp).to.deep.include({ isCandidateUnknown: false });
    expect(core.status().currentTerm).to.equal(2);
  });

  it('a pristine node knows nobody until InitWithConfig, then grants votes to the members', () => {
    const core = makeCore({ id: 2 });
    const before = ofType(stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(1, 1, 0, 0) }), 'reply')[0]!.resp as VoteResponse;
    // It refuses, but does not call the candidate unknown: it holds no config to judge by.
    expect(before).to.include({ isCandidateUnknown: false, voteGranted: false });
    core.initWithConfig([n(1), n(2), n(3)]);
    stepDurably(core);
    // Node 1 retries in a later term; node 2 (a candidate of term 1) adopts term 2 and grants.
    const after = ofType(stepDurably(core, { type: 'vote', reqId: 2, req: voteReq(1, 2, 0, 0) }), 'reply')[0]!.resp as VoteResponse;
    expect(after).to.include({ isCandidateUnknown: false, voteGranted: true, term: 2 });
  });
});
