/**
 * The simulator's safety checker (sim/invariants.ts), fed by hand-made node views: each invariant
 * fires with its name, the seed, the step and a message naming the node(s), and a correct history
 * passes.
 */
import { expect } from 'chai';
import { encodeEntries } from '../../actors/raft/codec';
import type { CoreStatus } from '../../actors/raft/core/io';
import type { Entry, LogIndex, Membership, NodeId, RaftRole, Term } from '../../actors/raft/core/types';
import { InvariantChecker, InvariantViolationError, type NodeView } from '../../sim/invariants';
import { DurableView } from '../../sim/sim-storage';

const ix = (n: number): LogIndex => n as LogIndex;
const tm = (n: number): Term => n as Term;
const id = (n: number): NodeId => n as NodeId;
const SEED = 4242;
const THREE: Membership = { members: [id(1), id(2), id(3)], nonVoters: [], membersAfterConsensus: null };

interface Shape {
  role?: RaftRole;
  term?: number;
  vote?: number | null;
  /** Term of each log entry, index 1 first. */
  log?: number[];
  commit?: number;
  applied?: number;
  durable?: number;
  membership?: Membership;
  membershipIndex?: number;
}

/** A node view as the simulator would build it from a running node. */
function view(node: number, s: Shape = {}): NodeView {
  const log = s.log ?? [];
  const status: CoreStatus = {
    id: id(node),
    role: s.role ?? 'Follower',
    currentTerm: tm(s.term ?? 1),
    votedFor: s.vote === undefined || s.vote === null ? null : id(s.vote),
    currentLeader: null,
    lastLogIndex: ix(log.length),
    lastLogTerm: tm(log.length === 0 ? 0 : log[log.length - 1]),
    durableIndex: ix(s.durable ?? log.length),
    commitIndex: ix(s.commit ?? 0),
    lastApplied: ix(s.applied ?? 0),
    membership: s.membership ?? THREE,
    membershipIndex: ix(s.membershipIndex ?? (s.membership === undefined ? 1 : 0)),
    configChange: null,
    snapshotIndex: ix(0),
    snapshotTerm: tm(0),
    transferTarget: null,
    leaseUntilMs: null,
    preVoteRounds: 0,
    electionsStarted: 0,
    readIndexRounds: 0,
    quorumLossStepDowns: 0,
  };
  return { status, termAt: (i) => (i >= 1 && i <= log.length ? tm(log[i - 1]) : null) };
}

const normal = (index: number, term: number, text: string): Entry =>
  ({ kind: 'normal', index: ix(index), term: tm(term), payload: new TextEncoder().encode(text) });
const blank = (index: number, term: number): Entry => ({ kind: 'blank', index: ix(index), term: tm(term) });
const config = (index: number, term: number, membership: Membership): Entry => ({ kind: 'config', index: ix(index), term: tm(term), membership });
const uniform = (members: number[], nonVoters: number[] = []): Membership => ({ members: members.map(id), nonVoters: nonVoters.map(id), membersAfterConsensus: null });
const joint = (from: number[], to: number[], nonVoters: number[] = []): Membership => ({ members: from.map(id), nonVoters: nonVoters.map(id), membersAfterConsensus: to.map(id) });

/** Runs `fn`, which must throw InvariantViolationError for `invariant` at the checker's step. */
function violation(fn: () => unknown, invariant: string, step: number, timeMs: number, detail: RegExp): InvariantViolationError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(caught, `expected '${invariant}' to be violated, nothing was thrown`).to.be.instanceOf(InvariantViolationError);
  const err = caught as InvariantViolationError;
  expect(err.code).to.equal('InvariantViolation');
  expect(err.name).to.equal('InvariantViolationError');
  expect(err.invariant).to.equal(invariant);
  expect(err.seed).to.equal(SEED);
  expect(err.step).to.equal(step);
  expect(err.timeMs).to.equal(timeMs);
  expect(err.detail).to.match(detail);
  expect(err.message).to.equal(`invariant '${invariant}' violated (seed ${SEED}, step ${step}, t=${timeMs.toFixed(3)} ms): ${err.detail}`);
  return err;
}

/** A simulated disk's durable view, built by applying the records a SimStorage would sync. */
function disk(termOfEach: number[], hard: { term: number; vote: number | null } = { term: 0, vote: null }): DurableView {
  const v = new DurableView();
  v.apply({ type: 'hardState', hardState: { currentTerm: tm(hard.term), votedFor: hard.vote === null ? null : id(hard.vote) } });
  if (termOfEach.length > 0) v.apply({ type: 'append', entries: encodeEntries(termOfEach.map((t, k) => blank(k + 1, t))) });
  return v;
}

describe('sim/invariants: InvariantChecker', () => {
  describe('election safety', () => {
    it('fires when two nodes lead one term, naming both', () => {
      const c = new InvariantChecker(SEED);
      c.at(7, 12.5);
      c.observe(id(1), view(1, { role: 'Leader', term: 3, vote: 1 }));
      c.observe(id(1), view(1, { role: 'Leader', term: 3, vote: 1 })); // the same leader again is fine
      c.observe(id(2), view(2, { role: 'Leader', term: 4, vote: 2 })); // a leader of another term is fine
      c.at(8, 13.25);
      violation(() => c.observe(id(3), view(3, { role: 'Leader', term: 3, vote: 3 })), 'election safety', 8, 13.25, /nodes 1 and 3 both lead term 3/);
    });
  });

  describe('monotonicity', () => {
    it('fires when a node\'s term goes back', () => {
      const c = new InvariantChecker(SEED);
      c.at(1, 1);
      c.observe(id(2), view(2, { term: 5 }));
      c.at(2, 2);
      violation(() => c.observe(id(2), view(2, { term: 4 })), 'monotonic term', 2, 2, /node 2 term went from 5 back to 4/);
    });

    it('fires when a node\'s vote changes within a term, but not when it first votes or votes in a new term', () => {
      const c = new InvariantChecker(SEED);
      c.at(3, 0.5);
      c.observe(id(1), view(1, { term: 2, vote: null }));
      c.observe(id(1), view(1, { term: 2, vote: 2 }));
      c.observe(id(1), view(1, { term: 3, vote: 3 }));
      c.at(4, 0.75);
      violation(() => c.observe(id(1), view(1, { term: 3, vote: 2 })), 'one vote per term', 4, 0.75, /node 1 voted for 3 in term 3, now shows 2/);
      const d = new InvariantChecker(SEED);
      d.observe(id(1), view(1, { term: 3, vote: 3 }));
      violation(() => d.observe(id(1), view(1, { term: 3, vote: null })), 'one vote per term', 0, 0, /node 1 voted for 3 in term 3, now shows null/);
    });

    it('fires when a node\'s commit index goes back', () => {
      const c = new InvariantChecker(SEED);
      c.at(10, 100);
      c.observe(id(3), view(3, { log: [1, 1, 1], commit: 3 }));
      violation(() => c.observe(id(3), view(3, { log: [1, 1, 1], commit: 2 })), 'monotonic commit', 10, 100, /node 3 commit index went from 3 back to 2/);
    });

    it('fires when a node\'s applied index goes back', () => {
      const c = new InvariantChecker(SEED);
      c.at(11, 101);
      c.observe(id(3), view(3, { log: [1, 1, 1], commit: 3, applied: 3 }));
      violation(() => c.observe(id(3), view(3, { log: [1, 1, 1], commit: 3, applied: 1 })), 'monotonic applied', 11, 101, /node 3 applied index went from 3 back to 1/);
    });

    it('fires when a node applies beyond its commit index', () => {
      const c = new InvariantChecker(SEED);
      c.at(12, 102);
      violation(() => c.observe(id(2), view(2, { log: [1, 1, 1], commit: 2, applied: 3 })), 'commit covers applied', 12, 102, /node 2 applied 3 beyond its commit index 2/);
    });
  });

  describe('leader completeness', () => {
    it('fires when a node becomes leader in a later term without an entry committed earlier', () => {
      const c = new InvariantChecker(SEED);
      c.at(20, 5);
      c.observe(id(1), view(1, { term: 2, log: [1, 1, 2], commit: 3 }));
      c.at(21, 6);
      violation(() => c.observe(id(2), view(2, { role: 'Leader', term: 3, vote: 2, log: [1, 1] })), 'leader completeness', 21, 6,
        /node 2 leads term 3 with no entry at index 3, committed with term 2 in term 2/);
    });

    it('fires when the later leader holds a different term at the committed index', () => {
      const c = new InvariantChecker(SEED);
      c.observe(id(1), view(1, { term: 2, log: [1, 2], commit: 2 }));
      violation(() => c.observe(id(3), view(3, { role: 'Leader', term: 4, vote: 3, log: [1, 3, 4] })), 'leader completeness', 0, 0,
        /node 3 leads term 4 with term 3 at index 2, committed with term 2 in term 2/);
    });

    it('does not fire for a leader of an earlier term that is only observed as leader late', () => {
      const c = new InvariantChecker(SEED);
      c.observe(id(1), view(1, { term: 4, log: [1, 1, 4], commit: 3 }));
      // Node 2 led term 3 before index 3 was committed in term 4; the simulator sees it only now.
      c.observe(id(2), view(2, { role: 'Leader', term: 3, vote: 2, log: [1, 1, 3] }));
      // A leader of term 5 that has the committed entries is fine too.
      c.observe(id(3), view(3, { role: 'Leader', term: 5, vote: 3, log: [1, 1, 4, 5] }));
      expect(c.checks).to.equal(3);
      expect(c.committedIndex).to.equal(3);
    });
  });

  describe('state machine safety', () => {
    it('fires when two nodes apply different entries at one index', () => {
      const c = new InvariantChecker(SEED);
      c.at(30, 7);
      c.applied(id(1), [normal(1, 1, 'x=1'), blank(2, 1)], undefined);
      c.applied(id(2), [normal(1, 1, 'x=1')], undefined); // the same entry: fine
      violation(() => c.applied(id(2), [normal(2, 1, 'x=2')], undefined), 'state machine safety', 30, 7,
        /node 2 applied a different entry at index 2 \(term 1\) than node 1/);
    });

    it('fires when two entries at one index differ only in term', () => {
      const c = new InvariantChecker(SEED);
      c.applied(id(1), [normal(1, 1, 'same')], undefined);
      violation(() => c.applied(id(3), [normal(1, 2, 'same')], undefined), 'state machine safety', 0, 0, /node 3 applied a different entry at index 1 \(term 2\)/);
    });

    it('fires when two state machines at the same applied index have different state hashes, whatever the batching', () => {
      const c = new InvariantChecker(SEED);
      c.at(31, 8);
      c.applied(id(1), [normal(1, 1, 'a'), normal(2, 1, 'b')], 'h2');
      c.applied(id(2), [normal(1, 1, 'a')], 'h1');
      c.applied(id(3), [normal(1, 1, 'a')], 'h1');
      violation(() => c.applied(id(2), [normal(2, 1, 'b')], 'h2-other'), 'state machine safety', 31, 8,
        /node 2 has state hash h2-other at applied index 2, node 1 had h2/);
    });

    it('fires when two nodes commit different terms at one index', () => {
      const c = new InvariantChecker(SEED);
      c.observe(id(1), view(1, { term: 2, log: [1, 1], commit: 2 }));
      violation(() => c.observe(id(2), view(2, { term: 2, log: [1, 2], commit: 2 })), 'state machine safety', 0, 0,
        /index 2 committed with term 1, node 2 committed term 2/);
    });
  });

  describe('log matching', () => {
    it('fires when two logs hold one index and term with different histories before it', () => {
      const c = new InvariantChecker(SEED);
      c.at(40, 9);
      c.logWritten(id(1), null, [normal(1, 1, 'a'), normal(2, 3, 'c')]);
      c.logWritten(id(2), null, [normal(1, 2, 'b')]); // another term at index 1: allowed on its own
      violation(() => c.logWritten(id(2), null, [normal(2, 3, 'c')]), 'log matching', 40, 9,
        /node 2 holds index 2 term 3 with a different history than node 1/);
    });

    it('fires when two logs hold one index and term with different content', () => {
      const c = new InvariantChecker(SEED);
      c.logWritten(id(1), null, [normal(1, 1, 'a')]);
      violation(() => c.logWritten(id(3), null, [normal(1, 1, 'not a')]), 'log matching', 0, 0, /node 3 holds index 1 term 1/);
    });

    it('fires when a log write leaves a gap no committed entry (no snapshot) covers', () => {
      const c = new InvariantChecker(SEED);
      c.logWritten(id(1), null, [blank(1, 1)]);
      violation(() => c.logWritten(id(1), null, [blank(3, 1)]), 'log matching', 0, 0, /node 1: its log resumes after a gap, but index 2 is not known committed/);
    });

    it('accepts a truncation that rewrites the same entries, and one that replaces them with a newer term', () => {
      const c = new InvariantChecker(SEED);
      const log = [normal(1, 1, 'a'), normal(2, 1, 'b'), blank(3, 2)];
      c.logWritten(id(1), null, log);
      c.logWritten(id(1), ix(2), log.slice(1)); // truncate from 2, write the same again
      c.logWritten(id(2), null, log);
      c.logWritten(id(2), ix(3), [normal(3, 4, 'new')]); // a newer leader's entry replaces index 3
      c.logWritten(id(1), ix(3), [normal(3, 4, 'new'), blank(4, 4)]);
      c.logWritten(id(3), ix(1), [...log.slice(0, 2), normal(3, 4, 'new')]); // a restart reports the whole log
      c.logWritten(id(3), ix(10), []); // a truncation past the end
      expect(c.checks).to.equal(7);
    });
  });

  describe('durability (with the simulator\'s disks)', () => {
    it('fires when a leader counts entries beyond what its disk has synced', () => {
      const disks = new Map([[1, disk([1, 1], { term: 2, vote: 1 })], [2, disk([1, 1])], [3, disk([1, 1])]]);
      const c = new InvariantChecker(SEED, (n) => disks.get(n));
      c.at(50, 10);
      c.observe(id(1), view(1, { role: 'Leader', term: 2, vote: 1, log: [1, 1, 2], durable: 2 })); // durable 2 of 2: fine
      violation(() => c.observe(id(1), view(1, { role: 'Leader', term: 2, vote: 1, log: [1, 1, 2], durable: 3 })), 'leader counts only durable entries', 50, 10,
        /leader 1 counts its log through 3, but its disk has synced only through 2/);
    });

    it('fires when a leader commits an entry durable on less than a quorum of disks, and not once a quorum holds it', () => {
      const d1 = disk([1, 2], { term: 2, vote: 1 });
      const disks = new Map([[1, d1], [2, disk([1])], [3, disk([1, 1])]]); // node 3 holds index 2 from another term
      const c = new InvariantChecker(SEED, (n) => disks.get(n));
      c.at(51, 11);
      const leader = (commit: number) => view(1, { role: 'Leader', term: 2, vote: 1, log: [1, 2], commit });
      c.observe(id(1), leader(1)); // index 1 is on all three disks
      violation(() => c.observe(id(1), leader(2)), 'committed means durable on a quorum', 51, 11,
        /leader 1 committed index 2 \(term 2\), durable only on \[1\] of voters \[1,2,3\]/);

      const ok = new InvariantChecker(SEED, (n) => disks.get(n));
      disks.get(2)!.apply({ type: 'append', entries: encodeEntries([blank(2, 2)]) });
      ok.observe(id(1), leader(1));
      ok.observe(id(1), leader(2));
      expect(ok.committedIndex).to.equal(2);
    });

    it('during joint consensus, needs a quorum of the new voters too', () => {
      const joint: Membership = { members: [id(1), id(2), id(3)], nonVoters: [], membersAfterConsensus: [id(3), id(4), id(5)] };
      const disks = new Map([[1, disk([1, 1])], [2, disk([1, 1])], [3, disk([1, 1])], [4, disk([1])], [5, disk([])]]);
      const c = new InvariantChecker(SEED, (n) => disks.get(n));
      c.at(52, 12);
      violation(() => c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1], commit: 2, membership: joint })), 'committed means durable on a quorum', 52, 12,
        /leader 1 committed index 2 \(term 1\), durable only on \[3\] of voters \[3,4,5\]/);
    });

    it('fires when the durable term goes back or the durable vote changes within a term', () => {
      const d = disk([], { term: 3, vote: 2 });
      const c = new InvariantChecker(SEED, () => d);
      c.observe(id(1), view(1, { term: 3, vote: 2 }));
      d.apply({ type: 'hardState', hardState: { currentTerm: tm(3), votedFor: id(3) } });
      violation(() => c.observe(id(1), view(1, { term: 3, vote: 2 })), 'one durable vote per term', 0, 0, /node 1 durably voted for 2 in term 3, now 3/);

      const e = disk([], { term: 5, vote: null });
      const c2 = new InvariantChecker(SEED, () => e);
      c2.observe(id(1), view(1, { term: 5 }));
      e.rebuild([{ type: 'hardState', hardState: { currentTerm: tm(4), votedFor: null } }]);
      violation(() => c2.observe(id(1), view(1, { term: 5 })), 'monotonic durable term', 0, 0, /node 1 durable term went from 5 back to 4/);
    });
  });

  describe('restarts', () => {
    it('restarted() resets the in-memory term and vote to the disk\'s hard state', () => {
      // Node 1 showed term 5 and a vote in memory, but only term 3 with a vote for 2 reached its disk.
      const d = disk([1, 1], { term: 3, vote: 2 });
      const c = new InvariantChecker(SEED, () => d);
      c.at(60, 20);
      c.observe(id(1), view(1, { term: 5, vote: 1, log: [1, 1] }));
      violation(() => c.observe(id(1), view(1, { term: 3, vote: 2, log: [1, 1] })), 'monotonic term', 60, 20, /node 1 term went from 5 back to 3/);

      const r = new InvariantChecker(SEED, () => d);
      r.observe(id(1), view(1, { term: 5, vote: 1, log: [1, 1] }));
      r.restarted(id(1), false);
      r.observe(id(1), view(1, { term: 3, vote: 2, log: [1, 1] })); // what the disk held: accepted
      // ... but the disk's term is still a floor, and its vote still binds the term.
      violation(() => r.observe(id(1), view(1, { term: 2, log: [1, 1] })), 'monotonic term', 0, 0, /node 1 term went from 3 back to 2/);
      const v = new InvariantChecker(SEED, () => d);
      v.restarted(id(1), false);
      violation(() => v.observe(id(1), view(1, { term: 3, vote: 1, log: [1, 1] })), 'one vote per term', 0, 0, /node 1 voted for 2 in term 3, now shows 1/);
    });

    it('restarted() without a durable state machine lets commit and applied start again from 0', () => {
      const c = new InvariantChecker(SEED);
      c.observe(id(2), view(2, { term: 2, log: [1, 2], commit: 2, applied: 2 }));
      c.restarted(id(2), false);
      c.observe(id(2), view(2, { term: 2, log: [1, 2], commit: 0, applied: 0 }));
      c.observe(id(2), view(2, { term: 2, log: [1, 2], commit: 2, applied: 1 }));
      expect(c.checks).to.equal(3);
    });

    it('restarted() with a durable state machine keeps the applied index as a floor', () => {
      const c = new InvariantChecker(SEED);
      c.observe(id(2), view(2, { term: 2, log: [1, 2, 2], commit: 3, applied: 2 }));
      c.restarted(id(2), true);
      c.observe(id(2), view(2, { term: 2, log: [1, 2, 2], commit: 2, applied: 2 })); // commit restarts from applied
      violation(() => c.observe(id(2), view(2, { term: 2, log: [1, 2, 2], commit: 2, applied: 1 })), 'monotonic applied', 0, 0, /node 2 applied index went from 2 back to 1/);
      const d = new InvariantChecker(SEED);
      d.observe(id(2), view(2, { term: 2, log: [1, 2, 2], commit: 3, applied: 2 }));
      d.restarted(id(2), true);
      violation(() => d.observe(id(2), view(2, { term: 2, log: [1, 2, 2], commit: 1, applied: 2 })), 'monotonic commit', 0, 0, /node 2 commit index went from 2 back to 1/);
    });
  });

  describe('membership changes', () => {
    const J = joint([1, 2, 3], [1, 2, 3, 4]);
    /** A checker that has seen node 1 lead term 1 and commit through `commit` of the log `terms`. */
    function committedThrough(commit: number, log: number[], disks?: Map<number, DurableView>): InvariantChecker {
      const c = new InvariantChecker(SEED, disks ? (n) => disks.get(n) : undefined);
      c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log, commit }));
      return c;
    }

    it('one change at a time: fires when a config entry follows one not yet committed, not once it is', () => {
      const c = committedThrough(0, [1, 1]);
      c.at(70, 30);
      violation(() => c.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, J)]), 'one change at a time', 70, 30,
        /node 1's log holds config \[1,2,3\]->\[1,2,3,4\] at index 2 \(term 1\) after config \[1,2,3\] at index 1 \(term 1\), which was not committed/);
      const ok = committedThrough(1, [1, 1]);
      ok.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, J)]);
      ok.logWritten(id(2), null, [config(1, 1, THREE), config(2, 1, J)]); // a follower gets both in one write
    });

    it('fires when a joint config is followed by another joint config', () => {
      const c = committedThrough(2, [1, 1, 1]);
      c.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, J)]);
      violation(() => c.logWritten(id(1), null, [config(3, 1, joint([1, 2, 3], [1, 2, 3, 5]))]), 'one change at a time', 0, 0, /a joint config followed by another joint config/);
    });

    it('final config matches joint: fires when the final config is not the joint config\'s new voters and non-voters', () => {
      for (const wrong of [uniform([1, 2, 3]), uniform([1, 2, 3, 4], [5]), uniform([1, 2, 4])]) {
        const c = committedThrough(2, [1, 1, 1]);
        c.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, J)]);
        violation(() => c.logWritten(id(1), null, [config(3, 1, wrong)]), 'final config matches joint', 0, 0, /the final config is not the joint config's new voters and non-voters/);
      }
      const ok = committedThrough(2, [1, 1, 1]);
      ok.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, J), config(3, 1, uniform([4, 3, 2, 1]))]); // order does not matter
    });

    it('fires when a joint config does not start from the voters before it, or voters change without one', () => {
      const c = committedThrough(1, [1, 1]);
      violation(() => c.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, joint([1, 2], [1, 2, 4]))]), 'joint config starts from the current one', 0, 0, /old voters are not the voters before it/);
      const d = committedThrough(1, [1, 1]);
      violation(() => d.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, uniform([1, 2, 3, 4]))]), 'voter changes go through joint consensus', 0, 0, /the voters changed without a joint config/);
      const learners = committedThrough(1, [1, 1]);
      learners.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, uniform([3, 1, 2], [5]))]); // only learners changed
    });

    it('a truncated config no longer counts: a new leader may replace an uncommitted joint config', () => {
      const c = committedThrough(1, [1, 1]);
      c.logWritten(id(2), null, [config(1, 1, THREE), config(2, 1, J)]);
      c.logWritten(id(2), ix(2), [config(2, 2, joint([1, 2, 3], [1, 2]))]);
      c.logWritten(id(2), ix(1), [config(1, 1, THREE), blank(2, 3)]); // a restart replays the whole log
      c.logWritten(id(2), null, [config(3, 3, joint([1, 2, 3], [2, 3]))]);
    });

    it('removed node never leads: fires when a leader is not a voter of its own config', () => {
      const c = new InvariantChecker(SEED);
      c.at(71, 31);
      violation(() => c.observe(id(4), view(4, { role: 'Leader', term: 3, vote: 4, log: [1, 1], membership: uniform([1, 2, 3], [4]), membershipIndex: 2 })), 'removed node never leads', 71, 31,
        /node 4 leads term 3 under its config at index 2, \[1,2,3\]\+learners \[4\], of which it is not a voter/);
    });

    it('removed node never leads: fires when a leader\'s config is older than one committed before its term', () => {
      // Configs are known from the logs' writes (the simulator's storage); commits from the leader's view.
      const c2 = committedThrough(0, [1, 1, 1]);
      c2.logWritten(id(1), null, [config(1, 1, uniform([1, 2, 3, 4]))]);
      c2.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 1 }));
      c2.logWritten(id(1), null, [config(2, 1, joint([1, 2, 3, 4], [1, 2, 3]))]);
      c2.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 2 }));
      c2.logWritten(id(1), null, [config(3, 1, THREE)]);
      c2.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 3 }));
      // (Leader completeness makes a leader hold index 3; this catches a leader that holds it and still leads under the older config.)
      violation(() => c2.observe(id(4), view(4, { role: 'Leader', term: 2, vote: 4, log: [1, 1, 1], membership: joint([1, 2, 3, 4], [1, 2, 3]), membershipIndex: 2 })), 'removed node never leads', 0, 0,
        /node 4 leads term 2 under its config at index 2, \[1,2,3,4\]->\[1,2,3\], older than the config committed at index 3 in term 1: \[1,2,3\]/);
    });

    it('removed node never leads: seed 000\'s rare case passes (a node of the committed joint config finishes it), and so does a node added by an uncommitted config', () => {
      const c = committedThrough(0, [1, 1, 1]);
      c.logWritten(id(1), null, [config(1, 1, uniform([1, 2, 3, 4]))]);
      c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 1 }));
      c.logWritten(id(1), null, [config(2, 1, joint([1, 2, 3, 4], [1, 2, 3]))]);
      c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 2 }));
      c.logWritten(id(1), null, [config(3, 1, THREE)]); // the final config at 3 is not committed
      c.observe(id(4), view(4, { role: 'Leader', term: 2, vote: 4, log: [1, 1], membership: joint([1, 2, 3, 4], [1, 2, 3]), membershipIndex: 2 }));
      const d = committedThrough(1, [1, 1]);
      d.logWritten(id(1), null, [config(1, 1, THREE), config(2, 1, J)]);
      d.observe(id(4), view(4, { role: 'Leader', term: 2, vote: 4, log: [1, 1], membership: J, membershipIndex: 2 }));
    });

    it('committed means durable on a quorum: a commit made under the config before the step passes even if a config entry was appended in it', () => {
      // Index 2 is on 1, 2, 3 (a quorum of the old voters), not on 4 or 5 (new voters of the joint config appended in the same step).
      const disks = new Map([[1, disk([1, 1, 1])], [2, disk([1, 1])], [3, disk([1, 1])], [4, disk([1])], [5, disk([])]]);
      const c = new InvariantChecker(SEED, (n) => disks.get(n));
      const J5 = joint([1, 2, 3], [1, 2, 3, 4, 5]);
      c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1], commit: 1 }));
      c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 2, membership: J5, membershipIndex: 3 }));
      // The next commit is under the joint config alone: index 3 is on 1 only.
      c.at(72, 32);
      violation(() => c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1, 1], commit: 3, membership: J5, membershipIndex: 3 })), 'committed means durable on a quorum', 72, 32,
        /leader 1 committed index 3 \(term 1\), durable only on \[1\] of voters \[1,2,3\]/);
    });

    it('committed means durable on a quorum: also checks the commit of a leader that stepped down in the same step (its own removal)', () => {
      const disks = new Map([[1, disk([1, 1])], [2, disk([1])], [3, disk([1])]]);
      const c = new InvariantChecker(SEED, (n) => disks.get(n));
      c.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1], commit: 1 }));
      violation(() => c.observe(id(1), view(1, { role: 'NonVoter', term: 1, vote: 1, log: [1, 1], commit: 2, membership: uniform([2, 3]), membershipIndex: 2 })), 'committed means durable on a quorum', 0, 0,
        /leader 1 committed index 2 \(term 1\), durable only on \[\] of voters \[2,3\]/);
      // A node that steps down to a higher term and learns a commit from the new leader is a follower there: not checked as a leader.
      const d = new InvariantChecker(SEED, (n) => disks.get(n));
      d.observe(id(1), view(1, { role: 'Leader', term: 1, vote: 1, log: [1, 1], commit: 1 }));
      d.observe(id(1), view(1, { role: 'Follower', term: 2, log: [1, 1], commit: 2 }));
    });

    it('wiped() forgets a node: its term, vote, commit and applied index start again from zero', () => {
      const c = new InvariantChecker(SEED);
      c.observe(id(4), view(4, { term: 5, vote: 2, log: [1, 5], commit: 2, applied: 2 }));
      violation(() => c.observe(id(4), view(4, { term: 0, vote: null, log: [] })), 'monotonic term', 0, 0, /node 4 term went from 5 back to 0/);
      const w = new InvariantChecker(SEED);
      w.observe(id(4), view(4, { term: 5, vote: 2, log: [1, 5], commit: 2, applied: 2 }));
      w.wiped(id(4));
      w.observe(id(4), view(4, { role: 'NonVoter', term: 0, vote: null, log: [] }));
      w.observe(id(4), view(4, { term: 5, vote: null, log: [1, 5], commit: 2, applied: 1 }));
    });
  });

  describe('a correct history', () => {
    it('passes every check and counts one check per observation, log write and apply', () => {
      const disks = new Map<number, DurableView>([1, 2, 3].map((n) => [n, new DurableView()]));
      const c = new InvariantChecker(SEED, (n) => disks.get(n));
      const entriesT2 = [blank(1, 2), normal(2, 2, 'x=1'), normal(3, 2, 'x=2')];
      let step = 0;
      const tick = () => c.at(++step, step * 1.5);
      const sync = (n: number, term: number, vote: number | null, log: Entry[]) => {
        disks.get(n)!.apply({ type: 'hardState', hardState: { currentTerm: tm(term), votedFor: vote === null ? null : id(vote) } });
        if (log.length > 0) disks.get(n)!.apply({ type: 'append', entries: encodeEntries(log) }, log);
      };

      // Term 1: node 1 stands but loses; term 2: node 2 wins with votes from 2 and 3.
      tick();
      sync(1, 1, 1, []);
      c.observe(id(1), view(1, { role: 'Candidate', term: 1, vote: 1 }));
      c.observe(id(2), view(2, { term: 1, vote: null }));
      c.observe(id(3), view(3, { term: 1, vote: null }));
      tick();
      sync(2, 2, 2, []); sync(3, 2, 2, []); sync(1, 2, null, []);
      c.observe(id(1), view(1, { term: 2 }));
      c.observe(id(2), view(2, { role: 'Leader', term: 2, vote: 2 }));
      c.observe(id(3), view(3, { term: 2, vote: 2 }));
      // The leader writes three entries, two followers make them durable, and they commit.
      tick();
      for (const n of [2, 3, 1]) {
        c.logWritten(id(n), null, entriesT2);
        sync(n, 2, n === 1 ? null : 2, entriesT2);
      }
      c.observe(id(2), view(2, { role: 'Leader', term: 2, vote: 2, log: [2, 2, 2], commit: 3 }));
      c.observe(id(3), view(3, { term: 2, vote: 2, log: [2, 2, 2], commit: 3 }));
      c.observe(id(1), view(1, { term: 2, log: [2, 2, 2], commit: 1 }));
      tick();
      c.applied(id(2), entriesT2, 'x=2');
      c.applied(id(3), entriesT2.slice(0, 2), 'x=1');
      c.applied(id(3), entriesT2.slice(2), 'x=2');
      c.applied(id(1), entriesT2.slice(0, 1), undefined);
      c.observe(id(2), view(2, { role: 'Leader', term: 2, vote: 2, log: [2, 2, 2], commit: 3, applied: 3 }));
      c.observe(id(3), view(3, { term: 2, vote: 2, log: [2, 2, 2], commit: 3, applied: 3 }));
      c.observe(id(1), view(1, { term: 2, log: [2, 2, 2], commit: 3, applied: 1 }));
      // Node 2 crashes; node 3 leads term 3 with the whole committed log; node 2 comes back.
      tick();
      c.restarted(id(2), true);
      sync(3, 3, 3, []); sync(1, 3, 3, []);
      c.observe(id(3), view(3, { role: 'Leader', term: 3, vote: 3, log: [2, 2, 2], commit: 3, applied: 3 }));
      c.observe(id(1), view(1, { term: 3, vote: 3, log: [2, 2, 2], commit: 3, applied: 3 }));
      c.logWritten(id(2), ix(1), entriesT2);
      c.observe(id(2), view(2, { term: 2, vote: 2, log: [2, 2, 2], commit: 3, applied: 3 }));
      c.observe(id(2), view(2, { term: 3, vote: null, log: [2, 2, 2], commit: 3, applied: 3 }));

      expect(c.checks).to.equal(6 + 3 + 3 + 4 + 3 + 2 + 1 + 2);
      expect(c.committedIndex).to.equal(3);
    });
  });
});
