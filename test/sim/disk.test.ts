/**
 * The simulated disk (sim/disk.ts) and the storage actor on it (sim/sim-storage.ts): what survives
 * a power loss, group commit on the virtual clock, recovery (torn tail cut, damage refused), and the
 * generation fence that keeps a dead process off the disk. SimStorageActor also runs the shared
 * RaftStorage conformance suite.
 */
import { expect } from 'chai';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, HardState, LogIndex, NodeId, Term } from '../../actors/raft/core/types';
import type { ActorContext, ActorRef } from '../../runtime/actor';
import { VirtualClock } from '../../runtime/clock';
import { ManualDispatcher } from '../../runtime/dispatcher';
import { ActorGoneError } from '../../runtime/errors';
import { createLogger } from '../../runtime/logging';
import { SeededRandom } from '../../runtime/random';
import { ActorSystem } from '../../runtime/system';
import { DEFAULT_DISK, type DiskOptions, SimDisk } from '../../sim/disk';
import { DurableView, NodeDisk, SimStorageActor } from '../../sim/sim-storage';
import { CorruptLogError, encodeRecord, type LogRecord, replayRecords } from '../../storage/record-log';
import type { StorageMsg, StoredState } from '../../storage/storage';
import { storageConformanceSuite, type StorageUnderTest } from '../storage/conformance';
import { track } from '../runtime/helpers';

const ix = (n: number): LogIndex => n as LogIndex;
const tm = (n: number): Term => n as Term;
const id = (n: number): NodeId => n as NodeId;
const silent = createLogger({ level: 'silent' });

const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);
const filled = (n: number, start: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const disk = (seed: number, options: Partial<DiskOptions> = {}): SimDisk =>
  new SimDisk('n1/raft.log', new SeededRandom(seed), { ...DEFAULT_DISK, ...options });

function entry(i: number, term = 1): Entry {
  if (i % 5 === 0) return { kind: 'blank', index: ix(i), term: tm(term) };
  if (i % 7 === 0) return { kind: 'config', index: ix(i), term: tm(term), membership: { members: [id(1), id(2), id(3)], nonVoters: [], membersAfterConsensus: null } };
  return { kind: 'normal', index: ix(i), term: tm(term), payload: filled(i % 11, i) };
}
const entries = (from: number, to: number, term = 1): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, term));
const hs = (term: number, vote: number | null): HardState => ({ currentTerm: tm(term), votedFor: vote === null ? null : id(vote) });

describe('sim/disk: SimDisk', () => {
  it('synced bytes survive a crash, unsynced ones are dropped when tornWriteProbability is 0', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const d = disk(seed, { tornWriteProbability: 0 });
      d.write(bytes(1, 2, 3));
      d.write(bytes(4));
      d.sync();
      d.write(filled(10, 50));
      d.write(filled(7, 90));
      expect(d.size).to.equal(4 + 17);
      expect(d.hasUnsynced()).to.equal(true);
      const effect = d.crash();
      expect(effect).to.deep.equal({ droppedBytes: 17, tornBytes: 0 });
      expect(d.durableBytes()).to.deep.equal(bytes(1, 2, 3, 4));
      expect(d.size).to.equal(4);
      expect(d.hasUnsynced()).to.equal(false);
    }
  });

  it('with tornWriteProbability 1 a crash keeps a strict prefix of the unsynced bytes, and torn + dropped = unsynced', () => {
    const synced = filled(5, 200);
    const unsynced = [filled(9, 0), filled(1, 100), filled(30, 10)];
    const all = cat(...unsynced);
    const tornSizes = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const d = disk(seed, { tornWriteProbability: 1 });
      d.write(synced);
      d.sync();
      for (const u of unsynced) d.write(u);
      const { droppedBytes, tornBytes } = d.crash();
      expect(tornBytes + droppedBytes, `seed ${seed}`).to.equal(all.byteLength);
      expect(tornBytes, `seed ${seed}: a torn write never keeps all of it`).to.be.within(0, all.byteLength - 1);
      expect(d.durableBytes(), `seed ${seed}`).to.deep.equal(cat(synced, all.subarray(0, tornBytes)));
      expect(d.size).to.equal(synced.byteLength + tornBytes);
      tornSizes.add(tornBytes);
    }
    expect(tornSizes.size, 'the cut point varies with the seed').to.be.greaterThan(20);
    expect([...tornSizes].some((t) => t > 10), 'cuts land beyond the first write too').to.equal(true);
  });

  it('a crash with nothing unsynced changes nothing and reports nothing lost', () => {
    const d = disk(3, { tornWriteProbability: 1 });
    d.write(bytes(9, 8, 7));
    d.sync();
    expect(d.crash()).to.deep.equal({ droppedBytes: 0, tornBytes: 0 });
    expect(d.durableBytes()).to.deep.equal(bytes(9, 8, 7));
  });

  it('the same seed tears the same way', () => {
    const run = (seed: number) => {
      const d = disk(seed, { tornWriteProbability: 0.5 });
      const out: number[] = [];
      for (let i = 0; i < 30; i++) { d.write(filled(20, i)); out.push(d.crash().tornBytes); }
      return out;
    };
    expect(run(77)).to.deep.equal(run(77));
    expect(run(77)).to.not.deep.equal(run(78));
  });

  it('every crash bumps the generation', () => {
    const d = disk(1);
    expect(d.generation).to.equal(0);
    d.crash();
    expect(d.generation).to.equal(1);
    d.write(bytes(1));
    d.sync();
    expect(d.generation, 'a sync is not a crash').to.equal(1);
    d.crash();
    expect(d.generation).to.equal(2);
  });

  it('counts bytes written and syncs', () => {
    const d = disk(1);
    d.write(bytes(1, 2));
    d.write(bytes(3));
    d.sync();
    d.sync();
    d.write(bytes(4));
    d.crash();
    expect(d.bytesWritten).to.equal(4);
    expect(d.syncs).to.equal(2);
  });

  it('syncLatencyMs lies in [syncMinMs, syncMinMs + syncJitterMs), times slowFactor', () => {
    const d = disk(5, { syncMinMs: 2, syncJitterMs: 3 });
    const draws: number[] = [];
    for (let i = 0; i < 500; i++) draws.push(d.syncLatencyMs());
    for (const x of draws) expect(x).to.be.at.least(2).and.below(5);
    expect(Math.min(...draws)).to.be.below(2.1);
    expect(Math.max(...draws)).to.be.above(4.9);
    d.slowFactor = 10;
    for (let i = 0; i < 500; i++) expect(d.syncLatencyMs()).to.be.at.least(20).and.below(50);
    d.slowFactor = 1;
    expect(d.syncLatencyMs()).to.be.below(5);
  });

  it('syncLatencyMs with no jitter is exactly syncMinMs (times slowFactor)', () => {
    const d = disk(5, { syncMinMs: 3, syncJitterMs: 0 });
    expect(d.syncLatencyMs()).to.equal(3);
    d.slowFactor = 4;
    expect(d.syncLatencyMs()).to.equal(12);
    expect(disk(5, { syncMinMs: 0, syncJitterMs: 0 }).syncLatencyMs()).to.equal(0);
  });

  it('syncLatencyMs draws from the disk\'s seeded stream', () => {
    const draws = (seed: number) => { const d = disk(seed); return Array.from({ length: 10 }, () => d.syncLatencyMs()); };
    expect(draws(11)).to.deep.equal(draws(11));
    expect(draws(11)).to.not.deep.equal(draws(12));
  });

  it('corrupt(offset) flips exactly that byte of the durable file', () => {
    const d = disk(1);
    d.write(bytes(0x00, 0x0f, 0xf0));
    d.write(bytes(0xaa));
    d.sync();
    d.corrupt(1);
    expect(d.durableBytes()).to.deep.equal(bytes(0x00, 0xf0, 0xf0, 0xaa));
    d.corrupt(3);
    expect(d.durableBytes()).to.deep.equal(bytes(0x00, 0xf0, 0xf0, 0x55));
  });

  it('corrupt rejects offsets outside the durable file, unsynced bytes included', () => {
    const d = disk(1);
    d.write(bytes(1, 2, 3));
    d.sync();
    d.write(bytes(4, 5));
    for (const bad of [-1, 3, 4, 100, NaN, Infinity]) {
      expect(() => d.corrupt(bad), `offset ${bad}`).to.throw(RangeError, /n1\/raft\.log: offset .* outside 0\.\.2/);
    }
    expect(d.durableBytes()).to.deep.equal(bytes(1, 2, 3));
    expect(() => disk(1).corrupt(0), 'an empty file has no byte to flip').to.throw(RangeError);
  });

  it('corrupt refuses a fractional offset (it would flip nothing)', () => {
    // `all[1.5] ^= 0xff` on a Uint8Array is a silent no-op, so such an offset must be refused.
    const d = disk(1);
    d.write(bytes(1, 2, 3));
    d.sync();
    let threw = false;
    try { d.corrupt(1.5); } catch { threw = true; }
    const changed = !Buffer.from(d.durableBytes()).equals(Buffer.from(bytes(1, 2, 3)));
    expect(threw || changed, 'corrupt(1.5) must either refuse the offset or flip a byte; it did neither').to.equal(true);
  });

  it('rewrite refuses while writes are pending, and replaces the durable content otherwise', () => {
    const d = disk(1);
    d.write(bytes(1, 2, 3, 4));
    d.sync();
    d.write(bytes(5));
    expect(() => d.rewrite(bytes(1, 2))).to.throw(/n1\/raft\.log: rewrite with unsynced writes pending/);
    expect(d.size).to.equal(5);
    d.sync();
    d.rewrite(bytes(1, 2));
    expect(d.size).to.equal(2);
    expect(d.durableBytes()).to.deep.equal(bytes(1, 2));
    d.write(bytes(9));
    d.sync();
    expect(d.durableBytes(), 'writes continue after the rewritten content').to.deep.equal(bytes(1, 2, 9));
  });
});

describe('sim/sim-storage: DurableView', () => {
  it('applies hardState, append and truncate records, and answers termAt only inside the log', () => {
    const v = new DurableView();
    expect(v.lastIndex).to.equal(0);
    expect(v.hardState).to.deep.equal(hs(0, null));
    v.apply({ type: 'hardState', hardState: hs(3, 2) });
    v.apply({ type: 'append', entries: encodeEntries(entries(1, 4, 1)) });
    v.apply({ type: 'append', entries: encodeEntries(entries(5, 6, 3)) });
    expect(v.hardState).to.deep.equal(hs(3, 2));
    expect(v.lastIndex).to.equal(6);
    expect([0, 1, 4, 5, 6, 7].map((i) => v.termAt(i))).to.deep.equal([null, 1, 1, 3, 3, null]);
    v.apply({ type: 'truncate', from: ix(5) });
    expect(v.lastIndex).to.equal(4);
    expect(v.termAt(5)).to.equal(null);
    v.apply({ type: 'truncate', from: ix(10) });
    expect(v.lastIndex, 'a truncation past the end changes nothing').to.equal(4);
    // Decoded entries given alongside the record are used as they are.
    v.apply({ type: 'append', entries: new Uint8Array(0) }, entries(5, 5, 4));
    expect(v.termAt(5)).to.equal(4);
  });

  it('rebuild starts from nothing and replays the records', () => {
    const v = new DurableView();
    v.apply({ type: 'append', entries: encodeEntries(entries(1, 9)) });
    v.rebuild([{ type: 'hardState', hardState: hs(2, null) }, { type: 'append', entries: encodeEntries(entries(1, 2, 2)) }]);
    expect(v.lastIndex).to.equal(2);
    expect(v.termAt(2)).to.equal(2);
    expect(v.hardState).to.deep.equal(hs(2, null));
    v.rebuild([]);
    expect(v.lastIndex).to.equal(0);
    expect(v.hardState).to.deep.equal(hs(0, null));
  });
});

/** A StorageMsg write whose answer we want to watch without awaiting. */
type Tracked = ReturnType<typeof track>;

describe('sim/sim-storage: SimStorageActor in an ActorSystem on virtual time', () => {
  const OPTIONS: DiskOptions = { syncMinMs: 2, syncJitterMs: 3, tornWriteProbability: 0 };
  let clock: VirtualClock;
  let dispatcher: ManualDispatcher;
  let system: ActorSystem;

  beforeEach(() => {
    clock = new VirtualClock();
    dispatcher = new ManualDispatcher();
    system = ActorSystem.create({ clock, dispatcher, seed: 9, logger: silent });
  });
  afterEach(async () => {
    await system.shutdown();
  });

  const newNodeDisk = (seed: number, options: Partial<DiskOptions> = {}): NodeDisk =>
    new NodeDisk(new SimDisk('n1/raft.log', new SeededRandom(seed), { ...OPTIONS, ...options }));
  const spawn = (nodeDisk: NodeDisk, actorId = 'n1/storage', onLogWrite?: (f: LogIndex | null, e: readonly Entry[]) => void): Promise<ActorRef<StorageMsg>> =>
    system.spawn<StorageMsg>(actorId, { factory: () => new SimStorageActor({ nodeDisk, onLogWrite }) });
  /** Sends an ask and watches it without awaiting (an ask left hanging fails at shutdown, unobserved). */
  const send = (ref: ActorRef<StorageMsg>, msg: StorageMsg): Tracked => track(ref.ask(msg));
  const run = async () => { await dispatcher.runUntilIdle(); };
  /** Moves virtual time to the next timer (the sync) and lets the actor handle it. */
  const fireNextTimer = async () => { clock.advanceTo(clock.nextTimerAt()!); await run(); };
  const state = async (ref: ActorRef<StorageMsg>): Promise<{ hardState: HardState; log: Entry[] }> => {
    const p = ref.ask<StoredState>({ type: 'getInitialState' });
    await run();
    const st = await p;
    return { hardState: st.hardState, log: decodeEntries(st.entries) };
  };
  /** Writes and waits until durable. */
  const durably = async (ref: ActorRef<StorageMsg>, ...msgs: StorageMsg[]): Promise<unknown[]> => {
    const ts = msgs.map((m) => send(ref, m));
    await run();
    await fireNextTimer();
    for (const t of ts) expect(t.state, 'write answered after its sync').to.equal('resolved');
    return ts.map((t) => t.value);
  };
  const appendMsg = (es: Entry[]): StorageMsg => ({ type: 'appendEntries', entries: encodeEntries(es) });

  it('answers saveHardState, appendEntries, replicateEntries and truncate only after the sync timer fires, all on one sync', async () => {
    const nodeDisk = newNodeDisk(1);
    const { disk } = nodeDisk;
    const ref = await spawn(nodeDisk);
    const writes = [
      send(ref, { type: 'saveHardState', hardState: hs(2, 1) }),
      send(ref, appendMsg(entries(1, 3))),
      send(ref, { type: 'replicateEntries', truncateFrom: ix(3), entries: encodeEntries(entries(3, 5, 2)) }),
      send(ref, { type: 'truncate', from: ix(5) }),
    ];
    await run();
    expect(writes.map((w) => w.state)).to.deep.equal(['pending', 'pending', 'pending', 'pending']);
    expect(disk.hasUnsynced()).to.equal(true);
    expect(disk.syncs).to.equal(0);
    expect(nodeDisk.view.lastIndex, 'nothing is durable yet').to.equal(0);
    // Reads do not wait for a sync: they answer from the page cache view.
    const st = await state(ref);
    expect(st.log).to.deep.equal([...entries(1, 2), ...entries(3, 4, 2)]);

    const due = clock.nextTimerAt()!;
    expect(due, 'the sync is due after the disk latency').to.be.at.least(OPTIONS.syncMinMs).and.below(OPTIONS.syncMinMs + OPTIONS.syncJitterMs);
    clock.advanceTo(due - 0.01);
    await run();
    expect(writes.every((w) => w.state === 'pending'), 'answered before the sync').to.equal(true);

    clock.advanceTo(due);
    await run();
    expect(writes.map((w) => w.state)).to.deep.equal(['resolved', 'resolved', 'resolved', 'resolved']);
    expect(writes.map((w) => w.value)).to.deep.equal([undefined, 3, 5, undefined]);
    expect(disk.syncs, 'four writes shared one sync').to.equal(1);
    expect(disk.hasUnsynced()).to.equal(false);
    expect(nodeDisk.unsynced).to.deep.equal([]);
    expect(nodeDisk.view.hardState).to.deep.equal(hs(2, 1));
    expect(nodeDisk.view.lastIndex).to.equal(4);
    expect(nodeDisk.view.termAt(4)).to.equal(2);
  });

  it('a write after a sync waits for a sync of its own', async () => {
    const nodeDisk = newNodeDisk(2);
    const ref = await spawn(nodeDisk);
    await durably(ref, appendMsg(entries(1, 2)));
    const later = send(ref, appendMsg(entries(3, 3)));
    await run();
    expect(later.state).to.equal('pending');
    await fireNextTimer();
    expect(later.state).to.equal('resolved');
    expect(later.value).to.equal(3);
    expect(nodeDisk.disk.syncs).to.equal(2);
  });

  it('a truncate past the end of the log writes no record, and still answers only after a sync (in order with earlier writes)', async () => {
    const nodeDisk = newNodeDisk(2);
    const ref = await spawn(nodeDisk);
    await durably(ref, appendMsg(entries(1, 2)));
    const before = nodeDisk.disk.bytesWritten;
    const earlier = send(ref, { type: 'saveHardState', hardState: hs(4, 2) });
    const t = send(ref, { type: 'truncate', from: ix(10) });
    await run();
    expect([earlier.state, t.state]).to.deep.equal(['pending', 'pending']);
    expect(nodeDisk.disk.bytesWritten - before).to.equal(encodeRecord({ type: 'hardState', hardState: hs(4, 2) }).byteLength);
    await fireNextTimer();
    expect([earlier.state, t.state]).to.deep.equal(['resolved', 'resolved']);
    expect(nodeDisk.view.lastIndex).to.equal(2);
  });

  it('after a crash a new actor on the same disk starts from exactly the synced state', async () => {
    const nodeDisk = newNodeDisk(3);
    const { disk } = nodeDisk;
    const old = await spawn(nodeDisk);
    await durably(old, { type: 'saveHardState', hardState: hs(1, 1) }, appendMsg(entries(1, 3)));
    await durably(old, { type: 'replicateEntries', truncateFrom: ix(3), entries: encodeEntries(entries(3, 4, 1)) });
    const syncedBytes = disk.durableBytes().slice();
    const lost = [
      send(old, { type: 'saveHardState', hardState: hs(2, 2) }),
      send(old, appendMsg(entries(5, 8))),
    ];
    await run();
    expect(disk.hasUnsynced()).to.equal(true);
    const effect = disk.crash();
    nodeDisk.afterCrash();
    expect(effect.tornBytes).to.equal(0);
    expect(effect.droppedBytes).to.be.greaterThan(0);
    await system.stop('n1/storage');
    await run();
    for (const l of lost) {
      expect(l.state, 'a write lost in the crash is never acknowledged').to.equal('rejected');
      expect(l.error).to.be.instanceOf(ActorGoneError);
    }

    const fresh = await spawn(nodeDisk);
    const st = await state(fresh);
    expect(st.hardState).to.deep.equal(hs(1, 1));
    expect(st.log).to.deep.equal(entries(1, 4));
    expect(nodeDisk.tornBytesRecovered).to.equal(0);
    expect(disk.durableBytes()).to.deep.equal(syncedBytes);
    expect(nodeDisk.view.lastIndex).to.equal(4);
    expect(nodeDisk.view.hardState).to.deep.equal(hs(1, 1));
    // And it carries on from there.
    expect(await durably(fresh, appendMsg(entries(5, 5, 2)))).to.deep.equal([5]);
  });

  it('cuts a torn tail on recovery: the disk is rewritten to the valid prefix', async () => {
    const nodeDisk = newNodeDisk(4, { tornWriteProbability: 1 });
    const { disk } = nodeDisk;
    const old = await spawn(nodeDisk);
    await durably(old, { type: 'saveHardState', hardState: hs(1, 2) }, appendMsg(entries(1, 2)));
    const syncedBytes = disk.durableBytes().slice();
    send(old, appendMsg(entries(3, 40))); // one record of several hundred bytes, never synced
    await run();
    const effect = disk.crash();
    expect(effect.tornBytes, 'seed 4 tears the write (checked: deterministic)').to.be.greaterThan(0);
    nodeDisk.afterCrash();
    expect(disk.size).to.equal(syncedBytes.byteLength + effect.tornBytes);
    await system.stop('n1/storage');

    const fresh = await spawn(nodeDisk);
    expect(nodeDisk.tornBytesRecovered).to.equal(effect.tornBytes);
    expect(disk.size).to.equal(syncedBytes.byteLength);
    expect(disk.durableBytes()).to.deep.equal(syncedBytes);
    expect(replayRecords(disk.durableBytes(), disk.file).tornBytes).to.equal(0);
    const st = await state(fresh);
    expect(st).to.deep.equal({ hardState: hs(1, 2), log: entries(1, 2) });
    // New records follow the valid prefix, so the file replays cleanly later.
    await durably(fresh, appendMsg(entries(3, 3, 2)));
    expect(replayRecords(disk.durableBytes(), disk.file).records.map((r) => r.type)).to.deep.equal(['hardState', 'append', 'append']);
  });

  it('refuses to start (spawn rejects with CorruptLogError) when a byte in the middle of the durable file is damaged', async () => {
    const nodeDisk = newNodeDisk(5);
    const { disk } = nodeDisk;
    const old = await spawn(nodeDisk);
    await durably(old, appendMsg(entries(1, 3)));
    await durably(old, { type: 'saveHardState', hardState: hs(3, 1) });
    disk.crash();
    nodeDisk.afterCrash();
    await system.stop('n1/storage');
    const size = disk.size;
    disk.corrupt(10); // inside the first record's body

    const err = await spawn(nodeDisk).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(CorruptLogError);
    expect((err as CorruptLogError).file).to.equal('n1/raft.log');
    expect((err as CorruptLogError).offset).to.equal(0);
    expect(system.has('n1/storage')).to.equal(false);
    expect(disk.size, 'a refused recovery leaves the evidence on disk').to.equal(size);
    expect(nodeDisk.tornBytesRecovered).to.equal(0);
  });

  it('a storage actor from before a crash writes nothing after it (generation fence)', async () => {
    const nodeDisk = newNodeDisk(6);
    const { disk } = nodeDisk;
    const old = await spawn(nodeDisk, 'n1/storage-old');
    await durably(old, { type: 'saveHardState', hardState: hs(1, 1) }, appendMsg(entries(1, 2)));
    const inFlight = send(old, appendMsg(entries(3, 3)));
    await run();
    disk.crash();
    nodeDisk.afterCrash();
    const syncs = disk.syncs;

    // Its sync timer fires after the crash: no sync, no answer.
    await fireNextTimer();
    expect(inFlight.state).to.equal('pending');
    expect(disk.syncs).to.equal(syncs);

    // A new process opens the disk; the old one, still running, keeps receiving writes.
    const fresh = await spawn(nodeDisk, 'n1/storage-new');
    await durably(fresh, appendMsg(entries(3, 3, 2)));
    const written = disk.bytesWritten;
    const size = disk.size;
    const late = [
      send(old, { type: 'saveHardState', hardState: hs(9, 3) }),
      send(old, { type: 'replicateEntries', truncateFrom: ix(1), entries: encodeEntries(entries(1, 1, 9)) }),
    ];
    await run();
    expect(disk.bytesWritten, 'the old process wrote bytes after the crash').to.equal(written);
    expect(disk.size).to.equal(size);
    expect(disk.hasUnsynced()).to.equal(false);
    expect(nodeDisk.unsynced).to.deep.equal([]);
    expect(clock.nextTimerAt()! > 1000, 'the old process set no sync timer').to.equal(true);
    clock.advance(30_001); // past the asks' 30 s timeouts
    await run();
    expect(late.map((l) => l.state)).to.deep.equal(['rejected', 'rejected']);

    const replay = replayRecords(disk.durableBytes(), disk.file);
    const view = new DurableView();
    view.rebuild(replay.records);
    expect(view.hardState).to.deep.equal(hs(1, 1));
    expect([view.termAt(1), view.termAt(2), view.termAt(3)]).to.deep.equal([1, 1, 2]);
    expect(await state(fresh)).to.deep.equal({ hardState: hs(1, 1), log: [...entries(1, 2), ...entries(3, 3, 2)] });
  });

  it('after a restart without a power loss, the previous process\'s unsynced writes are part of the file (acknowledged writes replay)', async () => {
    // Regression: the old process dies (its node failed) with writes in the page cache, but the
    // disk does not crash, so those bytes stay pending. Recovery used to read only the durable
    // bytes, write its own records after the unseen ones, and leave a file whose next replay
    // refused with a gap, losing an acknowledged write. Recovery now reads the page cache too.
    const nodeDisk = newNodeDisk(8);
    const a = await spawn(nodeDisk, 'n1/storage');
    await durably(a, appendMsg(entries(1, 3)));
    send(a, appendMsg(entries(4, 5)));
    await run();
    await system.stop('n1/storage'); // no disk.crash(): the page cache survives
    expect(nodeDisk.disk.hasUnsynced()).to.equal(true);

    const b = await spawn(nodeDisk, 'n1/storage');
    const recovered = await state(b);
    const next = recovered.log.length + 1;
    expect(await durably(b, appendMsg([entry(next, 2)]))).to.deep.equal([next]); // acknowledged: durable
    await system.stop('n1/storage');
    nodeDisk.disk.crash();

    const err = await spawn(nodeDisk, 'n1/storage').then(() => null, (e: unknown) => e);
    expect(err, `recovery refused the file: ${String(err)}`).to.equal(null);
    const after = await state(system.ref<StorageMsg>('n1/storage'));
    expect(after.log[next - 1], 'the acknowledged entry survives').to.deep.equal(entry(next, 2));
  });

  it('reports its log writes, and on start the whole recovered log from index 1', async () => {
    const nodeDisk = newNodeDisk(7);
    const seen: Array<[LogIndex | null, number[]]> = [];
    const listener = (from: LogIndex | null, es: readonly Entry[]) => { seen.push([from, es.map((e) => e.index)]); };
    const a = await spawn(nodeDisk, 'n1/storage', listener);
    await durably(a, appendMsg(entries(1, 3)), { type: 'replicateEntries', truncateFrom: ix(2), entries: encodeEntries(entries(2, 2, 2)) }, { type: 'truncate', from: ix(2) });
    await system.stop('n1/storage');
    await spawn(nodeDisk, 'n1/storage', listener);
    expect(seen).to.deep.equal([[1, []], [null, [1, 2, 3]], [2, [2]], [2, []], [1, [1]]]);
  });
});

/**
 * The conformance suite calls `receive` directly and treats a throw as a refusal, so the actor runs
 * outside an ActorSystem here (in one, a throw from `receive` would crash it). Its context holds a
 * VirtualClock that the adapter advances past the sync latency after every message, so each write's
 * DeferredReply is resolved by the time the suite awaits it.
 */
function simStorageUnderTest(seed: number, restartAfterEveryWrite: boolean): StorageUnderTest {
  const clock = new VirtualClock();
  const ctx = { clock, logger: silent, random: new SeededRandom(seed) } as unknown as ActorContext;
  const options: DiskOptions = { syncMinMs: 1, syncJitterMs: 4, tornWriteProbability: 0.5 };
  const nodeDisk = new NodeDisk(new SimDisk('conformance/raft.log', new SeededRandom(seed), options));
  const start = (): SimStorageActor => { const a = new SimStorageActor({ nodeDisk }); a.started(ctx); return a; };
  let actor = start();
  return {
    receive(msg: StorageMsg): unknown {
      const answer = actor.receive(msg);
      clock.advance(options.syncMinMs + options.syncJitterMs);
      if (nodeDisk.disk.hasUnsynced()) throw new Error('a write was not synced by the time it was answered');
      if (restartAfterEveryWrite && msg.type !== 'getEntries' && msg.type !== 'getInitialState') actor = start();
      return answer;
    },
  };
}

storageConformanceSuite('SimStorageActor (virtual clock advanced past each sync)', () => simStorageUnderTest(21, false));
storageConformanceSuite('SimStorageActor recovered from its disk after every write', () => simStorageUnderTest(22, true));

describe('sim/sim-storage: recovery after a torn crash, over many seeds', () => {
  it('a restarted store holds the synced state plus exactly the whole records the torn prefix kept', () => {
    const keptSeen = new Set<number>();
    let cutMidRecord = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const clock = new VirtualClock();
      const ctx = { clock, logger: silent } as unknown as ActorContext;
      const disk = new SimDisk('n1/raft.log', new SeededRandom(seed), { syncMinMs: 1, syncJitterMs: 0, tornWriteProbability: 1 });
      const nodeDisk = new NodeDisk(disk);
      const a = new SimStorageActor({ nodeDisk });
      a.started(ctx);
      a.receive({ type: 'saveHardState', hardState: hs(1, 1) });
      a.receive({ type: 'appendEntries', entries: encodeEntries(entries(1, 3)) });
      clock.advance(1);
      const synced = disk.durableBytes().slice();
      // Three unsynced records; the crash keeps a random strict prefix of their bytes.
      const unsyncedRecords: LogRecord[] = [
        { type: 'hardState', hardState: hs(2, 3) },
        { type: 'append', entries: encodeEntries(entries(4, 6, 2)) },
        { type: 'truncate', from: ix(6) },
      ];
      a.receive({ type: 'saveHardState', hardState: hs(2, 3) });
      a.receive({ type: 'appendEntries', entries: encodeEntries(entries(4, 6, 2)) });
      a.receive({ type: 'truncate', from: ix(6) });
      const { tornBytes } = disk.crash();
      nodeDisk.afterCrash();
      clock.advance(1); // the old actor's sync: fenced off

      let kept = 0;
      let at = 0;
      for (const r of unsyncedRecords.map(encodeRecord)) { if (at + r.byteLength <= tornBytes) { kept++; at += r.byteLength; } else break; }
      const b = new SimStorageActor({ nodeDisk });
      b.started(ctx);
      expect(nodeDisk.tornBytesRecovered, `seed ${seed}`).to.equal(tornBytes - at);
      expect(disk.size, `seed ${seed}`).to.equal(synced.byteLength + at);
      const st = b.receive({ type: 'getInitialState' }) as StoredState;
      const log = decodeEntries(st.entries);
      expect(st.hardState, `seed ${seed}`).to.deep.equal(kept >= 1 ? hs(2, 3) : hs(1, 1));
      expect(log, `seed ${seed}`).to.deep.equal(kept === 0 ? entries(1, 3) : kept === 1 ? entries(1, 3) : kept === 2 ? [...entries(1, 3), ...entries(4, 6, 2)] : [...entries(1, 3), ...entries(4, 5, 2)]);
      expect(nodeDisk.view.lastIndex, `seed ${seed}`).to.equal(log.length);
      keptSeen.add(kept);
      if (tornBytes > at) cutMidRecord++;
    }
    expect([...keptSeen].sort(), 'the seeds cover a cut in each unsynced record').to.deep.equal([0, 1, 2]);
    expect(cutMidRecord, 'most cuts land inside a record').to.be.greaterThan(20);
  });
});
