/**
 * The crash tests' checks must catch what they claim to: each is fed a hand-made history with one
 * fault (an id applied twice, an acknowledged id missing or at another index, a refused id applied,
 * diverging sequences, an acknowledged entry durable on one node only, Log Matching broken, a
 * durable term below the log's) and must refuse it, and must accept the clean history.
 */
import { expect } from 'chai';
import type { Entry, HardState } from '../../actors/raft/core/types';
import { checkApplied, checkDurable, type Outcomes } from './harness/checks';
import { encodeId, type AppliedList } from './harness/applied-list';
import type { Ack } from './harness/load';
import type { DurableLog } from './harness/durable';

const ack = (index: number): Ack => ({ index, term: 1, node: 1 });

function outcomes(): Outcomes {
  return {
    acked: new Map([['a', ack(2)], ['b', ack(3)]]),
    refused: new Set(['r']),
    unknown: new Map([['u', 'NodeDiedError']]),
  } as Outcomes;
}

const list = (pairs: [string, number][], lastApplied = 4): AppliedList => ({ ids: pairs.map((p) => p[0]), indexes: pairs.map((p) => p[1]), lastApplied });
const same = (l: AppliedList) => new Map([[1, l], [2, l], [3, l]]);

const normal = (index: number, id: string, term = 1): Entry => ({ index, term, kind: 'normal', payload: encodeId(id) } as Entry);
const blank = (index: number, term = 1): Entry => ({ index, term, kind: 'blank' } as Entry);
const hs = (t = 1): HardState => ({ currentTerm: t, votedFor: null } as HardState);
const durable = (entries: Entry[], term = 1): DurableLog => ({ hardState: hs(term), entries, tornBytes: 0 });
const good = () => [blank(1), normal(2, 'a'), normal(3, 'b'), normal(4, 'u')];

describe('crash: the checks refuse faulty histories', () => {
  it('accept a clean history (the unknown write applied once counts as applied)', () => {
    expect(checkApplied(outcomes(), same(list([['a', 2], ['b', 3], ['u', 4]])))).to.deep.equal({ applied: 3, unknownApplied: 1 });
    expect(checkDurable(outcomes().acked, new Map([[1, durable(good())], [2, durable(good())], [3, durable([blank(1), normal(2, 'a')])]]), 2)).to.deep.equal({ 2: 1, 3: 1 });
  });

  it('refuse an id applied twice, a missing or moved acknowledged id, a refused id applied, and an id nobody wrote', () => {
    expect(() => checkApplied(outcomes(), same(list([['a', 2], ['b', 3], ['a', 4]])))).to.throw(/more than once/);
    expect(() => checkApplied(outcomes(), same(list([['a', 2], ['u', 4]])))).to.throw(/lacks 1 of 2 acknowledged/);
    expect(() => checkApplied(outcomes(), same(list([['b', 2], ['a', 3]])))).to.throw(/another index/);
    expect(() => checkApplied(outcomes(), same(list([['a', 2], ['b', 3], ['r', 4]])))).to.throw(/refused/);
    expect(() => checkApplied(outcomes(), same(list([['a', 2], ['b', 3], ['x', 4]])))).to.throw(/no client has an outcome/);
  });

  it('refuse sequences that differ between nodes', () => {
    const l = list([['a', 2], ['b', 3], ['u', 4]]);
    expect(() => checkApplied(outcomes(), new Map([[1, l], [2, l], [3, list([['a', 2], ['b', 3]], 3)]]))).to.throw(/node 3 applied 2 ids up to index 3/);
    expect(() => checkApplied(outcomes(), new Map([[1, l], [2, list([['a', 2], ['b', 3], ['u', 5]], 4)]]))).to.throw(/differ at position 2/);
  });

  it('refuse an acknowledged write durable on fewer than a majority, broken Log Matching, gaps and a term below the log', () => {
    const acked = outcomes().acked;
    expect(() => checkDurable(acked, new Map([[1, durable(good())], [2, durable([blank(1), normal(2, 'a')])], [3, durable([blank(1)])]]), 2))
      .to.throw(/1 acknowledged writes are durable on fewer than 2 nodes, e.g. b@3/);
    expect(() => checkDurable(acked, new Map([[1, durable(good())], [2, durable([blank(1), normal(2, 'a'), normal(3, 'z')])]]), 1)).to.throw(/Log Matching broken at index 3/);
    expect(() => checkDurable(acked, new Map([[1, durable([blank(1), normal(3, 'b')])]]), 1)).to.throw(/jumps from index 1 to 3/);
    expect(() => checkDurable(acked, new Map([[1, durable([blank(1), normal(2, 'a'), normal(3, 'a')])]]), 1)).to.throw(/holds a twice/);
    expect(() => checkDurable(acked, new Map([[1, durable([blank(1, 2), normal(2, 'a', 2), normal(3, 'b', 2)], 1)]]), 1)).to.throw(/durable term 1 is below/);
  });
});
