import { expect } from 'chai';
import * as path from 'node:path';
import { type ActorContext, LOCAL, onArbiter } from '../../runtime/actor';
import { VirtualClock } from '../../runtime/clock';
import { ActorCrashedError } from '../../runtime/errors';
import { Supervisor } from '../../runtime/supervisor';
import { ActorSystem } from '../../runtime/system';
import type { CounterMsg } from './fixtures/counter';
import { tick, waitFor } from './helpers';

const COUNTER = path.join(__dirname, 'fixtures', 'counter.ts');

/** A local actor that crashes on 'boom', answers anything else with its incarnation, and logs its stop. */
function flaky(name: string, log: string[], incarnations = { n: 0 }) {
  return {
    factory: (_ctx: ActorContext) => {
      const incarnation = ++incarnations.n;
      return {
        receive: (msg: string) => {
          if (msg === 'boom') throw new Error(`${name} broke`);
          return incarnation;
        },
        stopped: () => void log.push(name),
      };
    },
  };
}

const nextFailure = (sup: Supervisor) => new Promise<Error>((resolve) => sup.once('failed', resolve));

describe('runtime/supervisor', () => {
  let system: ActorSystem;
  afterEach(async () => {
    await system.shutdown();
  });

  it('restarts a crashed actor under the same id after exponential backoff, capped, then gives up after maxRestarts', async () => {
    const clock = new VirtualClock();
    system = ActorSystem.create({ clock, seed: 1 });
    const sup = new Supervisor(system, { name: 'n1' });
    const restarted: number[] = [];
    sup.on('restarted', (_id, attempt) => restarted.push(attempt));
    const ref = await sup.spawn<string>('n1/stream', flaky('stream', []), LOCAL, { kind: 'restart', backoffMs: { initial: 100, max: 300 }, maxRestarts: 3 });
    expect(await ref.ask('who')).to.equal(1);
    for (const [i, delayMs] of [100, 200, 300].entries()) {
      expect(await ref.ask('boom').catch((e: Error) => e.message)).to.equal('stream broke');
      await waitFor(() => clock.nextTimerAt() !== undefined, 'the restart timer');
      expect(clock.nextTimerAt()).to.equal(clock.now() + delayMs);
      clock.advance(delayMs - 1);
      await tick();
      expect(system.has('n1/stream')).to.equal(false);
      clock.advance(1);
      await waitFor(() => system.has('n1/stream'), 'the restart');
      expect(await ref.ask('who')).to.equal(i + 2); // a fresh incarnation behind the same id
    }
    expect(restarted).to.deep.equal([1, 2, 3]);
    expect(sup.restartCount('n1/stream')).to.equal(3);
    const failed = nextFailure(sup);
    await ref.ask('boom').catch(() => undefined);
    const cause = await failed;
    expect(cause).to.be.instanceOf(ActorCrashedError).and.include({ actorId: 'n1/stream' });
    expect((cause.cause as Error).message).to.equal('stream broke');
    expect(sup.state).to.equal('failed');
    expect(clock.pendingTimers()).to.equal(0);
  });

  it('forgives old crashes: after healthyResetMs of running, the restart count starts again', async () => {
    const clock = new VirtualClock();
    system = ActorSystem.create({ clock, seed: 1 });
    const sup = new Supervisor(system, { name: 'n5' });
    let failed = false;
    sup.on('failed', () => { failed = true; });
    const policy = { kind: 'restart', backoffMs: { initial: 10, max: 10 }, maxRestarts: 1, healthyResetMs: 1000 } as const;
    const ref = await sup.spawn<string>('n5/s', flaky('s', []), LOCAL, policy);
    // Three crashes, each after a healthy second: with maxRestarts 1 the second would fail the node without the reset.
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      await ref.ask('boom').catch(() => undefined);
      await waitFor(() => clock.nextTimerAt() !== undefined, 'the restart timer');
      clock.advance(10);
      await waitFor(() => system.has('n5/s'), 'the restart');
    }
    expect(failed).to.equal(false);
    expect(sup.restartCount('n5/s')).to.equal(1);
    // Two crashes in quick succession still give up.
    const gaveUp = nextFailure(sup);
    await ref.ask('boom').catch(() => undefined);
    expect(await gaveUp).to.be.instanceOf(ActorCrashedError);
  });

  it('fails the node on a fail-node crash: every actor stops, newest first, then "failed" is emitted', async () => {
    system = ActorSystem.create({ seed: 1 });
    const sup = new Supervisor(system, { name: 'n2' });
    const log: string[] = [];
    const restart = { kind: 'restart', backoffMs: { initial: 10, max: 10 }, maxRestarts: 5 } as const;
    await sup.spawn('n2/a', flaky('a', log), LOCAL, restart);
    const storage = await sup.spawn<string>('n2/storage', flaky('storage', log), LOCAL, { kind: 'fail-node' });
    await sup.spawn('n2/c', flaky('c', log), LOCAL, restart);
    await sup.spawn('n2/d', flaky('d', log), LOCAL, restart);
    const failed = nextFailure(sup);
    storage.tell('boom');
    const cause = await failed;
    expect(cause.message).to.equal('storage broke');
    expect(log).to.deep.equal(['storage', 'd', 'c', 'a']); // the crashed one ends first, then newest to oldest
    expect(sup.state).to.equal('failed');
    expect(system.actorIds()).to.deep.equal([]);
    await sup.stop(); // a no-op on a failed node
    expect(sup.state).to.equal('failed');
  });

  it('stop() stops the actors newest first, then the arbiters it owns; nothing restarts afterwards', async () => {
    const clock = new VirtualClock();
    system = ActorSystem.create({ clock, seed: 1 });
    const sup = new Supervisor(system, { name: 'n3' });
    const log: string[] = [];
    await sup.startArbiter('n3-w');
    await sup.spawn('n3/first', flaky('first', log), LOCAL, { kind: 'fail-node' });
    const remote = await sup.spawn<CounterMsg>('n3/remote', { module: COUNTER, export: 'createCounter', args: { start: 1 } }, onArbiter('n3-w'), { kind: 'fail-node' });
    const retried = await sup.spawn<string>('n3/retried', flaky('retried', log), LOCAL, { kind: 'restart', backoffMs: { initial: 1000, max: 1000 }, maxRestarts: 5 });
    await sup.spawn('n3/last', flaky('last', log), LOCAL, { kind: 'fail-node' });
    expect(await remote.ask({ type: 'get' })).to.equal(1);
    await retried.ask('boom').catch(() => undefined);
    await waitFor(() => clock.pendingTimers() === 1, 'the pending restart');
    await sup.stop();
    expect(sup.state).to.equal('stopped');
    expect(log).to.deep.equal(['retried', 'last', 'first']);
    expect(system.has('n3/remote')).to.equal(false);
    expect(system.hasArbiter('n3-w')).to.equal(false);
    expect(clock.pendingTimers()).to.equal(0);
    clock.advance(5000);
    await tick();
    expect(system.actorIds()).to.deep.equal([]);
    expect((await system.stats()).workers).to.equal(0);
  });

  it('stopActor stops one child for good', async () => {
    system = ActorSystem.create({ seed: 1 });
    const sup = new Supervisor(system, { name: 'n4' });
    const log: string[] = [];
    await sup.spawn('n4/x', flaky('x', log), LOCAL, { kind: 'restart', backoffMs: { initial: 1, max: 1 }, maxRestarts: 1 });
    await sup.stopActor('n4/x');
    expect(log).to.deep.equal(['x']);
    expect(sup.childIds()).to.deep.equal([]);
    expect(sup.state).to.equal('running');
    await sup.stop();
  });

  it('restarts the owned arbiter when its thread dies, then the actors on it', async function () {
    this.timeout(60_000);
    system = ActorSystem.create({ seed: 1 });
    const sup = new Supervisor(system, { name: 'n5' });
    await sup.startArbiter('n5-w');
    const policy = { kind: 'restart', backoffMs: { initial: 5, max: 50 }, maxRestarts: 3 } as const;
    const ref = await sup.spawn<CounterMsg>('n5/net', { module: COUNTER, export: 'createCounter', args: { start: 0 } }, onArbiter('n5-w'), policy);
    expect(await ref.ask({ type: 'inc', by: 4 })).to.equal(4);
    const restarted = new Promise<string>((resolve) => sup.once('restarted', resolve));
    await ref.ask({ type: 'killThread' });
    expect(await restarted).to.equal('n5/net');
    expect(system.hasArbiter('n5-w')).to.equal(true);
    expect(await ref.ask({ type: 'get' })).to.equal(0); // fresh state on a fresh thread
    await sup.stop();
    expect((await system.stats()).workers).to.equal(0);
  });
});
