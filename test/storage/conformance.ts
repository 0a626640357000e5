/**
 * RaftStorage conformance: the behaviour every storage actor must have, checked only through the
 * contract messages of storage/storage.ts. Run it against your own storage:
 *
 * @example
 * import { storageConformanceSuite } from 'actor-raft/test/storage/conformance';
 * storageConformanceSuite('MyStorage', () => new MyStorageActor(tmpdir()));
 *
 * `make` must return a fresh, empty store each call (or a promise of one). `receive` may answer
 * directly, with a promise, with `replyError(err)` (an ErrorReply) or with a DeferredReply; all are
 * awaited like an `ask`. A refusal may be a throw, a rejected promise or an ErrorReply.
 *
 * A durable storage also passes `reopen`: stop the store (as a process exit would) and open a new
 * one over the same data. The suite then checks that everything answered survives, and that a
 * refused write left nothing behind. `close` releases a store after each test.
 */
import { expect } from 'chai';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, HardState, LogIndex, Membership, NodeId, Term } from '../../actors/raft/core/types';
import { DeferredReply, ErrorReply } from '../../runtime/actor';
import type { StorageMsg, StoredState } from '../../storage/storage';

export interface StorageUnderTest {
  receive(msg: StorageMsg): unknown | Promise<unknown>;
}

const ix = (n: number): LogIndex => n as LogIndex;
const tm = (n: number): Term => n as Term;
const id = (n: number): NodeId => n as NodeId;

/** A deterministic entry for index i: kind, term and payload all follow from i. */
function entryAt(i: number, termOf: (i: number) => number = (k) => 1 + Math.floor(k / 10)): Entry {
  const t = tm(termOf(i));
  if (i % 17 === 0) return { kind: 'blank', index: ix(i), term: t };
  if (i % 29 === 0) {
    const m: Membership = { members: [id(1), id(2), id(3)], nonVoters: [id(i)], membersAfterConsensus: i % 2 === 0 ? [id(2), id(3), id(4)] : null };
    return { kind: 'config', index: ix(i), term: t, membership: m };
  }
  const payload = new Uint8Array(i % 13);
  for (let k = 0; k < payload.length; k++) payload[k] = (i * 31 + k * 7) & 0xff;
  return { kind: 'normal', index: ix(i), term: t, payload };
}
const range = (from: number, toInclusive: number, termOf?: (i: number) => number): Entry[] => {
  const out: Entry[] = [];
  for (let i = from; i <= toInclusive; i++) out.push(entryAt(i, termOf));
  return out;
};

/** Like an `ask`: awaits the answer however the actor gives it, and turns refusals into rejections. */
async function ask<R = unknown>(s: StorageUnderTest, msg: StorageMsg): Promise<R> {
  const answer = await s.receive(msg);
  if (answer instanceof ErrorReply) throw answer.error;
  if (answer instanceof DeferredReply) {
    return new Promise<R>((resolve, reject) => (answer as DeferredReply<R>).attach({ resolve, reject }));
  }
  return answer as R;
}

/** Asserts the ask is refused (throws, rejects or replies with an error). */
async function refused(s: StorageUnderTest, msg: StorageMsg): Promise<Error> {
  let error: unknown = null;
  try { await ask(s, msg); } catch (e) { error = e; }
  expect(error, `${msg.type} should have been refused`).to.be.instanceOf(Error);
  return error as Error;
}

/** Decodes a getEntries answer (must be a Uint8Array in encodeEntries format). */
function decoded(bytes: unknown): Entry[] {
  expect(bytes, 'entries must travel encoded').to.be.instanceOf(Uint8Array);
  return decodeEntries(bytes as Uint8Array);
}

export interface ConformanceOptions {
  /** Stops `s` and returns a new store over the same data (durable storages only). */
  readonly reopen?: (s: StorageUnderTest) => Promise<StorageUnderTest>;
  /** Releases a store after each test. */
  readonly close?: (s: StorageUnderTest) => Promise<void>;
}

export function storageConformanceSuite(name: string, make: () => StorageUnderTest | Promise<StorageUnderTest>, opts: ConformanceOptions = {}): void {
  describe(`RaftStorage conformance: ${name}`, () => {
    let s: StorageUnderTest;
    beforeEach(async () => { s = await make(); });
    afterEach(async () => { if (opts.close) await opts.close(s); });

    const append = (entries: readonly Entry[]): Promise<number> => ask<number>(s, { type: 'appendEntries', entries: encodeEntries(entries) });
    const replicate = (truncateFrom: number | null, entries: readonly Entry[]): Promise<number> =>
      ask<number>(s, { type: 'replicateEntries', truncateFrom: truncateFrom === null ? null : ix(truncateFrom), entries: encodeEntries(entries) });
    const get = async (from: number, toExclusive: number): Promise<Entry[]> =>
      decoded(await ask(s, { type: 'getEntries', from: ix(from), toExclusive: ix(toExclusive) }));
    const initial = (): Promise<StoredState> => ask<StoredState>(s, { type: 'getInitialState' });
    const wholeLog = async (): Promise<Entry[]> => decoded((await initial()).entries);

    describe('a fresh store', () => {
      it('is in term 0 with no vote and an empty log', async () => {
        const st = await initial();
        expect(st.hardState).to.deep.equal({ currentTerm: 0, votedFor: null });
        expect(decoded(st.entries)).to.deep.equal([]);
      });

      it('answers getEntries from 1 with nothing', async () => {
        expect(await get(1, 1)).to.deep.equal([]);
        expect(await get(1, 2)).to.deep.equal([]);
        expect(await get(1, 1000)).to.deep.equal([]);
      });

      it('answers an empty replicateEntries and an empty appendEntries with last index 0', async () => {
        expect(await append([])).to.equal(0);
        expect(await replicate(null, [])).to.equal(0);
        expect(await wholeLog()).to.deep.equal([]);
      });
    });

    describe('hard state', () => {
      it('saveHardState round-trips term and vote', async () => {
        const states: HardState[] = [
          { currentTerm: tm(1), votedFor: id(3) },
          { currentTerm: tm(2), votedFor: null },
          { currentTerm: tm(2), votedFor: id(1) },
          { currentTerm: tm(Number.MAX_SAFE_INTEGER), votedFor: id(Number.MAX_SAFE_INTEGER) },
        ];
        for (const hs of states) {
          expect(await ask(s, { type: 'saveHardState', hardState: hs })).to.equal(undefined);
          expect((await initial()).hardState).to.deep.equal(hs);
        }
      });

      it('saving hard state leaves the log alone, and writing the log leaves the hard state alone', async () => {
        await append(range(1, 5));
        await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(4), votedFor: id(2) } });
        expect(await wholeLog()).to.deep.equal(range(1, 5));
        await append(range(6, 8));
        await ask(s, { type: 'truncate', from: ix(7) });
        expect((await initial()).hardState).to.deep.equal({ currentTerm: 4, votedFor: 2 });
      });
    });

    describe('appendEntries and getEntries', () => {
      it('appendEntries answers the new last index', async () => {
        expect(await append(range(1, 1))).to.equal(1);
        expect(await append(range(2, 10))).to.equal(10);
        expect(await append([])).to.equal(10);
        expect(await append(range(11, 11))).to.equal(11);
      });

      it('getEntries returns exactly [from, toExclusive)', async () => {
        await append(range(1, 40));
        expect(await get(1, 41)).to.deep.equal(range(1, 40));
        expect(await get(1, 2)).to.deep.equal(range(1, 1));
        expect(await get(17, 30)).to.deep.equal(range(17, 29));
        expect(await get(40, 41)).to.deep.equal(range(40, 40));
        expect(await get(29, 30)).to.deep.equal([entryAt(29)]); // a config entry
        expect(await get(34, 35)).to.deep.equal([entryAt(34)]); // a blank entry
      });

      it('getEntries clips a range at the end of the log', async () => {
        await append(range(1, 10));
        expect(await get(5, 100)).to.deep.equal(range(5, 10));
        expect(await get(10, 11)).to.deep.equal(range(10, 10));
        expect(await get(1, Number.MAX_SAFE_INTEGER)).to.deep.equal(range(1, 10));
      });

      it('getEntries answers an empty range with no entries', async () => {
        await append(range(1, 10));
        expect(await get(5, 5)).to.deep.equal([]);
        expect(await get(7, 3)).to.deep.equal([]);
        expect(await get(11, 20)).to.deep.equal([]);
        expect(await get(50, 60)).to.deep.equal([]);
      });

      it('payload bytes come back exactly, including empty and large payloads', async () => {
        const big = new Uint8Array(256 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
        const entries: Entry[] = [
          { kind: 'normal', index: ix(1), term: tm(1), payload: new Uint8Array(0) },
          { kind: 'normal', index: ix(2), term: tm(1), payload: big },
          { kind: 'normal', index: ix(3), term: tm(2), payload: Uint8Array.of(0, 255, 0) },
        ];
        await append(entries);
        expect(await get(1, 4)).to.deep.equal(entries);
      });

      it('refuses an append that leaves a gap, and keeps the log as it was', async () => {
        await append(range(1, 5));
        await refused(s, { type: 'appendEntries', entries: encodeEntries(range(7, 9)) });
        expect(await wholeLog()).to.deep.equal(range(1, 5));
        expect(await append(range(6, 6))).to.equal(6);
      });

      it('refuses an append to an empty log that does not start at index 1', async () => {
        await refused(s, { type: 'appendEntries', entries: encodeEntries(range(2, 3)) });
        expect(await wholeLog()).to.deep.equal([]);
      });

      it('refuses an append that overlaps the log (that is replicateEntries\' job)', async () => {
        await append(range(1, 5));
        await refused(s, { type: 'appendEntries', entries: encodeEntries(range(5, 6)) });
        expect(await wholeLog()).to.deep.equal(range(1, 5));
      });
    });

    describe('replicateEntries and truncate', () => {
      it('replicateEntries without truncateFrom appends', async () => {
        expect(await replicate(null, range(1, 3))).to.equal(3);
        expect(await replicate(null, range(4, 6))).to.equal(6);
        expect(await wholeLog()).to.deep.equal(range(1, 6));
      });

      it('replicateEntries with truncateFrom replaces a suffix', async () => {
        await append(range(1, 10));
        const newTerm = (i: number): number => (i >= 6 ? 9 : 1 + Math.floor(i / 10));
        const replacement = range(6, 8, newTerm);
        expect(await replicate(6, replacement)).to.equal(8);
        expect(await wholeLog()).to.deep.equal([...range(1, 5), ...replacement]);
        expect(await get(6, 100)).to.deep.equal(replacement);
        expect((await get(6, 7))[0].term).to.equal(9);
      });

      it('replicateEntries can replace the whole log', async () => {
        await append(range(1, 4));
        const replacement = range(1, 2, () => 7);
        expect(await replicate(1, replacement)).to.equal(2);
        expect(await wholeLog()).to.deep.equal(replacement);
      });

      it('replicateEntries with truncateFrom and no entries only truncates', async () => {
        await append(range(1, 10));
        expect(await replicate(4, [])).to.equal(3);
        expect(await wholeLog()).to.deep.equal(range(1, 3));
      });

      it('replicateEntries with truncateFrom past the end just appends', async () => {
        await append(range(1, 3));
        expect(await replicate(4, range(4, 5))).to.equal(5);
        expect(await wholeLog()).to.deep.equal(range(1, 5));
      });

      it('a refused replicateEntries (gap after the truncation) leaves the log as it was', async () => {
        await append(range(1, 10));
        // Truncating from 4 would leave 1..3, and entries starting at 8 would leave a gap.
        await refused(s, { type: 'replicateEntries', truncateFrom: ix(4), entries: encodeEntries(range(8, 9)) });
        expect(await wholeLog(), 'a refused write must not have half happened').to.deep.equal(range(1, 10));
      });

      it('truncate deletes every entry from an index on', async () => {
        await append(range(1, 10));
        expect(await ask(s, { type: 'truncate', from: ix(7) })).to.equal(undefined);
        expect(await wholeLog()).to.deep.equal(range(1, 6));
        expect(await get(1, 100)).to.deep.equal(range(1, 6));
        expect(await get(7, 11)).to.deep.equal([]);
        // The log continues from the new end.
        expect(await append(range(7, 8, () => 5))).to.equal(8);
        expect(await get(7, 9)).to.deep.equal(range(7, 8, () => 5));
      });

      it('truncate from 1 empties the log', async () => {
        await append(range(1, 10));
        await ask(s, { type: 'truncate', from: ix(1) });
        expect(await wholeLog()).to.deep.equal([]);
        expect(await append(range(1, 1))).to.equal(1);
      });

      it('truncate past the end changes nothing', async () => {
        await append(range(1, 5));
        await ask(s, { type: 'truncate', from: ix(6) });
        await ask(s, { type: 'truncate', from: ix(100) });
        expect(await wholeLog()).to.deep.equal(range(1, 5));
      });

      it('refuses a truncate below index 1, and keeps the log', async () => {
        await append(range(1, 5));
        await refused(s, { type: 'truncate', from: ix(0) });
        await refused(s, { type: 'truncate', from: ix(-1) });
        await refused(s, { type: 'replicateEntries', truncateFrom: ix(0), entries: encodeEntries(range(1, 1)) });
        expect(await wholeLog()).to.deep.equal(range(1, 5));
      });
    });

    describe('getInitialState', () => {
      it('holds everything written: hard state and every entry, byte-equal after decode', async () => {
        await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(3), votedFor: id(2) } });
        await append(range(1, 30));
        await replicate(25, range(25, 40, (i) => (i >= 25 ? 3 : 1 + Math.floor(i / 10))));
        await ask(s, { type: 'truncate', from: ix(36) });
        await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(5), votedFor: null } });
        const expected = [...range(1, 24), ...range(25, 35, () => 3)];
        const st = await initial();
        expect(st.hardState).to.deep.equal({ currentTerm: 5, votedFor: null });
        const log = decoded(st.entries);
        expect(log).to.deep.equal(expected);
        // Byte-equal: the stored log re-encodes to exactly what was written.
        expect(Buffer.from(encodeEntries(log)).equals(Buffer.from(encodeEntries(expected)))).to.equal(true);
      });
    });

    describe('volume', () => {
      it('reads back 10 000 entries appended in batches of 100, in order', async () => {
        for (let b = 0; b < 100; b++) {
          expect(await append(range(b * 100 + 1, b * 100 + 100))).to.equal(b * 100 + 100);
        }
        const all = await get(1, 10_001);
        expect(all).to.have.length(10_000);
        for (let i = 0; i < all.length; i++) {
          if (all[i].index !== i + 1) expect.fail(`entry ${i} has index ${all[i].index}`);
        }
        expect(all).to.deep.equal(range(1, 10_000));
        // Windows across batch boundaries.
        expect(await get(95, 205)).to.deep.equal(range(95, 204));
        expect(await get(9_999, 20_000)).to.deep.equal(range(9_999, 10_000));
        expect(decoded((await initial()).entries)).to.have.length(10_000);
      });
    });

    if (opts.reopen) {
      const reopen = opts.reopen;
      describe('durability across a restart', () => {
        it('a reopened store holds every answered write: hard state, appends, truncations', async () => {
          await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(2), votedFor: id(3) } });
          await append(range(1, 50));
          await replicate(41, range(41, 45, () => 6));
          await ask(s, { type: 'truncate', from: ix(44) });
          await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(6), votedFor: null } });
          s = await reopen(s);
          const st = await initial();
          expect(st.hardState).to.deep.equal({ currentTerm: 6, votedFor: null });
          expect(decoded(st.entries)).to.deep.equal([...range(1, 40), ...range(41, 43, () => 6)]);
          expect(await get(40, 100)).to.deep.equal([entryAt(40), ...range(41, 43, () => 6)]);
          // The reopened store goes on from where the log ends.
          expect(await append(range(44, 45, () => 6))).to.equal(45);
        });

        it('a write refused before a restart left nothing behind', async () => {
          await append(range(1, 5));
          await refused(s, { type: 'appendEntries', entries: encodeEntries(range(9, 10)) });
          await refused(s, { type: 'replicateEntries', truncateFrom: ix(3), entries: encodeEntries(range(7, 8)) });
          s = await reopen(s);
          expect(await wholeLog()).to.deep.equal(range(1, 5));
        });

        it('survives several restarts, each adding to the log', async () => {
          for (let round = 0; round < 4; round++) {
            await append(range(round * 25 + 1, round * 25 + 25));
            await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(round + 1), votedFor: id(round + 1) } });
            s = await reopen(s);
          }
          const st = await initial();
          expect(st.hardState).to.deep.equal({ currentTerm: 4, votedFor: 4 });
          expect(decoded(st.entries)).to.deep.equal(range(1, 100));
        });

        it('many writes asked at once are all durable once all are answered (group commit keeps order)', async () => {
          const asks: Promise<unknown>[] = [];
          for (let b = 0; b < 50; b++) asks.push(append(range(b * 4 + 1, b * 4 + 4)));
          asks.push(ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(9), votedFor: id(2) } }));
          const answers = await Promise.all(asks);
          expect(answers.slice(0, 50)).to.deep.equal(Array.from({ length: 50 }, (_, b) => b * 4 + 4));
          s = await reopen(s);
          expect(await wholeLog()).to.deep.equal(range(1, 200));
          expect((await initial()).hardState).to.deep.equal({ currentTerm: 9, votedFor: 2 });
        });
      });
    }
  });
}
