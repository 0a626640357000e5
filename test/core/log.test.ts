/** log.ts and durability.ts alone: terms as runs, the capped entry cache, and the durable prefix. */
import { expect } from 'chai';
import { LogDurability } from '../../actors/raft/core/durability';
import { InvariantViolation } from '../../actors/raft/core/errors';
import { RaftLog } from '../../actors/raft/core/log';
import { electLeader, follower, i, n, normalEntry, stepDurably } from './helpers/fixtures';

const termsLog = (terms: number[]) => {
  const log = new RaftLog(5);
  log.append(terms.map((term, k) => normalEntry(k + 1, term)));
  return log;
};

describe('RaftLog', () => {
  describe('a log that starts after a snapshot', () => {
    it('purgeThrough forgets entries and terms below the point, keeps the term at it, and goes on', () => {
      const log = termsLog([1, 1, 2, 2, 2, 5, 5]);
      log.purgeThrough(i(4), 2 as never);
      expect(log.firstIndex).to.equal(5);
      expect(log.purgedThrough).to.equal(4);
      expect([0, 1, 3, 4, 5, 6, 7, 8].map((x) => log.termAt(i(x)))).to.deep.equal([0, null, null, 2, 2, 5, 5, null]);
      expect(log.entries(i(4), i(6))).to.equal(null);
      expect(log.entries(i(5), i(8))!.map((e) => e.index)).to.deep.equal([5, 6, 7]);
      // The fast-backtrack hint never points below the first index held.
      expect(log.firstIndexOfTermAt(i(5))).to.equal(5);
      expect(() => log.firstIndexOfTermAt(i(4))).to.throw(InvariantViolation);
      expect(() => log.truncateFrom(i(4))).to.throw(InvariantViolation, /outside 5\.\.7/);
      log.truncateFrom(i(6));
      log.append([normalEntry(6, 6)]);
      expect(log.lastTerm).to.equal(6);
    });

    it('purging past the last index leaves an empty log that continues after the snapshot', () => {
      const log = termsLog([1, 2, 2]);
      log.purgeThrough(i(10), 4 as never);
      expect(log.lastIndex).to.equal(10);
      expect(log.lastTerm).to.equal(4);
      expect(log.termAt(i(10))).to.equal(4);
      expect(log.termAt(i(3))).to.equal(null);
      expect(() => log.append([normalEntry(12, 4)])).to.throw(InvariantViolation, /expected 11/);
      expect(() => log.append([normalEntry(11, 3)])).to.throw(InvariantViolation, /below the previous term/);
      log.append([normalEntry(11, 4), normalEntry(12, 5)]);
      expect(log.entries(i(11), i(13))!.map((e) => e.term)).to.deep.equal([4, 5]);
    });

    it('refuses a purge whose term contradicts the log, and ignores one at or below the current point', () => {
      const log = termsLog([1, 1, 2]);
      expect(() => log.purgeThrough(i(2), 3 as never)).to.throw(InvariantViolation, /has term 1/);
      log.purgeThrough(i(2), 1 as never);
      log.purgeThrough(i(1), 1 as never);
      expect(log.firstIndex).to.equal(3);
    });

    it('a log built to start after a snapshot behaves like one that was purged', () => {
      const log = new RaftLog(5, 100, 7 as never);
      expect(log.lastIndex).to.equal(100);
      expect(log.lastTerm).to.equal(7);
      expect(log.firstIndex).to.equal(101);
      log.append([normalEntry(101, 7), normalEntry(102, 8)]);
      expect(log.termAt(i(100))).to.equal(7);
      expect(log.termAt(i(99))).to.equal(null);
      expect(log.firstIndexOfTermAt(i(101))).to.equal(101);
    });

    it('a long purged log keeps a bounded cache (entries behind the purge point are released)', () => {
      const log = new RaftLog(50);
      for (let k = 1; k <= 20_000; k++) log.append([normalEntry(k, 1 + Math.floor(k / 1000))]);
      log.purgeThrough(i(19_990), (1 + Math.floor(19_990 / 1000)) as never);
      expect(log.entries(i(19_991), i(20_001))!.length).to.equal(10);
      expect(log.termAt(i(19_995))).to.equal(20);
    });
  });

  it('knows the term of every index, and the first index of each term', () => {
    const log = termsLog([1, 1, 2, 2, 2, 5]);
    expect([0, 1, 2, 3, 5, 6, 7].map((x) => log.termAt(i(x)))).to.deep.equal([0, 1, 1, 2, 2, 5, null]);
    expect([1, 2, 3, 4, 5, 6].map((x) => log.firstIndexOfTermAt(i(x)))).to.deep.equal([1, 1, 3, 3, 3, 6]);
    expect(log.lastIndex).to.equal(6);
    expect(log.lastTerm).to.equal(5);
  });

  it('refuses appends that do not continue the log', () => {
    const log = termsLog([1, 2]);
    expect(() => log.append([normalEntry(4, 2)])).to.throw(InvariantViolation, /expected 3/);
    expect(() => log.append([normalEntry(3, 1)])).to.throw(InvariantViolation, /below the previous term/);
  });

  it('truncation drops entries and their terms, and the log can grow again', () => {
    const log = termsLog([1, 1, 2, 2]);
    log.truncateFrom(i(3));
    expect(log.lastIndex).to.equal(2);
    expect(log.termAt(i(3))).to.equal(null);
    log.append([normalEntry(3, 3)]);
    expect(log.termAt(i(3))).to.equal(3);
    expect(log.entries(i(1), i(4))!.map((e) => e.term)).to.deep.equal([1, 1, 3]);
  });

  it('evicts only entries at or below the given (applied) index, and only beyond its cap', () => {
    const log = termsLog([1, 1, 1, 1, 1, 1, 1, 1]); // cap 5, 8 entries
    log.evict(i(2));
    expect(log.firstCachedIndex).to.equal(3);
    expect(log.entries(i(2), i(4))).to.equal(null);
    log.evict(i(8));
    expect(log.firstCachedIndex).to.equal(4);
    expect(log.entries(i(4), i(9))!.map((e) => e.index)).to.deep.equal([4, 5, 6, 7, 8]);
    // Terms outlive the cache.
    expect(log.termAt(i(1))).to.equal(1);
    // Beyond the end is not cached either.
    expect(log.entries(i(8), i(10))).to.equal(null);
    expect(() => log.truncateFrom(i(2))).to.throw(InvariantViolation);
  });

  it('a core keeps at most 10 000 entries cached once applied, and entries() reports evicted ones as null', () => {
    const core = follower(1, [1]);
    electLeader(core);
    for (let k = 0; k < 11; k++) core.propose(Array.from({ length: 1000 }, () => Uint8Array.of(k)));
    stepDurably(core);
    const last = core.status().lastLogIndex;
    stepDurably(core, { type: 'replicated', peer: n(2), leaderTerm: core.status().currentTerm, matchIndex: last });
    expect(core.entries(i(1), i(2)), 'not applied yet: still cached').to.not.equal(null);
    stepDurably(core, { type: 'applied', index: last });
    expect(core.entries(i(1), i(2))).to.equal(null);
    expect(core.entries(i(last - 9_999), i(last + 1))).to.have.length(10_000);
    expect(core.termAt(i(1))).to.equal(1);
  });
});

describe('LogDurability', () => {
  it('an ack makes its command durable; acks may cover earlier commands (group commit)', () => {
    const d = new LogDurability(i(0));
    d.issued(i(2), null);
    d.issued(i(5), null);
    expect(d.acked(i(5))).to.equal(true);
    expect(d.durableIndex).to.equal(5);
    expect(() => d.acked(i(2)), 'already retired').to.throw(InvariantViolation);
  });

  it('a truncation cuts the durable prefix, and caps acks of appends issued before it', () => {
    const d = new LogDurability(i(3));
    d.issued(i(6), null); // entries 4..6
    d.issued(i(5), i(5)); // a new leader replaces 5.. with its own entry 5
    expect(d.durableIndex).to.equal(3);
    d.acked(i(6));
    expect(d.durableIndex, '4 survived; 5 and 6 on disk are not ours').to.equal(4);
    d.acked(i(5));
    expect(d.durableIndex).to.equal(5);
  });

  it('an ack for an index no pending append ends at is refused loudly', () => {
    const d = new LogDurability(i(0));
    d.issued(i(3), null);
    expect(() => d.acked(i(4))).to.throw(InvariantViolation, /matches no pending appendLog/);
    expect(d.durableIndex).to.equal(0);
  });
});
