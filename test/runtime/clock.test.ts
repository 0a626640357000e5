import { expect } from 'chai';
import { RealClock, ScopedClock, VirtualClock } from '../../runtime/clock';

describe('runtime/clock', () => {
  describe('VirtualClock', () => {
    it('starts at 0 and fires due timers in deadline order, ties in creation order', () => {
      const clock = new VirtualClock();
      const fired: string[] = [];
      clock.setTimeout(() => fired.push('b@20'), 20);
      clock.setTimeout(() => fired.push('a@10'), 10);
      clock.setTimeout(() => fired.push('c@20'), 20);
      clock.setTimeout(() => fired.push('d@30'), 30);
      expect(clock.now()).to.equal(0);
      clock.advance(25);
      expect(fired).to.deep.equal(['a@10', 'b@20', 'c@20']);
      expect(clock.now()).to.equal(25);
      expect(clock.nextTimerAt()).to.equal(30);
      expect(clock.pendingTimers()).to.equal(1);
    });

    it('shows each timer its own deadline as now(), and fires timers set by timers within the same advance', () => {
      const clock = new VirtualClock();
      const seen: number[] = [];
      clock.setTimeout(() => {
        seen.push(clock.now());
        clock.setTimeout(() => seen.push(clock.now()), 5);
      }, 10);
      clock.advance(100);
      expect(seen).to.deep.equal([10, 15]);
      expect(clock.now()).to.equal(100);
      expect(clock.nextTimerAt()).to.equal(undefined);
    });

    it('never fires a cleared timer and does not count it as pending', () => {
      const clock = new VirtualClock();
      let fired = false;
      const id = clock.setTimeout(() => (fired = true), 10);
      clock.setTimeout(() => undefined, 50);
      clock.clearTimeout(id);
      expect(clock.pendingTimers()).to.equal(1);
      expect(clock.nextTimerAt()).to.equal(50);
      clock.advance(60);
      expect(fired).to.equal(false);
    });

    it('refuses to go backwards', () => {
      const clock = new VirtualClock();
      clock.advance(10);
      expect(() => clock.advanceTo(5)).to.throw(RangeError);
      expect(() => clock.advance(-1)).to.throw(RangeError);
    });

    it('keeps order across many timers (heap invariant)', () => {
      const clock = new VirtualClock();
      const fired: number[] = [];
      const delays = Array.from({ length: 200 }, (_, i) => (i * 7919) % 97);
      delays.forEach((d, i) => clock.setTimeout(() => fired.push(i), d));
      clock.advance(100);
      const expected = delays.map((d, i) => ({ d, i })).sort((x, y) => x.d - y.d || x.i - y.i).map((x) => x.i);
      expect(fired).to.deep.equal(expected);
    });
  });

  describe('RealClock', () => {
    it('is monotonic, fires timers, and tracks the ones still pending', async () => {
      const clock = new RealClock();
      const t0 = clock.now();
      const cleared = clock.setTimeout(() => expect.fail('cleared timer fired'), 1);
      clock.clearTimeout(cleared);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 2));
      expect(clock.now()).to.be.at.least(t0);
      expect(clock.pendingTimers()).to.equal(0);
    });
  });

  describe('ScopedClock', () => {
    it('clears every timer set through it on dispose, and ignores timers set afterwards', () => {
      const base = new VirtualClock();
      const scope = new ScopedClock(base);
      let fired = 0;
      scope.setTimeout(() => fired++, 10);
      scope.setTimeout(() => fired++, 20);
      base.setTimeout(() => fired += 100, 15); // not the scope's: survives
      expect(scope.pendingTimers()).to.equal(2);
      scope.dispose();
      expect(base.pendingTimers()).to.equal(1);
      scope.setTimeout(() => fired++, 1);
      base.advance(30);
      expect(fired).to.equal(100);
    });

    it('forgets timers once they fire, and hands callbacks to its run hook', () => {
      const base = new VirtualClock();
      const ran: string[] = [];
      const scope = new ScopedClock(base, { run: (fn) => { ran.push('hook'); fn(); } });
      scope.setTimeout(() => ran.push('cb'), 5);
      base.advance(5);
      expect(ran).to.deep.equal(['hook', 'cb']);
      expect(scope.pendingTimers()).to.equal(0);
    });
  });
});
