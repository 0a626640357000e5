import { expect } from 'chai';
import { SeededRandom } from '../../runtime/random';

const draw = (r: SeededRandom, n: number): number[] => Array.from({ length: n }, () => r.nextUint32());

describe('runtime/random', () => {
  it('replays the same stream for the same seed and differs for another seed', () => {
    expect(draw(new SeededRandom(42), 20)).to.deep.equal(draw(new SeededRandom(42), 20));
    expect(draw(new SeededRandom(42), 20)).to.not.deep.equal(draw(new SeededRandom(43), 20));
  });

  it('gives a usable stream for seed 0 and for large or fractional seeds', () => {
    const zero = draw(new SeededRandom(0), 8);
    expect(new Set(zero).size).to.equal(8);
    expect(draw(new SeededRandom(2 ** 40 + 1), 4)).to.not.deep.equal(draw(new SeededRandom(1), 4));
    expect(draw(new SeededRandom(1.5), 4)).to.not.deep.equal(draw(new SeededRandom(1), 4));
  });

  it('keeps nextFloat in [0, 1) and nextInt in [min, max), roughly uniform', () => {
    const r = new SeededRandom(7);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const f = r.nextFloat();
      expect(f).to.be.at.least(0).and.below(1);
      const n = r.nextInt(150, 160);
      expect(n).to.be.at.least(150).and.below(160);
      buckets[n - 150]++;
    }
    for (const b of buckets) expect(b).to.be.within(800, 1200);
    expect(() => r.nextInt(5, 5)).to.throw(RangeError);
  });

  it('forks by label: deterministic, independent of draws made before, distinct per label and order', () => {
    const a = new SeededRandom(9);
    const forkedFresh = draw(a.fork('n1/raft'), 5);
    draw(a, 100);
    expect(draw(a.fork('n1/raft'), 5)).to.deep.equal(forkedFresh);
    expect(draw(a.fork('n2/raft'), 5)).to.not.deep.equal(forkedFresh);
    expect(draw(a.fork('x').fork('y'), 5)).to.not.deep.equal(draw(a.fork('y').fork('x'), 5));
  });
});
