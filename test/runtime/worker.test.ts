import { expect } from 'chai';
import * as path from 'node:path';
import { type ActorRef, LOCAL, onArbiter, type Placement } from '../../runtime/actor';
import { RealClock } from '../../runtime/clock';
import { ActorCrashedError, ActorGoneError } from '../../runtime/errors';
import { ActorSystem } from '../../runtime/system';
import type { CounterMsg } from './fixtures/counter';
import { NotLeaderError } from './fixtures/fixture-errors';
import { resourceCount, waitFor } from './helpers';

const COUNTER = path.join(__dirname, 'fixtures', 'counter.ts');
const counter = (start = 0) => ({ module: COUNTER, export: 'createCounter', args: { start } });

describe('runtime/system (worker placement)', function () {
  this.timeout(60_000); // each worker thread loads ts-node before its first actor

  let system: ActorSystem;
  afterEach(async () => {
    await system?.shutdown();
  });

  /** One scripted conversation; its transcript must not depend on where the actor runs. */
  async function transcript(placement: Placement): Promise<unknown[]> {
    system = ActorSystem.create({ seed: 77 });
    if (placement.kind === 'worker') await system.startArbiter(placement.arbiter);
    const ref = await system.spawn<CounterMsg>('n1/counter', counter(5), placement);
    const out: unknown[] = [];
    out.push(await ref.ask({ type: 'inc', by: 2 }));
    out.push(await ref.ask({ type: 'roll', n: 5 }));
    out.push(await ref.ask({ type: 'notLeader', leaderId: 'n9' }).catch((e) => [e.constructor.name, e.leaderId, e instanceof NotLeaderError]));
    out.push(Array.from(await ref.ask<Uint8Array>({ type: 'echo', payload: new Uint8Array([1, 2, 255]) })));
    out.push(await ref.ask({ type: 'boom', message: 'bang' }).catch((e: Error) => e.message));
    out.push(await ref.ask({ type: 'get' }).catch((e) => [e.constructor.name, e.actorId]));
    await system.shutdown();
    return out;
  }

  it('runs the same actor module with identical results under local and worker placement', async () => {
    const local = await transcript(LOCAL);
    const worker = await transcript(onArbiter('w1'));
    expect(local).to.deep.equal([7, local[1], ['NotLeaderError', 'n9', true], [1, 2, 255], 'bang', ['ActorGoneError', 'n1/counter']]);
    expect(worker).to.deep.equal(local);
  });

  describe('with two arbiters', () => {
    let a: ActorRef<CounterMsg>;
    let b: ActorRef<CounterMsg>;
    beforeEach(async () => {
      system = ActorSystem.create({ seed: 3 });
      await Promise.all([system.startArbiter('w1'), system.startArbiter('w2')]);
      a = await system.spawn<CounterMsg>('a', counter(0), onArbiter('w1'));
      b = await system.spawn<CounterMsg>('b', counter(100), onArbiter('w2'));
    });

    it('tells and asks between arbiters directly, never through the main thread', async () => {
      const before = await system.stats();
      const reply = await a.ask<{ ok: boolean; value: unknown }>({ type: 'askOther', to: 'b', msg: { type: 'inc', by: 5 } });
      expect(reply).to.deep.equal({ ok: true, value: 105 });
      expect(await a.ask({ type: 'burst', to: 'b', n: 10 })).to.equal(10);
      expect(await a.ask({ type: 'askOther', to: 'b', msg: { type: 'seen' } })).to.deep.equal({ ok: true, value: [5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] });
      const after = await system.stats();
      const w1ToW2 = after.arbiters.w1.links.w2.envelopesSent - (before.arbiters.w1.links.w2?.envelopesSent ?? 0);
      expect(w1ToW2).to.equal(1 + 10 + 1); // ask, burst, ask
      // Main only talked to w1 (3 asks and their replies); nothing of a<->b went through it.
      expect(after.main.links.w2.envelopesReceived).to.equal(before.main.links.w2.envelopesReceived);
      expect(after.main.links.w2.envelopesSent).to.equal(before.main.links.w2.envelopesSent);
      expect(after.main.links.w1.envelopesSent - before.main.links.w1.envelopesSent).to.equal(3);
    });

    it('batches every envelope for one thread in one turn into a single postMessage', async () => {
      const before = await system.stats();
      for (let i = 1; i <= 100; i++) b.tell({ type: 'inc', by: 1 });
      await Promise.resolve(); // the batch leaves at the end of this turn
      const mid = await system.stats();
      expect(mid.main.links.w2.batchesSent - before.main.links.w2.batchesSent).to.equal(1);
      expect(mid.main.links.w2.envelopesSent - before.main.links.w2.envelopesSent).to.equal(100);
      expect(await b.ask({ type: 'get' })).to.equal(200);
      const after = await system.stats();
      expect(after.main.links.w2.batchesSent - before.main.links.w2.batchesSent).to.equal(2); // tells, then the ask
      expect(after.main.links.w2.envelopesSent - before.main.links.w2.envelopesSent).to.equal(101);
      expect(after.arbiters.w2.links.main.batchesReceived - before.arbiters.w2.links.main.batchesReceived).to.equal(2);
      // Across arbiters too: a burst of 50 tells from a to b leaves w1 as one batch.
      await a.ask({ type: 'burst', to: 'b', n: 50 });
      await b.ask({ type: 'get' });
      const last = await system.stats();
      expect(last.arbiters.w1.links.w2.batchesSent - after.arbiters.w1.links.w2.batchesSent).to.equal(1);
      expect(last.arbiters.w1.links.w2.envelopesSent - after.arbiters.w1.links.w2.envelopesSent).to.equal(50);
    });

    it('revives typed errors across threads: worker to main and worker to worker', async () => {
      const toMain = await b.ask({ type: 'notLeader', leaderId: 'n2' }).catch((e) => e);
      expect(toMain).to.be.instanceOf(NotLeaderError).and.include({ leaderId: 'n2', code: 'FixtureNotLeader' });
      const toWorker = await a.ask({ type: 'askOther', to: 'b', msg: { type: 'notLeader', leaderId: 'n3' } });
      expect(toWorker).to.deep.equal({ ok: false, name: 'NotLeaderError', ctor: 'NotLeaderError', typed: true, leaderId: 'n3' });
      const gone = await a.ask({ type: 'askOther', to: 'nobody', msg: { type: 'get' } });
      expect(gone).to.include({ ok: false, ctor: 'ActorGoneError' });
    });

    it('sends a ref across a thread as its id, which ctx.ref turns back into an address', async () => {
      const crossed = await b.ask({ type: 'echo', payload: system.ref('a') as unknown as Uint8Array });
      expect(crossed).to.deep.equal({ id: 'a' });
    });

    it('keeps Uint8Array payloads intact across threads', async () => {
      const payload = new Uint8Array(4096).map((_, i) => i % 251);
      const echoed = await b.ask<Uint8Array>({ type: 'echo', payload });
      expect(echoed).to.be.instanceOf(Uint8Array);
      expect(Buffer.from(echoed).equals(Buffer.from(payload))).to.equal(true);
    });

    it('fails only the ask whose message cannot be cloned; the rest of its batch arrives', async () => {
      const bad = b.ask({ type: 'inc', by: 1, fn: () => 1 } as unknown as CounterMsg);
      const good = b.ask({ type: 'inc', by: 1 });
      expect(await bad.then(() => null, (e: Error) => e.name)).to.equal('DataCloneError');
      expect(await good).to.equal(101);
    });

    it('reports a crash on a worker to crash listeners and fails the asks waiting on it', async () => {
      const crashes: [string, string][] = [];
      system.onCrash((id, e) => crashes.push([id, e.message]));
      expect(await b.ask({ type: 'boom', message: 'remote bang' }).catch((e: Error) => e.message)).to.equal('remote bang');
      await waitFor(() => crashes.length === 1, 'crash report');
      expect(crashes).to.deep.equal([['b', 'remote bang']]);
      expect(system.has('b')).to.equal(false);
      expect(await a.ask({ type: 'askOther', to: 'b', msg: { type: 'get' } })).to.include({ ok: false, ctor: 'ActorGoneError' });
    });

    it('reports every actor of a dead worker as crashed, and rejects asks pending on it', async () => {
      const b2 = await system.spawn<CounterMsg>('b2', counter(0), onArbiter('w2'));
      const crashes: [string, Error][] = [];
      system.onCrash((id, e) => crashes.push([id, e]));
      const pending = b2.ask({ type: 'sleep', ms: 60_000 }).then(() => null, (e) => e); // answered only if the thread lived on
      const fromPeer = a.ask<Record<string, unknown>>({ type: 'askOther', to: 'b2', msg: { type: 'sleep', ms: 60_000 } });
      await b.ask({ type: 'killThread' });
      await waitFor(() => crashes.length === 2, 'crash reports for both actors of w2');
      expect(crashes.map(([id]) => id).sort()).to.deep.equal(['b', 'b2']);
      for (const [, e] of crashes) expect(e).to.be.instanceOf(ActorCrashedError).and.have.property('cause');
      expect(await pending).to.be.instanceOf(ActorGoneError);
      expect(await fromPeer).to.include({ ok: false, ctor: 'ActorGoneError' });
      expect(system.hasArbiter('w2')).to.equal(false);
      expect((await system.stats()).workers).to.equal(1);
      expect(await a.ask({ type: 'inc', by: 1 })).to.equal(1); // the other arbiter is untouched
    });

    it('stopArbiter stops its actors and thread; the rest keeps working', async () => {
      await system.stopArbiter('w2');
      expect(system.has('b')).to.equal(false);
      expect(await a.ask({ type: 'askOther', to: 'b', msg: { type: 'get' } })).to.include({ ok: false, ctor: 'ActorGoneError' });
      const stats = await system.stats();
      expect(stats.workers).to.equal(1);
      expect(Object.keys(stats.arbiters)).to.deep.equal(['w1']);
    });
  });

  it('links an arbiter started later to the earlier ones, with routes to actors spawned before it', async () => {
    system = ActorSystem.create({ seed: 5 });
    await system.startArbiter('early');
    await system.spawn('local', { factory: () => ({ receive: () => 'from main' }) }, LOCAL);
    await system.spawn('e', counter(1), onArbiter('early'));
    await system.startArbiter('late');
    const l = await system.spawn<CounterMsg>('l', counter(0), onArbiter('late'));
    expect(await l.ask({ type: 'askOther', to: 'e', msg: { type: 'get' } })).to.deep.equal({ ok: true, value: 1 });
    expect(await l.ask({ type: 'askOther', to: 'local', msg: 'hi' })).to.deep.equal({ ok: true, value: 'from main' });
  });

  it('shutdown leaves no worker thread, port or timer behind', async () => {
    const portsBefore = resourceCount('MessagePort');
    const clock = new RealClock();
    system = ActorSystem.create({ seed: 9, clock });
    await Promise.all([system.startArbiter('s1'), system.startArbiter('s2')]);
    const x = await system.spawn<CounterMsg>('x', counter(0), onArbiter('s1'));
    const y = await system.spawn<CounterMsg>('y', counter(0), onArbiter('s2'));
    await system.spawn('z', counter(0), LOCAL);
    expect(resourceCount('MessagePort')).to.be.greaterThan(portsBefore);
    const outstanding = [x, y].map((r) => r.ask({ type: 'sleep', ms: 60_000 }).then(() => null, (e) => e));
    await system.shutdown();
    for (const p of outstanding) expect(await p).to.be.instanceOf(ActorGoneError);
    const stats = await system.stats();
    expect(stats).to.include({ actors: 0, workers: 0 });
    expect(clock.pendingTimers()).to.equal(0);
    await waitFor(() => resourceCount('MessagePort') === portsBefore, 'every port closed');
    expect(await system.spawn('late', counter(0), LOCAL).catch((e) => e)).to.be.instanceOf(ActorGoneError);
  });
});
