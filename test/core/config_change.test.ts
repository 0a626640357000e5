/**
 * Membership changes on single cores and on the pure planning functions (paper 6; seed 000's
 * ProposeConfigChange section; seed 004's ProposeConfigChange). The leader's phases
 * (waiting -> catchingUp -> joint -> uniform, see actors/raft/core/config-change.ts) are driven by
 * hand: the test plays the replication streams with `replicated` inputs and storage with
 * `stepDurably`.
 */
import { expect } from 'chai';
import { buildConfig, type RaftConfig } from '../../actors/raft/core/config';
import {
  finalMembership, jointMembership, planConfigChange, validateConfigChangeRequest, type ConfigChangeOutcome, type ConfigChangeRequest,
} from '../../actors/raft/core/config-change';
import { CATCH_UP_CAP_FACTOR, type RaftCore } from '../../actors/raft/core/core';
import { MAX_CONFIG_NODES } from '../../actors/raft/core/membership';
import {
  ConfigChangeAbortedError, ConfigChangeInProgressError, ForwardToLeaderError, InoperableConfigError, MalformedMessageError,
  NodeNotLeaderError, NoopConfigChangeError,
} from '../../actors/raft/core/errors';
import type { Command } from '../../actors/raft/core/io';
import type { Entry, Membership, VoteResponse } from '../../actors/raft/core/types';
import {
  appendReq, blankEntry, configEntry, i, makeCore, membership, n, normalEntry, ofType, stepDurably, t, timeOut, voteReq,
} from './helpers/fixtures';
import { cfg, ids } from './helpers/membership';

const CATCH_UP_MS = 1000;
const SHORT_CATCH_UP: RaftConfig = buildConfig({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 50, catchUpTimeoutMs: CATCH_UP_MS , preVote: false, checkQuorum: false });

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, none was thrown');
}

const grant = (term: number) => ({ type: 'voteResponse' as const, term: t(term), voteGranted: true, isCandidateUnknown: false });

/**
 * Node 1 of `m` (log: its config at index 1, term 1) times out and wins term 2 with `votes`; its
 * blank entry is at index 2, durable, not yet committed.
 */
function leader(m: Membership = membership(1, 2, 3), opts: { votes?: number[]; config?: RaftConfig; entries?: Entry[] } = {}): RaftCore {
  const core = makeCore({ id: 1, entries: opts.entries ?? [configEntry(1, 1, m)], config: opts.config });
  timeOut(core);
  const term = core.status().currentTerm;
  for (const v of opts.votes ?? [2]) stepDurably(core, { type: 'voteResponse', from: n(v), resp: grant(term) });
  expect(core.status().role, 'test setup: node 1 should lead').to.equal('Leader');
  return core;
}

/** The stream to `peer` reports that it holds `index` durably. */
function ack(core: RaftCore, peer: number, index: number): Command[] {
  return stepDurably(core, { type: 'replicated', peer: n(peer), leaderTerm: core.status().currentTerm, matchIndex: i(index) });
}

/** A leader of {1,2,3} (plus `m`'s non-voters) whose blank entry (index 2, term 2) is committed. */
function settledLeader(m: Membership = membership(1, 2, 3), config?: RaftConfig): RaftCore {
  const core = leader(m, { config });
  ack(core, 2, 2);
  expect(core.status().commitIndex).to.equal(2);
  return core;
}

const configsAppended = (cmds: readonly Command[]) => ofType(cmds, 'appendLog').flatMap((a) => a.entries).filter((e) => e.kind === 'config');
const targetsOf = (cmds: readonly Command[]) => ofType(cmds, 'replicationTargets').map((c) => [...c.targets].sort());
const settledOf = (cmds: readonly Command[]) => ofType(cmds, 'configChangeSettled');

function abortOf(outcome: ConfigChangeOutcome): ConfigChangeAbortedError {
  expect(outcome.ok).to.equal(false);
  const err = (outcome as { error: Error }).error;
  expect(err).to.be.instanceOf(ConfigChangeAbortedError);
  return err as ConfigChangeAbortedError;
}

describe('validateConfigChangeRequest', () => {
  for (const bad of [null, undefined, 5, 'add 4', [4]]) {
    it(`refuses ${JSON.stringify(bad) ?? 'undefined'}: not an object`, () => {
      const err = thrown(() => validateConfigChangeRequest(bad));
      expect(err).to.be.instanceOf(MalformedMessageError);
      expect(err.message).to.match(/must be an object/);
    });
  }

  it('refuses an unknown field, naming it', () => {
    const err = thrown(() => validateConfigChangeRequest({ add: [4], replace: [2] }));
    expect(err).to.be.instanceOf(MalformedMessageError);
    expect(err.message).to.match(/unknown config change field 'replace'/);
  });

  it('refuses a list that is not an array, naming the list', () => {
    const err = thrown(() => validateConfigChangeRequest({ remove: 2 }));
    expect(err).to.be.instanceOf(MalformedMessageError);
    expect(err.message).to.match(/remove must be an array/);
  });

  for (const bad of [0, -1, 1.5, '2', Number.NaN, 2 ** 53]) {
    it(`refuses the node id ${typeof bad === 'string' ? `'${bad}'` : bad}`, () => {
      const err = thrown(() => validateConfigChangeRequest({ add: [4, bad] }));
      expect(err).to.be.instanceOf(MalformedMessageError);
      expect(err.message).to.include(`add: bad node id ${String(bad)}`);
    });
  }

  it('refuses an id twice in one list', () => {
    const err = thrown(() => validateConfigChangeRequest({ remove: [2, 3, 2] }));
    expect(err).to.be.instanceOf(MalformedMessageError);
    expect(err.message).to.match(/node 2 appears twice in remove/);
  });

  it('refuses an id in two lists, naming both', () => {
    const err = thrown(() => validateConfigChangeRequest({ add: [4], addNonVoters: [5, 4] }));
    expect(err).to.be.instanceOf(MalformedMessageError);
    expect(err.message).to.match(/node 4 appears in both add and addNonVoters/);
  });

  it('returns a well-formed request unchanged, lists left out stay out', () => {
    expect(validateConfigChangeRequest({ add: [4, 5], remove: [2] })).to.deep.equal({ add: [4, 5], remove: [2] });
    expect(validateConfigChangeRequest({ addNonVoters: [] })).to.deep.equal({ addNonVoters: [] });
    expect(validateConfigChangeRequest({})).to.deep.equal({});
  });
});

describe('planConfigChange', () => {
  const plan = (m: Membership, req: ConfigChangeRequest) => planConfigChange(m, req);

  it('add: a new node becomes a voter', () => {
    expect(plan(cfg([1, 2, 3]), { add: ids(4) })).to.deep.equal({ voters: [1, 2, 3, 4], nonVoters: [] });
  });

  it('remove: a voter leaves the config', () => {
    expect(plan(cfg([1, 2, 3]), { remove: ids(3) })).to.deep.equal({ voters: [1, 2], nonVoters: [] });
  });

  it('add of a current non-voter promotes it', () => {
    expect(plan(cfg([1, 2, 3], [4, 5]), { add: ids(4) })).to.deep.equal({ voters: [1, 2, 3, 4], nonVoters: [5] });
  });

  it('addNonVoters of a voter demotes it; of a new node adds a learner', () => {
    expect(plan(cfg([1, 2, 3]), { addNonVoters: ids(3, 6) })).to.deep.equal({ voters: [1, 2], nonVoters: [3, 6] });
  });

  it('remove of a non-voter drops it', () => {
    expect(plan(cfg([1, 2, 3], [4, 5]), { remove: ids(4) })).to.deep.equal({ voters: [1, 2, 3], nonVoters: [5] });
  });

  it('add and remove in one request (replace a node)', () => {
    expect(plan(cfg([1, 2, 3]), { add: ids(4), remove: ids(1) })).to.deep.equal({ voters: [2, 3, 4], nonVoters: [] });
  });

  const noops: { name: string; m: Membership; req: ConfigChangeRequest }[] = [
    { name: 'adding an existing voter', m: cfg([1, 2, 3]), req: { add: ids(2) } },
    { name: 'removing an absent node', m: cfg([1, 2, 3]), req: { remove: ids(9) } },
    { name: 'an empty request', m: cfg([1, 2, 3]), req: {} },
    { name: 'adding an existing non-voter as a non-voter', m: cfg([1, 2, 3], [4]), req: { addNonVoters: ids(4) } },
  ];
  for (const c of noops) {
    it(`${c.name} is a NoopConfigChangeError carrying the current config`, () => {
      const err = thrown(() => plan(c.m, c.req));
      expect(err).to.be.instanceOf(NoopConfigChangeError);
      expect((err as NoopConfigChangeError).membership).to.deep.equal(c.m);
    });
  }

  // Seed 004: "the outcome of the proposed config change must not leave the cluster in a state where
  // it will have less than two functioning nodes".
  const inoperable: { name: string; m: Membership; req: ConfigChangeRequest; reason: RegExp; voters: number[] }[] = [
    { name: 'removing every voter', m: cfg([1, 2, 3]), req: { remove: ids(1, 2, 3) }, reason: /no voter would be left/, voters: [] },
    { name: 'shrinking 3 voters to 1', m: cfg([1, 2, 3]), req: { remove: ids(2, 3) }, reason: /3 voters may not shrink to one/, voters: [1] },
    { name: 'shrinking 2 voters to 1', m: cfg([1, 2]), req: { remove: ids(2) }, reason: /2 voters may not shrink to one/, voters: [1] },
    { name: 'demoting all but one voter', m: cfg([1, 2, 3]), req: { addNonVoters: ids(2, 3) }, reason: /may not shrink to one/, voters: [1] },
    { name: 'demoting the only voter', m: cfg([1]), req: { addNonVoters: ids(1) }, reason: /no voter would be left/, voters: [] },
  ];
  for (const c of inoperable) {
    it(`${c.name} is an InoperableConfigError carrying the refused config`, () => {
      const err = thrown(() => plan(c.m, c.req));
      expect(err).to.be.instanceOf(InoperableConfigError);
      expect(err.message).to.match(c.reason);
      expect((err as InoperableConfigError).membership.members).to.deep.equal(c.voters);
    });
  }

  // Seed 004: "For single-node clusters, scaling up the cluster by adding new nodes via the
  // ProposeConfigChange command should work as expected".
  it('a single-node cluster may add learners, add voters, and replace its only voter', () => {
    expect(plan(cfg([1]), { addNonVoters: ids(2) })).to.deep.equal({ voters: [1], nonVoters: [2] });
    expect(plan(cfg([1]), { add: ids(2, 3) })).to.deep.equal({ voters: [1, 2, 3], nonVoters: [] });
    expect(plan(cfg([1]), { add: ids(2), remove: ids(1) })).to.deep.equal({ voters: [2], nonVoters: [] });
  });

  it('needs a uniform config to plan from', () => {
    expect(() => plan(cfg([1, 2, 3], [], [1, 2, 3, 4]), { add: ids(5) })).to.throw(MalformedMessageError, /uniform/);
  });

  // Seed 000: "need to update the EntryConfigChange model to include a field for NonVoters being added
  // in the config & a new boolean field is_joint".
  it('jointMembership is old voters + new voters, with the target\'s non-voters; finalMembership is the new side alone', () => {
    const current = cfg([1, 2, 3], [6, 7]);
    const joint = jointMembership(current, { voters: ids(1, 4, 5), nonVoters: ids(7, 2) });
    expect(joint).to.deep.equal(cfg([1, 2, 3], [7, 2], [1, 4, 5]));
    expect(finalMembership(joint)).to.deep.equal(cfg([1, 4, 5], [7, 2]));
    expect(() => finalMembership(current)).to.throw(MalformedMessageError, /joint/);
  });
});

describe('proposeConfigChange: who may propose, and when', () => {
  // Found in review: a leader elected while holding a joint config that phases it out finishes the
  // change and steps down; it must not start another change from outside every config meanwhile.
  it('a leader finishing a config that removes it refuses further changes with ConfigChangeInProgressError', () => {
    const joint: Membership = { members: ids(1, 2, 3), nonVoters: [], membersAfterConsensus: ids(2, 3, 4) };
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, joint)] });
    timeOut(core);
    const term = core.status().currentTerm;
    for (const v of [2, 3]) stepDurably(core, { type: 'voteResponse', from: n(v), resp: grant(term) });
    expect(core.status().role).to.equal('Leader');
    stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: term, matchIndex: i(2) });
    const cmds = stepDurably(core, { type: 'replicated', peer: n(3), leaderTerm: term, matchIndex: i(2) });
    expect(configsAppended(cmds).map((e) => (e as { membership: Membership }).membership)).to.deep.equal([membership(2, 3, 4)]);
    expect(core.status()).to.include({ role: 'Leader', configChange: null });
    const err = thrown(() => core.proposeConfigChange({ remove: ids(4) }));
    expect(err).to.be.instanceOf(ConfigChangeInProgressError);
    expect(err.message).to.match(/this leader is leaving/);
    expect(core.takeCommands()).to.deep.equal([]);
    // Once the final config commits it steps down, as before.
    stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: term, matchIndex: i(3) });
    stepDurably(core, { type: 'replicated', peer: n(4), leaderTerm: term, matchIndex: i(3) });
    expect(core.status().role).to.equal('NonVoter');
  });

  it(`requests and configs are bounded: at most ${MAX_CONFIG_NODES} ids per list and nodes per config`, () => {
    const many = Array.from({ length: MAX_CONFIG_NODES + 1 }, (_, k) => k + 2);
    expect(() => validateConfigChangeRequest({ add: many })).to.throw(MalformedMessageError, /at most 256 nodes/);
    const full: Membership = { members: ids(1, 2, 3), nonVoters: ids(...many.slice(2, MAX_CONFIG_NODES - 1)), membersAfterConsensus: null };
    expect(full.members.length + full.nonVoters.length).to.equal(MAX_CONFIG_NODES);
    expect(() => planConfigChange(full, { addNonVoters: ids(9999) })).to.throw(InoperableConfigError, /257 nodes exceed the limit of 256/);
  });

  // Seed 004: "This command will fail if the Raft node to which this command was submitted is not the
  // Raft leader".
  it('a follower refuses with NodeNotLeaderError, naming the leader it knows (or none)', () => {
    const core = makeCore({ id: 2, entries: [configEntry(1, 1, membership(1, 2, 3))] });
    const before = thrown(() => core.proposeConfigChange({ add: ids(4) }));
    expect(before).to.be.instanceOf(NodeNotLeaderError).with.property('leaderId', null);
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(3, 1, 1, 1, []) });
    const after = thrown(() => core.proposeConfigChange({ add: ids(4) }));
    expect(after).to.be.instanceOf(NodeNotLeaderError).with.property('leaderId', 3);
    expect(core.takeCommands()).to.deep.equal([]);
  });

  it('a candidate and a NonVoter refuse too', () => {
    const candidate = makeCore({ id: 1, entries: [configEntry(1, 1, membership(1, 2, 3))] });
    timeOut(candidate);
    expect(thrown(() => candidate.proposeConfigChange({ add: ids(4) }))).to.be.instanceOf(NodeNotLeaderError);
    expect(thrown(() => makeCore({ id: 5 }).proposeConfigChange({ add: ids(4) }))).to.be.instanceOf(NodeNotLeaderError);
  });

  // Paper 6 (and the 2015 single-server bug fix): one change at a time.
  it('a second change while one is in progress is refused with ConfigChangeInProgressError; the first goes on', () => {
    const core = settledLeader();
    const first = core.proposeConfigChange({ add: ids(4) });
    core.takeCommands();
    const err = thrown(() => core.proposeConfigChange({ add: ids(5) }));
    expect(err).to.be.instanceOf(ConfigChangeInProgressError);
    expect(err.message).to.match(new RegExp(`change ${first} is in its catchingUp phase`));
    expect(core.takeCommands()).to.deep.equal([]);
    expect(core.status().configChange!.target.voters).to.deep.equal([1, 2, 3, 4]);
  });

  it('a change while the log\'s latest config is joint is refused with ConfigChangeInProgressError', () => {
    const entries = [configEntry(1, 1, membership(1, 2, 3)), configEntry(2, 1, cfg([1, 2, 3], [], [1, 2, 3, 4]))];
    const core = leader(undefined, { entries, votes: [2, 4] });
    const err = thrown(() => core.proposeConfigChange({ remove: ids(3) }));
    expect(err).to.be.instanceOf(ConfigChangeInProgressError);
    expect(err.message).to.match(/joint config at index 2/);
    expect(core.status().configChange).to.equal(null);
  });

  it('a no-op or inoperable request changes nothing: no command, no change in progress', () => {
    const core = settledLeader();
    core.takeCommands();
    expect(thrown(() => core.proposeConfigChange({ add: ids(3) }))).to.be.instanceOf(NoopConfigChangeError);
    expect(thrown(() => core.proposeConfigChange({ remove: ids(2, 3) }))).to.be.instanceOf(InoperableConfigError);
    expect(core.takeCommands()).to.deep.equal([]);
    expect(core.status().configChange).to.equal(null);
    // And a valid change can still be made afterwards.
    expect(core.proposeConfigChange({ add: ids(4) })).to.be.a('number');
  });

  it('each change gets a new id', () => {
    const core = settledLeader(membership(1, 2, 3), SHORT_CATCH_UP);
    const a = core.proposeConfigChange({ add: ids(4) });
    stepDurably(core, { type: 'tick', nowMs: core.nextDeadlineMs()! });
    const b = core.proposeConfigChange({ add: ids(4) });
    expect(b).to.not.equal(a);
  });
});

describe('proposeConfigChange: the leader\'s phases', () => {
  // The 2015 single-server bug (Ongaro, raft-dev): a new leader must not append a config entry until an
  // entry of its own term has committed, or an uncommitted config of its predecessor may still win.
  it('waits, appending nothing, until an entry of the leader\'s own term is committed', () => {
    // Node 1 inherits an uncommitted config of term 1 that added node 4.
    const entries = [configEntry(1, 1, membership(1, 2, 3)), configEntry(2, 1, membership(1, 2, 3, 4))];
    const core = leader(undefined, { entries, votes: [2, 3] });
    core.takeCommands();
    core.proposeConfigChange({ add: ids(5) });
    expect(core.takeCommands()).to.deep.equal([]);
    expect(core.status().configChange).to.deep.equal({ phase: 'waiting', target: { voters: [1, 2, 3, 4, 5], nonVoters: [] }, awaiting: [] });
    expect(core.nextDeadlineMs()).to.equal(null);
    // A majority of {1,2,3,4} needs three: the blank (index 3) is not committed with node 2 alone.
    expect(ack(core, 2, 3)).to.deep.equal([]);
    expect(core.status().commitIndex).to.equal(0);
    expect(core.status().configChange!.phase).to.equal('waiting');
    const cmds = ack(core, 3, 3);
    expect(core.status().commitIndex).to.equal(3);
    expect(configsAppended(cmds)).to.deep.equal([]);
    expect(core.status().configChange!.phase).to.equal('catchingUp');
  });

  // The 2015 bug proper: the config a new leader must wait out may be one it never received (a
  // predecessor's, on other nodes), so waiting for its own latest config to commit is not enough.
  it('waits for its own-term entry even when every entry it holds, config included, is committed', () => {
    const entries = [configEntry(1, 1, membership(1, 2, 3)), normalEntry(2, 1)];
    const core = makeCore({ id: 1, entries, lastApplied: 2 });
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status()).to.include({ role: 'Leader', commitIndex: 2, membershipIndex: 1 });
    core.takeCommands();
    core.proposeConfigChange({ add: ids(4) });
    expect(core.takeCommands()).to.deep.equal([]);
    expect(core.status().configChange!.phase).to.equal('waiting');
    const cmds = ack(core, 3, 3);
    expect(targetsOf(cmds)).to.deep.equal([[2, 3, 4]]);
    expect(core.status().configChange!.phase).to.equal('catchingUp');
  });

  // Seed 000: "new cluster members will always be added as NonVoters" / "ensure that all new nodes are
  // brought up-to-speed before moving forward with reconfiguration".
  it('new voters become replication targets before any config entry, and no joint entry is appended until each is caught up', () => {
    const core = leader();
    core.proposeConfigChange({ add: ids(4, 5) });
    expect(core.takeCommands()).to.deep.equal([]);
    const start = ack(core, 2, 2);
    expect(targetsOf(start)).to.deep.equal([[2, 3, 4, 5]]);
    expect(configsAppended(start)).to.deep.equal([]);
    expect(core.status()).to.deep.include({ membership: membership(1, 2, 3), membershipIndex: 1 });
    expect(core.status().configChange).to.deep.equal({ phase: 'catchingUp', target: { voters: [1, 2, 3, 4, 5], nonVoters: [] }, awaiting: [4, 5] });
    expect(configsAppended(ack(core, 4, 2))).to.deep.equal([]);
    expect(core.status().configChange!.awaiting).to.deep.equal([5]);
    // Progress that is not yet everything committed at catch-up start does not count.
    expect(configsAppended(ack(core, 5, 1))).to.deep.equal([]);
    expect(core.status().configChange!.awaiting).to.deep.equal([5]);
    const joint = ack(core, 5, 2);
    // Seed 000: "when a new config is presented to the leader ... it will cause Raft to enter into the
    // JointConsensus phase"; paper 6: "Log entries are replicated to all servers in both configurations."
    expect(configsAppended(joint)).to.deep.equal([configEntry(3, 2, cfg([1, 2, 3], [], [1, 2, 3, 4, 5]))]);
    expect(ofType(joint, 'replicate').flatMap((r) => r.entries.map((e) => e.index))).to.deep.equal([3]);
    expect(targetsOf(joint), 'already streaming to the new voters').to.deep.equal([]);
    expect(core.status()).to.deep.include({ membershipIndex: 3, membership: cfg([1, 2, 3], [], [1, 2, 3, 4, 5]) });
    expect(core.status().configChange).to.deep.equal({ phase: 'joint', target: { voters: [1, 2, 3, 4, 5], nonVoters: [] }, awaiting: [] });
  });

  it('caught up means holding the commit index of catch-up start, even when within the lag threshold', () => {
    const core = settledLeader();
    core.propose([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    stepDurably(core);
    ack(core, 2, 5);
    expect(core.status().commitIndex).to.equal(5);
    core.proposeConfigChange({ add: ids(4) });
    stepDurably(core);
    expect(configsAppended(ack(core, 4, 4))).to.deep.equal([]);
    expect(core.status().configChange!.awaiting).to.deep.equal([4]);
    expect(configsAppended(ack(core, 4, 5))).to.have.length(1);
  });

  it('caught up means within replicationLagThreshold of the leader\'s last index, which moves with proposals', () => {
    const lag2 = buildConfig({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 50, replicationLagThreshold: 2 , preVote: false, checkQuorum: false });
    const core = settledLeader(membership(1, 2, 3), lag2);
    core.proposeConfigChange({ add: ids(4) });
    stepDurably(core);
    // Proposals go on during catch-up: the leader's last index is now 7.
    core.propose([3, 4, 5, 6, 7].map((x) => Uint8Array.of(x)));
    stepDurably(core);
    // Node 4 holds the commit index of catch-up start (2), but is 5 behind.
    expect(configsAppended(ack(core, 4, 2))).to.deep.equal([]);
    expect(configsAppended(ack(core, 4, 4))).to.deep.equal([]);
    expect(core.status().configChange!.awaiting).to.deep.equal([4]);
    const cmds = ack(core, 4, 5);
    expect(configsAppended(cmds)).to.deep.equal([configEntry(8, 2, cfg([1, 2, 3], [], [1, 2, 3, 4]))]);
  });

  it('a non-voter already at line rate is promoted without waiting: the joint entry is appended at once', () => {
    const core = leader(cfg([1, 2, 3], [4]));
    ack(core, 4, 2);
    ack(core, 2, 2);
    core.takeCommands();
    core.proposeConfigChange({ add: ids(4) });
    const cmds = stepDurably(core);
    expect(configsAppended(cmds)).to.deep.equal([configEntry(3, 2, cfg([1, 2, 3], [], [1, 2, 3, 4]))]);
    expect(targetsOf(cmds)).to.deep.equal([]);
  });

  // Paper 6: "Agreement (for elections and entry commitment) requires separate majorities from both the
  // old and new configurations." (Seed 000 notes: "requires majority from both the joint old + new".)
  describe('joint consensus commits with a majority of both configs', () => {
    /** {1,2,3} -> {1,4,5}: the joint entry is at index 3. */
    function replacing(): RaftCore {
      const core = settledLeader();
      expect(core.proposeConfigChange({ add: ids(4, 5), remove: ids(2, 3) })).to.equal(1);
      stepDurably(core);
      ack(core, 4, 2);
      const cmds = ack(core, 5, 2);
      expect(configsAppended(cmds)).to.deep.equal([configEntry(3, 2, cfg([1, 2, 3], [], [1, 4, 5]))]);
      return core;
    }

    it('a majority of the old config alone does not commit the joint entry', () => {
      const core = replacing();
      ack(core, 2, 3);
      ack(core, 3, 3);
      expect(core.status().commitIndex).to.equal(2);
      expect(core.status().configChange!.phase).to.equal('joint');
      ack(core, 4, 3);
      expect(core.status().commitIndex).to.equal(3);
    });

    it('a majority of the new config alone does not commit the joint entry', () => {
      const core = replacing();
      ack(core, 4, 3);
      ack(core, 5, 3);
      expect(core.status().commitIndex).to.equal(2);
      ack(core, 3, 3);
      expect(core.status().commitIndex).to.equal(3);
    });

    // Seed 000: "replication handler on leader must monitor joint consensus as replication events arrive
    // and commit a uniform consensus config when needed" / "need to ensure that replication streams are
    // brought down when nodes are removed."
    it('once the joint entry commits, the final config is appended in the same step, and removed voters\' streams stop with it', () => {
      const core = replacing();
      ack(core, 2, 3);
      const cmds = ack(core, 4, 3);
      expect(ofType(cmds, 'commit').map((c) => c.commitIndex)).to.deep.equal([3]);
      expect(configsAppended(cmds)).to.deep.equal([configEntry(4, 2, cfg([1, 4, 5]))]);
      expect(targetsOf(cmds)).to.deep.equal([[4, 5]]);
      expect(core.status().configChange).to.deep.include({ phase: 'uniform', awaiting: [] });
      expect(core.status()).to.deep.include({ membershipIndex: 4, membership: cfg([1, 4, 5]) });
      expect(settledOf(cmds)).to.deep.equal([]);
    });

    it('the change settles ok with the final config\'s index and membership once that entry commits', () => {
      const core = replacing();
      ack(core, 2, 3);
      ack(core, 4, 3);
      // The final config is uniform: {1,4,5} alone decides, old voters' acks do nothing now.
      expect(settledOf(ack(core, 2, 4))).to.deep.equal([]);
      expect(core.status().commitIndex).to.equal(3);
      const cmds = ack(core, 5, 4);
      expect(settledOf(cmds)).to.deep.equal([{ type: 'configChangeSettled', id: 1, outcome: { ok: true, index: 4, membership: cfg([1, 4, 5]) } }]);
      expect(core.status()).to.deep.include({ role: 'Leader', commitIndex: 4, configChange: null });
      expect(core.nextDeadlineMs()).to.equal(null);
      // And the next change may start.
      expect(core.proposeConfigChange({ remove: ids(5) })).to.equal(2);
    });
  });

  it('a change of non-voters only appends one uniform entry, skipping catch-up and joint', () => {
    const core = settledLeader();
    core.takeCommands();
    const id = core.proposeConfigChange({ addNonVoters: ids(4, 5) });
    const cmds = stepDurably(core);
    expect(configsAppended(cmds)).to.deep.equal([configEntry(3, 2, cfg([1, 2, 3], [4, 5]))]);
    expect(targetsOf(cmds)).to.deep.equal([[2, 3, 4, 5]]);
    expect(core.status().configChange).to.deep.include({ phase: 'uniform' });
    // Non-voters do not count: the old majority commits it.
    const done = ack(core, 3, 3);
    expect(settledOf(done)).to.deep.equal([{ type: 'configChangeSettled', id, outcome: { ok: true, index: 3, membership: cfg([1, 2, 3], [4, 5]) } }]);
  });

  // Seed 000: "when a new joint consensus config is presented, new_nodes being removed should immediately
  // be removed and their replication streams should be brought down."
  it('a removed learner\'s stream stops at the joint append, a removed voter\'s at the final append', () => {
    const core = settledLeader(cfg([1, 2, 3], [4]));
    core.takeCommands();
    core.proposeConfigChange({ remove: ids(3, 4) });
    const joint = stepDurably(core);
    expect(configsAppended(joint)).to.deep.equal([configEntry(3, 2, cfg([1, 2, 3], [], [1, 2]))]);
    expect(targetsOf(joint)).to.deep.equal([[2, 3]]);
    const final = ack(core, 2, 3);
    expect(configsAppended(final)).to.deep.equal([configEntry(4, 2, cfg([1, 2]))]);
    expect(targetsOf(final)).to.deep.equal([[2]]);
    // A removed node's stream may still report; it counts for nothing now.
    ack(core, 3, 4);
    expect(core.status().commitIndex).to.equal(3);
    ack(core, 2, 4);
    expect(core.status().commitIndex).to.equal(4);
  });

  // Seed 000: "if a leader is stepping down, it will ensure that its terminal config is committed to the
  // cluster before transitioning to non-voter state" / "ensure that a leader node which is being removed
  // from the cluster config properly transitions out of leader state once it commits the terminal entry".
  it('a leader that removes itself keeps leading until its final config commits, then becomes a NonVoter', () => {
    const core = settledLeader();
    core.takeCommands();
    const id = core.proposeConfigChange({ remove: ids(1) });
    expect(configsAppended(stepDurably(core))).to.deep.equal([configEntry(3, 2, cfg([1, 2, 3], [], [2, 3]))]);
    // The new side is {2,3}: both are needed, the leader is not among them.
    ack(core, 2, 3);
    expect(core.status().commitIndex).to.equal(2);
    const final = ack(core, 3, 3);
    expect(configsAppended(final)).to.deep.equal([configEntry(4, 2, cfg([2, 3]))]);
    expect(targetsOf(final), 'still streaming to 2 and 3').to.deep.equal([]);
    expect(core.status().role).to.equal('Leader');
    // Out of the config, it still leads: it proposes, and the entries are committed by {2,3} alone.
    expect(core.propose([Uint8Array.of(9)])).to.deep.equal({ firstIndex: 5, lastIndex: 5, term: 2 });
    stepDurably(core);
    ack(core, 2, 5);
    expect(core.status()).to.include({ role: 'Leader', commitIndex: 3 });
    const down = ack(core, 3, 5);
    expect(down.map((c) => c.type).filter((x) => x === 'configChangeSettled' || x === 'stopReplication')).to.deep.equal(['configChangeSettled', 'stopReplication']);
    expect(settledOf(down)[0]).to.deep.equal({ type: 'configChangeSettled', id, outcome: { ok: true, index: 4, membership: cfg([2, 3]) } });
    expect(core.status()).to.include({ role: 'NonVoter', commitIndex: 5, currentLeader: null });
    expect(core.nextDeadlineMs()).to.equal(null);
    expect(() => core.propose([Uint8Array.of(1)])).to.throw(ForwardToLeaderError);
  });

  describe('catch-up timeout', () => {
    function catchingUp(): { core: RaftCore; id: number; deadline: number } {
      const core = settledLeader(membership(1, 2, 3), SHORT_CATCH_UP);
      expect(core.nextDeadlineMs(), 'a leader with no change has no deadline').to.equal(null);
      const id = core.proposeConfigChange({ add: ids(4) });
      stepDurably(core);
      return { core, id, deadline: core.nextDeadlineMs()! };
    }

    it('a node that makes no progress for catchUpTimeoutMs aborts the change; targets return to the config\'s', () => {
      const { core, id, deadline } = catchingUp();
      expect(core.status().configChange!.phase).to.equal('catchingUp');
      expect(stepDurably(core, { type: 'tick', nowMs: deadline - 1 })).to.deep.equal([]);
      const cmds = stepDurably(core, { type: 'tick', nowMs: deadline });
      expect(targetsOf(cmds)).to.deep.equal([[2, 3]]);
      const settled = settledOf(cmds);
      expect(settled).to.have.length(1);
      expect(settled[0]!.id).to.equal(id);
      const err = abortOf(settled[0]!.outcome);
      expect(err).to.include({ reason: 'catch-up-timeout', mayStillComplete: false });
      expect(err.message).to.match(/node\(s\) 4 made no replication progress for 1000 ms/);
      expect(configsAppended(cmds)).to.deep.equal([]);
      expect(core.status()).to.deep.include({ role: 'Leader', configChange: null, membership: membership(1, 2, 3) });
      expect(core.nextDeadlineMs()).to.equal(null);
      // Node 4's stream reporting later is ignored: it is no target.
      expect(configsAppended(ack(core, 4, 2))).to.deep.equal([]);
    });

    it('progress by an awaited node resets the deadline', () => {
      const { core, deadline } = catchingUp();
      const start = deadline - CATCH_UP_MS;
      stepDurably(core, { type: 'tick', nowMs: start + 600 });
      ack(core, 4, 1);
      expect(core.nextDeadlineMs()).to.equal(start + 600 + CATCH_UP_MS);
      expect(settledOf(stepDurably(core, { type: 'tick', nowMs: deadline }))).to.deep.equal([]);
      expect(core.status().configChange!.phase).to.equal('catchingUp');
      // A repeated report is no progress.
      stepDurably(core, { type: 'tick', nowMs: start + 900 });
      ack(core, 4, 1);
      expect(core.nextDeadlineMs()).to.equal(start + 600 + CATCH_UP_MS);
      const cmds = stepDurably(core, { type: 'tick', nowMs: start + 600 + CATCH_UP_MS });
      expect(abortOf(settledOf(cmds)[0]!.outcome).reason).to.equal('catch-up-timeout');
    });

    it('the leader\'s deadline is the catch-up deadline only while catching up', () => {
      const core = leader(membership(1, 2, 3), { config: SHORT_CATCH_UP });
      core.proposeConfigChange({ add: ids(4) });
      expect(core.status().configChange!.phase).to.equal('waiting');
      expect(core.nextDeadlineMs()).to.equal(null);
      ack(core, 2, 2);
      expect(core.status().configChange!.phase).to.equal('catchingUp');
      expect(core.nextDeadlineMs()).to.be.a('number');
      ack(core, 4, 2);
      expect(core.status().configChange!.phase).to.equal('joint');
      expect(core.nextDeadlineMs()).to.equal(null);
      // Ticking far past the old deadline does nothing to a joint change.
      expect(settledOf(stepDurably(core, { type: 'tick', nowMs: 10 * CATCH_UP_MS }))).to.deep.equal([]);
      expect(core.status().configChange!.phase).to.equal('joint');
    });

    // Found in review: one shared deadline let node 4's progress keep a dead node 5's change alive.
    it('each awaited node has its own clock: one node\'s progress does not hide another\'s silence', () => {
      const core = settledLeader(membership(1, 2, 3), SHORT_CATCH_UP);
      core.proposeConfigChange({ add: ids(4, 5) });
      stepDurably(core);
      const start = core.nextDeadlineMs()! - CATCH_UP_MS;
      stepDurably(core, { type: 'tick', nowMs: start + 500 });
      ack(core, 4, 1);
      expect(core.nextDeadlineMs(), 'node 5 is still silent').to.equal(start + CATCH_UP_MS);
      const err = abortOf(settledOf(stepDurably(core, { type: 'tick', nowMs: start + CATCH_UP_MS }))[0]!.outcome);
      expect(err.reason).to.equal('catch-up-timeout');
      expect(err.message).to.match(/node\(s\) 5 made no replication progress for 1000 ms/);
    });

    it(`catch-up ends after ${CATCH_UP_CAP_FACTOR} x catchUpTimeoutMs in all, even while a node keeps progressing below line rate`, () => {
      const config = buildConfig({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 50, catchUpTimeoutMs: CATCH_UP_MS, replicationLagThreshold: 2 , preVote: false, checkQuorum: false });
      const core = settledLeader(membership(1, 2, 3), config);
      core.propose(Array.from({ length: 30 }, (_, k) => Uint8Array.of(k)));
      stepDurably(core);
      core.proposeConfigChange({ add: ids(4) });
      stepDurably(core);
      const start = core.nextDeadlineMs()! - CATCH_UP_MS;
      let now = start;
      let match = 0;
      let settled: ReturnType<typeof settledOf> = [];
      while (settled.length === 0 && now < start + 20 * CATCH_UP_MS) {
        now += 500;
        settled = settledOf(stepDurably(core, { type: 'tick', nowMs: now }));
        if (settled.length === 0) ack(core, 4, ++match); // progress, but 32 entries are never within 2
      }
      expect(now).to.equal(start + CATCH_UP_CAP_FACTOR * CATCH_UP_MS);
      expect(abortOf(settled[0]!.outcome).message).to.match(/node\(s\) 4 did not reach line rate within 10000 ms/);
      expect(core.status().configChange).to.equal(null);
    });

    it('after an abort the same change can be proposed again', () => {
      const { core, deadline } = catchingUp();
      stepDurably(core, { type: 'tick', nowMs: deadline });
      core.proposeConfigChange({ add: ids(4) });
      const cmds = stepDurably(core);
      expect(targetsOf(cmds)).to.deep.equal([[2, 3, 4]]);
      expect(core.nextDeadlineMs()).to.equal(deadline + CATCH_UP_MS);
    });
  });

  describe('losing leadership', () => {
    it('in waiting or catchingUp: aborted with leadership-lost, mayStillComplete false', () => {
      for (const phase of ['waiting', 'catchingUp'] as const) {
        const core = leader();
        const id = core.proposeConfigChange({ add: ids(4) });
        if (phase === 'catchingUp') ack(core, 2, 2);
        expect(core.status().configChange!.phase).to.equal(phase);
        core.takeCommands();
        const cmds = stepDurably(core, { type: 'higherTerm', term: t(5) });
        const settled = settledOf(cmds);
        expect(settled.map((s) => s.id)).to.deep.equal([id]);
        expect(abortOf(settled[0]!.outcome)).to.include({ reason: 'leadership-lost', mayStillComplete: false });
        expect(ofType(cmds, 'stopReplication')).to.have.length(1);
        expect(core.status()).to.include({ role: 'Follower', currentTerm: 5, configChange: null });
      }
    });

    it('in joint or uniform: aborted with leadership-lost, mayStillComplete true (its entry is in the log)', () => {
      for (const phase of ['joint', 'uniform'] as const) {
        const core = settledLeader();
        core.proposeConfigChange({ add: ids(4) });
        ack(core, 4, 2);
        if (phase === 'uniform') { ack(core, 2, 3); ack(core, 4, 3); }
        expect(core.status().configChange!.phase).to.equal(phase);
        const cmds = stepDurably(core, { type: 'higherTerm', term: t(5) });
        const err = abortOf(settledOf(cmds)[0]!.outcome);
        expect(err).to.include({ reason: 'leadership-lost', mayStillComplete: true });
        expect(err.message).to.match(new RegExp(`during the ${phase} phase`));
        // The config in the log stays in force: node 1 is a voter of it, so a Follower.
        expect(core.status().role).to.equal('Follower');
        expect(core.status().membershipIndex).to.equal(phase === 'joint' ? 3 : 4);
      }
    });
  });
});

describe('a new leader whose log ends in an uncommitted joint config', () => {
  const joint = cfg([1, 2, 3], [], [1, 2, 3, 4]);
  const entries = () => [configEntry(1, 1, membership(1, 2, 3)), normalEntry(2, 1), configEntry(3, 1, joint)];

  // Paper 6: elections in joint consensus need a majority of both configs.
  it('is elected only by a majority of both the old and the new voters', () => {
    const core = makeCore({ id: 1, entries: entries() });
    const cmds = timeOut(core);
    expect(ofType(cmds, 'sendVote').map((v) => v.to)).to.deep.equal([2, 3, 4]);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status().role, '{1,2} is a majority of {1,2,3}, not of {1,2,3,4}').to.equal('Candidate');
    stepDurably(core, { type: 'voteResponse', from: n(4), resp: grant(2) });
    expect(core.status().role).to.equal('Leader');
  });

  // Seed 000: "if a new leader comes to power with a config in joint consensus, it must use its blank
  // payload to ensure that the joint consensus has been committed."
  it('appends no config before its blank commits, which commits the joint config; then appends the final config at once', () => {
    const core = makeCore({ id: 1, entries: entries() });
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    const elected = stepDurably(core, { type: 'voteResponse', from: n(4), resp: grant(2) });
    expect(ofType(elected, 'startReplication')[0]!.targets).to.deep.equal([2, 3, 4]);
    expect(ofType(elected, 'appendLog').flatMap((a) => a.entries)).to.deep.equal([blankEntry(4, 2)]);
    expect(configsAppended(ack(core, 2, 4))).to.deep.equal([]);
    expect(core.status().commitIndex).to.equal(0);
    const cmds = ack(core, 4, 4);
    expect(ofType(cmds, 'commit').map((c) => c.commitIndex)).to.deep.equal([4]);
    expect(configsAppended(cmds)).to.deep.equal([configEntry(5, 2, membership(1, 2, 3, 4))]);
    expect(core.status()).to.deep.include({ membershipIndex: 5, configChange: null });
    // The final config is no change of this leader's: nothing settles; once it commits, changes are open.
    ack(core, 2, 5);
    expect(settledOf(ack(core, 3, 5))).to.deep.equal([]);
    expect(core.status().commitIndex).to.equal(5);
    expect(core.proposeConfigChange({ remove: ids(4) })).to.be.a('number');
  });

  // Seed 000: "if a node is elected during a joint consensus phase, it must be cognizant of whether it
  // will be phased out when the current joint consensus is committed." Paper 6: "Any server from either
  // configuration may serve as leader."
  it('a leader that the joint config phases out finishes the change, then steps down once the final config commits', () => {
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, membership(1, 2, 3)), configEntry(2, 1, cfg([1, 2, 3], [], [2, 3, 4]))] });
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    stepDurably(core, { type: 'voteResponse', from: n(3), resp: grant(2) });
    expect(core.status().role).to.equal('Leader');
    ack(core, 2, 3);
    expect(core.status().commitIndex, 'the new side {2,3,4} needs two of its own').to.equal(0);
    const final = ack(core, 3, 3);
    expect(configsAppended(final)).to.deep.equal([configEntry(4, 2, membership(2, 3, 4))]);
    expect(core.status().role).to.equal('Leader');
    ack(core, 4, 4);
    const down = ack(core, 2, 4);
    expect(ofType(down, 'stopReplication')).to.have.length(1);
    expect(settledOf(down)).to.deep.equal([]);
    expect(core.status()).to.include({ role: 'NonVoter', commitIndex: 4 });
  });
});

// Seed 000: "Non-voting nodes do not have election timeouts and are not considered for majority in the
// commit process and are not solicited for votes."
describe('non-voters', () => {
  const withLearners = cfg([1, 2, 3], [4, 5]);

  it('are never asked for votes, and a vote from one does not count', () => {
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, withLearners)] });
    expect(ofType(timeOut(core), 'sendVote').map((v) => v.to)).to.deep.equal([2, 3]);
    stepDurably(core, { type: 'voteResponse', from: n(4), resp: grant(2) });
    stepDurably(core, { type: 'voteResponse', from: n(5), resp: grant(2) });
    expect(core.status().role, 'three of five nodes, but one of three voters').to.equal('Candidate');
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2) });
    expect(core.status().role).to.equal('Leader');
  });

  it('are replicated to but never counted for commit', () => {
    const core = leader(withLearners);
    expect(core.status().commitIndex).to.equal(0);
    ack(core, 4, 2);
    ack(core, 5, 2);
    expect(core.status().commitIndex).to.equal(0);
    ack(core, 3, 2);
    expect(core.status().commitIndex).to.equal(2);
  });

  // Asked anyway (by a candidate whose config names it a voter, see paper_5_2_election.test.ts), a
  // NonVoter with a log answers on term and log alone; whatever it answers, it stays passive.
  it('start, restart and stay NonVoters with no election deadline, across term changes and vote requests', () => {
    const core = makeCore({ id: 4, entries: [configEntry(1, 1, withLearners), normalEntry(2, 1)] });
    expect(core.status().role).to.equal('NonVoter');
    expect(core.nextDeadlineMs()).to.equal(null);
    expect(stepDurably(core, { type: 'tick', nowMs: 1_000_000 })).to.deep.equal([]);
    // A known candidate of a higher term: the term is adopted, the node stays a NonVoter with no timer.
    const reply = ofType(stepDurably(core, { type: 'vote', reqId: 1, req: voteReq(2, 3, 2, 1) }), 'reply')[0]!.resp as VoteResponse;
    expect(reply).to.deep.include({ type: 'voteResponse', term: 3, isCandidateUnknown: false });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 3 });
    expect(core.nextDeadlineMs()).to.equal(null);
    // A leader of a yet higher term replicates to it: it follows the log, still passive.
    stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(2, 4, 2, 1, [blankEntry(3, 4)], 3) });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 4, currentLeader: 2, commitIndex: 3 });
    expect(core.nextDeadlineMs()).to.equal(null);
    const restarted = makeCore({ id: 4, entries: [configEntry(1, 1, withLearners), normalEntry(2, 1), blankEntry(3, 4)], term: 4 });
    expect(restarted.status().role).to.equal('NonVoter');
    expect(restarted.nextDeadlineMs()).to.equal(null);
  });

  // Seed 000 ("add"): "stays non-voter until a config is replicated which marks it as a member instead of
  // a non-voter"; the caught-up node is not yet in any config.
  it('a node being caught up takes the log as a NonVoter and becomes a Follower with the joint entry', () => {
    const core = makeCore({ id: 4 });
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 2, 0, 0, [configEntry(1, 1, membership(1, 2, 3)), blankEntry(2, 2)], 2) });
    expect(core.status()).to.include({ role: 'NonVoter', lastLogIndex: 2, commitIndex: 2 });
    expect(core.nextDeadlineMs()).to.equal(null);
    stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(1, 2, 2, 2, [configEntry(3, 2, cfg([1, 2, 3], [], [1, 2, 3, 4]))], 2) });
    expect(core.status()).to.include({ role: 'Follower', membershipIndex: 3 });
    expect(core.nextDeadlineMs()).to.be.a('number');
  });

  it('a demoted voter becomes a NonVoter when the final config naming it a non-voter arrives', () => {
    const core = makeCore({ id: 3, entries: [configEntry(1, 1, membership(1, 2, 3))] });
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 2, 1, 1, [configEntry(2, 2, cfg([1, 2, 3], [3], [1, 2]))]) });
    expect(core.status().role, 'still a voter of the old side while joint').to.equal('Follower');
    stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(1, 2, 2, 2, [configEntry(3, 2, cfg([1, 2], [3]))], 2) });
    // Until the final config is known committed, a voter of the joint config before it stays in
    // elections: it may be needed to finish the change (see the next test).
    expect(core.status().role, 'final config not yet committed').to.equal('Follower');
    stepDurably(core, { type: 'appendEntries', reqId: 3, req: appendReq(1, 2, 3, 2, [], 3) });
    expect(core.status()).to.include({ role: 'NonVoter', commitIndex: 3 });
    expect(core.nextDeadlineMs()).to.equal(null);
  });

  // Found by the simulator's membership nemesis (seed 593, 3 nodes): leader 1 of {1} replaced by 2
  // appended the final {2} and was deposed before it committed. Passive as a non-member, it never
  // campaigned; node 2, behind it, could not win the joint majority without 1's vote, which 1, ahead,
  // refused: no leader ever. Now 1 campaigns among the final config's voters, wins, commits the
  // final config and steps down.
  it('a deposed leader holding the only copy of the final config that removes it campaigns, commits it and steps down', () => {
    const joint = cfg([1], [], [2]);
    const core = makeCore({ id: 1, entries: [configEntry(1, 1, membership(1)), configEntry(2, 1, joint), configEntry(3, 1, membership(2))], term: 1, lastApplied: 2 });
    expect(core.status()).to.include({ role: 'Follower', commitIndex: 2, membershipIndex: 3 });
    const cmds = timeOut(core);
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 2 });
    expect(ofType(cmds, 'sendVote').map((v) => v.to), 'asks the final config\'s voters').to.deep.equal([2]);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: grant(2), requestTerm: t(2) });
    expect(core.status().role).to.equal('Leader');
    const done = stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: t(2), matchIndex: i(4) });
    expect(ofType(done, 'commit').map((c) => c.commitIndex)).to.deep.equal([4]);
    expect(core.status()).to.include({ role: 'NonVoter', commitIndex: 4 });
  });
});

// Seed 000: "if a candidate receives such a rejection and its index > 0, then it will go into non-voter
// state" (covered in init_with_config.test.ts); here, how such a node comes back, or does not.
describe('after isCandidateUnknown', () => {
  const unknown = (term: number) => ({ type: 'voteResponse' as const, term: t(term), voteGranted: false, isCandidateUnknown: true });

  // Found in review: "unknown" answers carry the responder's term, which they never move, so only
  // the term of the request tells a late answer to an earlier campaign from one to this campaign.
  it('an "unknown" answer to an earlier campaign is ignored; one to this campaign still counts', () => {
    const core = makeCore({ id: 3, entries: [configEntry(1, 1, membership(1, 2, 3))] });
    timeOut(core);
    timeOut(core);
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 3 });
    const late = stepDurably(core, { type: 'voteResponse', from: n(2), resp: unknown(1), requestTerm: t(2) });
    expect(core.status()).to.include({ role: 'Candidate', currentTerm: 3 });
    expect(ofType(late, 'leftCluster')).to.deep.equal([]);
    const now = stepDurably(core, { type: 'voteResponse', from: n(2), resp: unknown(1), requestTerm: t(3) });
    expect(core.status().role).to.equal('NonVoter');
    expect(ofType(now, 'leftCluster'), 'a node told it is unknown has left the cluster').to.have.length(1);
  });

  it('a voter sent to NonVoter by a stale "unknown" returns to Follower when a leader replicates to it', () => {
    const core = makeCore({ id: 3, entries: [configEntry(1, 1, membership(1, 2, 3))] });
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: unknown(1) });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 2 });
    const cmds = stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 3, 1, 1, [blankEntry(2, 3)], 2) });
    expect(ofType(cmds, 'reply')[0]!.resp).to.deep.include({ success: true, matchIndex: 2 });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 3, currentLeader: 1, commitIndex: 2 });
    expect(core.nextDeadlineMs()).to.be.a('number');
  });

  it('the same holds for a leader of the node\'s own term', () => {
    const core = makeCore({ id: 3, entries: [configEntry(1, 1, membership(1, 2, 3))] });
    timeOut(core);
    stepDurably(core, { type: 'voteResponse', from: n(2), resp: unknown(2) });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 2 });
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 2, 1, 1, []) });
    expect(core.status()).to.include({ role: 'Follower', currentTerm: 2 });
  });

  it('a removed node (not a voter of its own config) stays a NonVoter when a leader replicates to it', () => {
    const core = makeCore({ id: 3, entries: [configEntry(1, 1, membership(1, 2, 3)), configEntry(2, 1, membership(1, 2))] });
    expect(core.status().role).to.equal('NonVoter');
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 3, 2, 1, [blankEntry(3, 3)], 3) });
    expect(core.status()).to.include({ role: 'NonVoter', currentTerm: 3, commitIndex: 3 });
    expect(core.nextDeadlineMs()).to.equal(null);
  });
});

// Seed 000: "need to introduce the is_non_voter Raft state field ... Add this field to metrics enum as well."
describe('status for metrics: membershipIndex and configChange', () => {
  it('membershipIndex follows the config entry in force on the leader, configChange shows phase, target and awaiting', () => {
    const core = leader(membership(1, 2, 3), { config: SHORT_CATCH_UP });
    expect(core.status()).to.deep.include({ membershipIndex: 1, configChange: null });
    core.proposeConfigChange({ add: ids(4), addNonVoters: ids(5) });
    const target = { voters: [1, 2, 3, 4], nonVoters: [5] };
    expect(core.status().configChange).to.deep.equal({ phase: 'waiting', target, awaiting: [] });
    ack(core, 2, 2);
    expect(core.status().configChange).to.deep.equal({ phase: 'catchingUp', target, awaiting: [4] });
    ack(core, 4, 2);
    expect(core.status()).to.deep.include({ membershipIndex: 3, membership: cfg([1, 2, 3], [5], [1, 2, 3, 4]), configChange: { phase: 'joint', target, awaiting: [] } });
    ack(core, 2, 3);
    ack(core, 4, 3);
    expect(core.status()).to.deep.include({ membershipIndex: 4, membership: cfg([1, 2, 3, 4], [5]), configChange: { phase: 'uniform', target, awaiting: [] } });
    ack(core, 2, 4);
    ack(core, 3, 4);
    expect(core.status()).to.deep.include({ membershipIndex: 4, commitIndex: 4, configChange: null });
  });

  it('on a follower, membershipIndex follows config entries as they are appended and truncated; configChange is null', () => {
    const core = makeCore({ id: 2, entries: [configEntry(1, 1, membership(1, 2, 3)), normalEntry(2, 1)] });
    expect(core.status()).to.deep.include({ membershipIndex: 1, configChange: null });
    stepDurably(core, { type: 'appendEntries', reqId: 1, req: appendReq(1, 1, 2, 1, [configEntry(3, 1, cfg([1, 2, 3], [], [1, 2, 3, 4]))]) });
    expect(core.status()).to.deep.include({ membershipIndex: 3, configChange: null });
    stepDurably(core, { type: 'appendEntries', reqId: 2, req: appendReq(3, 2, 2, 1, [blankEntry(3, 2)]) });
    expect(core.status()).to.deep.include({ membershipIndex: 1, membership: membership(1, 2, 3) });
  });
});
