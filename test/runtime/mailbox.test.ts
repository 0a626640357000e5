import { expect } from 'chai';
import * as path from 'node:path';
import { type Actor, type ActorContext, DeferredReply, LOCAL, onArbiter } from '../../runtime/actor';
import { VirtualClock } from '../../runtime/clock';
import { ManualDispatcher } from '../../runtime/dispatcher';
import { ActorExistsError, ActorGoneError, AskTimeoutError, PlacementError } from '../../runtime/errors';
import { ActorSystem } from '../../runtime/system';
import { NotLeaderError } from './fixtures/fixture-errors';
import { tick, track } from './helpers';

const COUNTER = path.join(__dirname, 'fixtures', 'counter.ts');

/** A local actor from a receive function. */
const actor = (receive: (msg: any, ctx: ActorContext) => unknown, extra: Partial<Actor<any>> = {}) => ({
  factory: () => ({ receive, ...extra }),
});

describe('runtime/mailbox (local placement)', () => {
  let system: ActorSystem;
  afterEach(async () => {
    await system.shutdown();
  });

  it('delivers tells and asks from one sender in the order sent', async () => {
    system = ActorSystem.create({ seed: 1 });
    const got: number[] = [];
    const ref = await system.spawn<number>('order', actor((n: number) => (got.push(n), got.length)), LOCAL);
    for (let i = 0; i < 50; i++) ref.tell(i);
    const replies = await Promise.all([50, 51, 52].map((n) => ref.ask<number>(n)));
    expect(got).to.deep.equal(Array.from({ length: 53 }, (_, i) => i));
    expect(replies).to.deep.equal([51, 52, 53]);
  });

  it('is never re-entrant: a tell to self inside receive runs after receive returns, and not synchronously', async () => {
    system = ActorSystem.create({ seed: 1 });
    const log: string[] = [];
    const ref = await system.spawn<string>('reentry', actor((msg: string, ctx) => {
      log.push(`start ${msg}`);
      if (msg === 'first') ctx.self.tell('second');
      log.push(`end ${msg}`);
    }), LOCAL);
    ref.tell('first');
    expect(log).to.deep.equal([]); // delivery is asynchronous
    await ref.ask('sync'); // queued before 'second' existed, so it runs before it
    await ref.ask('last');
    expect(log).to.deep.equal(['start first', 'end first', 'start sync', 'end sync', 'start second', 'end second', 'start last', 'end last']);
  });

  it('handles one message at a time: an async receive holds the next message back', async () => {
    system = ActorSystem.create({ seed: 1 });
    let active = 0;
    let maxActive = 0;
    const log: string[] = [];
    const ref = await system.spawn<number>('serial', actor(async (n: number) => {
      active++;
      maxActive = Math.max(maxActive, active);
      log.push(`in ${n}`);
      for (let i = 0; i < 3; i++) await tick(); // really yields to the event loop
      log.push(`out ${n}`);
      active--;
      return n * 10;
    }), LOCAL);
    const replies = await Promise.all([1, 2, 3].map((n) => ref.ask<number>(n)));
    expect(replies).to.deep.equal([10, 20, 30]);
    expect(maxActive).to.equal(1);
    expect(log).to.deep.equal(['in 1', 'out 1', 'in 2', 'out 2', 'in 3', 'out 3']);
  });

  it('rejects the asker with an ErrorReply without crashing the actor', async () => {
    system = ActorSystem.create({ seed: 1 });
    const crashes: string[] = [];
    system.onCrash((id) => crashes.push(id));
    const ref = await system.spawn<any>('c', { module: COUNTER, export: 'createCounter', args: { start: 0 } }, LOCAL);
    const err = await ref.ask({ type: 'notLeader', leaderId: 'n2' }).then(() => null, (e) => e);
    expect(err).to.be.instanceOf(NotLeaderError).and.include({ leaderId: 'n2' });
    expect(await ref.ask({ type: 'inc', by: 1 })).to.equal(1);
    expect(crashes).to.deep.equal([]);
  });

  for (const kind of ['boom', 'boomAsync'] as const) {
    it(`crashes on a thrown error (${kind}): asker gets the error, queued asks get ActorGoneError, stopped runs, timers clear, listeners hear`, async () => {
      const clock = new VirtualClock();
      system = ActorSystem.create({ seed: 1, clock });
      const crashes: [string, Error][] = [];
      system.onCrash((id, e) => crashes.push([id, e]));
      let stopped = 0;
      const ref = await system.spawn<any>('crashy', actor((msg: any, ctx) => {
        if (msg === 'arm') return ctx.clock.setTimeout(() => expect.fail('timer of a crashed actor fired'), 10);
        if (msg === kind) return kind === 'boom' ? (() => { throw new Error('kaput'); })() : Promise.reject(new Error('kaput'));
        return 'ok';
      }, { stopped: () => void stopped++ }), LOCAL);
      await ref.ask('arm');
      expect(clock.pendingTimers()).to.equal(1);
      const first = ref.ask(kind);
      const queued = ref.ask('after');
      expect(await first.then(() => null, (e: Error) => e.message)).to.equal('kaput');
      expect(await queued.then(() => null, (e) => e)).to.be.instanceOf(ActorGoneError).and.include({ actorId: 'crashy' });
      expect(stopped).to.equal(1);
      expect(clock.pendingTimers()).to.equal(0);
      expect(crashes.map(([id, e]) => [id, e.message])).to.deep.equal([['crashy', 'kaput']]);
      expect(system.has('crashy')).to.equal(false);
      expect(await ref.ask('late').then(() => null, (e) => e)).to.be.instanceOf(ActorGoneError);
    });
  }

  it('treats ctx.crash(err) as a crash', async () => {
    system = ActorSystem.create({ seed: 1 });
    const crashes: string[] = [];
    system.onCrash((id, e) => crashes.push(`${id}:${e.message}`));
    const ref = await system.spawn<string>('self-crash', actor((_m, ctx) => ctx.crash(new Error('invariant'))), LOCAL);
    expect(await ref.ask('x').then(() => null, (e: Error) => e.message)).to.equal('invariant');
    expect(crashes).to.deep.equal(['self-crash:invariant']);
  });

  it('stop(): runs stopped, clears timers, rejects in-flight and queued asks with ActorGoneError, and is idempotent', async () => {
    const clock = new VirtualClock();
    system = ActorSystem.create({ seed: 1, clock });
    const crashes: string[] = [];
    system.onCrash((id) => crashes.push(id));
    let stopped = 0;
    const ref = await system.spawn<string>('stoppable', actor((msg: string, ctx) => {
      if (msg === 'hang') return new Promise(() => undefined); // never settles
      ctx.clock.setTimeout(() => undefined, 1000);
      return msg;
    }, { stopped: () => void stopped++ }), LOCAL);
    await ref.ask('arm');
    const inFlight = ref.ask('hang');
    const queued = ref.ask('queued');
    await tick();
    await system.stop('stoppable');
    await system.stop('stoppable');
    for (const p of [inFlight, queued]) {
      const e = await p.then(() => null, (err) => err);
      expect(e).to.be.instanceOf(ActorGoneError).and.include({ actorId: 'stoppable', reason: 'stopped' });
    }
    expect(stopped).to.equal(1);
    expect(clock.pendingTimers()).to.equal(0);
    expect(crashes).to.deep.equal([]); // a stop is not a crash
    ref.tell('dropped');
    expect((await system.stats()).main.deadLetters).to.equal(1);
  });

  it('rejects an ask with AskTimeoutError after the timeout, measured on the virtual clock', async () => {
    const clock = new VirtualClock();
    const dispatcher = new ManualDispatcher();
    system = ActorSystem.create({ seed: 1, clock, dispatcher });
    const ref = await system.spawn<string>('silent', actor(() => new DeferredReply()), LOCAL); // never answers
    const short = track(ref.ask('a', 500));
    const dflt = track(ref.ask('b'));
    await dispatcher.runUntilIdle();
    clock.advance(499);
    await tick();
    expect(short.state).to.equal('pending');
    clock.advance(1);
    await tick();
    expect(short.state).to.equal('rejected');
    expect(short.error).to.be.instanceOf(AskTimeoutError).and.include({ actorId: 'silent', timeoutMs: 500 });
    clock.advance(29_499);
    await tick();
    expect(dflt.state).to.equal('pending');
    clock.advance(1);
    await tick();
    expect(dflt.error).to.be.instanceOf(AskTimeoutError).and.include({ timeoutMs: 30_000 });
  });

  it('answers through a DeferredReply later without blocking the mailbox, and fails it with ActorGoneError on stop', async () => {
    system = ActorSystem.create({ seed: 1 });
    const waiting: DeferredReply<string>[] = [];
    const ref = await system.spawn<string>('deferring', actor((msg: string) => {
      if (msg === 'wait') {
        const d = new DeferredReply<string>();
        waiting.push(d);
        return d;
      }
      if (msg === 'release') waiting.shift()!.resolve('released');
      if (msg === 'refuse') waiting.shift()!.reject(new NotLeaderError(null));
      return msg;
    }), LOCAL);
    const a = ref.ask('wait');
    const b = ref.ask('wait');
    const c = ref.ask('wait');
    expect(await ref.ask('release')).to.equal('release'); // the mailbox moved on past the waits
    expect(await a).to.equal('released');
    await ref.ask('refuse');
    expect(await b.then(() => null, (e) => e)).to.be.instanceOf(NotLeaderError);
    await system.stop('deferring');
    expect(await c.then(() => null, (e) => e)).to.be.instanceOf(ActorGoneError);
  });

  it('runs timer callbacks in the actor turn, after an async receive in flight', async () => {
    const clock = new VirtualClock();
    const dispatcher = new ManualDispatcher();
    system = ActorSystem.create({ seed: 1, clock, dispatcher });
    const log: string[] = [];
    let release!: () => void;
    const ref = await system.spawn<string>('timed', actor((msg: string, ctx) => {
      if (msg === 'arm') ctx.clock.setTimeout(() => log.push('timer'), 10);
      if (msg === 'slow') return new Promise<void>((r) => (release = () => (log.push('slow done'), r())));
    }), LOCAL);
    ref.tell('arm');
    ref.tell('slow');
    await dispatcher.runUntilIdle();
    clock.advance(10);
    await dispatcher.runUntilIdle();
    expect(log).to.deep.equal([]);
    release();
    await dispatcher.runUntilIdle();
    expect(log).to.deep.equal(['slow done', 'timer']);
  });

  it('refuses duplicate ids, factories on workers, relative module paths, and unknown arbiters', async () => {
    system = ActorSystem.create({ seed: 1 });
    await system.spawn('dup', actor(() => 1), LOCAL);
    expect(await system.spawn('dup', actor(() => 1), LOCAL).catch((e) => e)).to.be.instanceOf(ActorExistsError);
    expect(await system.spawn('f', actor(() => 1), onArbiter('nowhere')).catch((e) => e)).to.be.instanceOf(PlacementError);
    expect(await system.spawn('r', { module: './counter', export: 'createCounter', args: {} }, LOCAL).catch((e) => e)).to.be.instanceOf(PlacementError);
    expect(await system.spawn('x', { module: COUNTER, export: 'nope', args: {} }, LOCAL).catch((e) => e)).to.be.instanceOf(PlacementError);
    expect(system.has('x')).to.equal(false);
  });

  it('fails the spawn (and frees the id) when started throws; queued asks get ActorGoneError', async () => {
    system = ActorSystem.create({ seed: 1 });
    let stopped = 0;
    let queuedAsk: Promise<unknown> | undefined;
    const spawning = system.spawn<string>('bad-start', actor((m) => m, {
      started: async (ctx) => {
        queuedAsk = ctx.self.ask('early');
        await tick();
        throw new Error('no disk');
      },
      stopped: () => void stopped++,
    }), LOCAL);
    expect(await spawning.then(() => null, (e: Error) => e.message)).to.equal('no disk');
    expect(await queuedAsk!.then(() => null, (e) => e)).to.be.instanceOf(ActorGoneError);
    expect(stopped).to.equal(1);
    const again = await system.spawn<string>('bad-start', actor((m) => m), LOCAL);
    expect(await again.ask('works')).to.equal('works');
  });

  it('delivers messages an actor sent itself during started, once started is done', async () => {
    system = ActorSystem.create({ seed: 1 });
    const log: string[] = [];
    const ref = await system.spawn<string>('starter', actor((m: string) => void log.push(m), {
      started: (ctx) => {
        ctx.self.tell('from started');
        log.push('started');
      },
    }), LOCAL);
    await ref.ask('after');
    expect(log).to.deep.equal(['started', 'from started', 'after']);
  });
});
