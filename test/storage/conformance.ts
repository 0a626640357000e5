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
import { crc32 } from 'node:zlib';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, HardState, LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../../actors/raft/core/types';
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

/** Deterministic snapshot bytes. */
function snapData(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  return out;
}

/** The meta of `data` as snapshot `id` through `lastIncludedIndex`. */
function metaOf(snapId: string, data: Uint8Array, lastIncludedIndex: number, lastIncludedTerm = 1): SnapshotMeta {
  return {
    id: snapId, lastIncludedIndex: ix(lastIncludedIndex), lastIncludedTerm: tm(lastIncludedTerm),
    membership: { members: [id(1), id(2), id(3)], nonVoters: [id(7)], membersAfterConsensus: null }, membershipIndex: ix(Math.min(lastIncludedIndex, 3)),
    byteLength: data.byteLength, checksum: crc32(data) >>> 0,
  };
}

/** Asserts the ask is refused with an error of that code (StorageContract, LogPurged, SnapshotGone...). */
async function refusedWith(s: StorageUnderTest, msg: StorageMsg, code: string | readonly string[]): Promise<Error> {
  const err = await refused(s, msg);
  const codes = typeof code === 'string' ? [code] : code;
  expect((err as Error & { code?: string }).code, `${msg.type}: ${err.message}`).to.be.oneOf(codes as string[]);
  return err;
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
    const chunk = (meta: SnapshotMeta, offset: number, data: Uint8Array, done: boolean): Promise<unknown> => ask(s, { type: 'writeSnapshot', meta, offset, data, done });
    /** Writes a whole snapshot in chunks of `size` bytes (the last one with done). */
    const writeSnap = async (meta: SnapshotMeta, data: Uint8Array, size = 1000): Promise<void> => {
      let at = 0;
      do {
        const end = Math.min(data.byteLength, at + size);
        expect(await chunk(meta, at, data.subarray(at, end), end === data.byteLength)).to.equal(undefined);
        at = end;
      } while (at < data.byteLength);
    };
    const getSnapshot = (): Promise<SnapshotMeta | null> => ask<SnapshotMeta | null>(s, { type: 'getSnapshot' });
    const readSnap = (snapId: string, offset: number, maxBytes: number): Promise<Uint8Array> => ask<Uint8Array>(s, { type: 'readSnapshot', id: snapId, offset, maxBytes });
    /** Reads the whole snapshot back in pieces of `size` bytes. */
    const readAll = async (snapId: string, size = 777): Promise<Uint8Array> => {
      const parts: Uint8Array[] = [];
      for (let at = 0; ;) {
        const piece = await readSnap(snapId, at, size);
        expect(piece).to.be.instanceOf(Uint8Array);
        if (piece.byteLength === 0) break;
        expect(piece.byteLength).to.be.at.most(size);
        parts.push(piece);
        at += piece.byteLength;
      }
      return Uint8Array.from(Buffer.concat(parts));
    };
    const purge = (through: number): Promise<unknown> => ask(s, { type: 'purgeLog', throughIndex: ix(through) });

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

    describe('snapshots', () => {
      it('a fresh store has no snapshot, and its log starts at index 1', async () => {
        expect(await getSnapshot()).to.equal(null);
        const st = await initial();
        expect(st.snapshot).to.equal(null);
        expect(st.firstIndex).to.equal(1);
        await refusedWith(s, { type: 'readSnapshot', id: 'nothing', offset: 0, maxBytes: 10 }, 'SnapshotGone');
      });

      it('a snapshot written in chunks becomes current; read back in other chunks it is the same bytes; the log is not touched', async () => {
        await append(range(1, 30));
        const data = snapData(10_000);
        const meta = metaOf('s-1', data, 25, 3);
        await writeSnap(meta, data, 999);
        expect(await getSnapshot()).to.deep.equal(meta);
        expect(Buffer.from(await readAll('s-1')).equals(Buffer.from(data))).to.equal(true);
        expect(Buffer.from(await readSnap('s-1', 9_990, 100)).equals(Buffer.from(data.subarray(9_990)))).to.equal(true);
        expect((await readSnap('s-1', 10_000, 100)).byteLength, 'empty at the end').to.equal(0);
        const st = await initial();
        expect(st.snapshot).to.deep.equal(meta);
        expect(st.firstIndex).to.equal(1);
        expect(decoded(st.entries)).to.deep.equal(range(1, 30));
      });

      it('a snapshot in one chunk, and an empty snapshot, are written and read', async () => {
        const data = snapData(100, 2);
        await writeSnap(metaOf('one', data, 5), data, 1_000_000);
        expect(await readAll('one')).to.deep.equal(data);
        const empty = new Uint8Array(0);
        await writeSnap(metaOf('empty', empty, 6), empty);
        expect(await getSnapshot()).to.deep.equal(metaOf('empty', empty, 6));
        expect((await readSnap('empty', 0, 10)).byteLength).to.equal(0);
      });

      it('a chunk at an offset other than the bytes received so far is refused and writes nothing; the right offset goes on', async () => {
        const data = snapData(3000);
        const meta = metaOf('s-2', data, 9);
        await chunk(meta, 0, data.subarray(0, 1000), false);
        await refusedWith(s, { type: 'writeSnapshot', meta, offset: 500, data: data.subarray(500, 1500), done: false }, 'StorageContract');
        await refusedWith(s, { type: 'writeSnapshot', meta, offset: 2000, data: data.subarray(2000), done: true }, 'StorageContract');
        await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('other', data, 9), offset: 1000, data: data.subarray(1000, 2000), done: false }, 'StorageContract');
        expect(await getSnapshot()).to.equal(null);
        await chunk(meta, 1000, data.subarray(1000, 2000), false);
        await chunk(meta, 2000, data.subarray(2000), true);
        expect(await getSnapshot()).to.deep.equal(meta);
        expect(await readAll('s-2')).to.deep.equal(data);
      });

      it('offset 0 starts again, dropping the unfinished snapshot (of the same id or another)', async () => {
        const a = snapData(2000, 3);
        const b = snapData(1500, 4);
        await chunk(metaOf('a', a, 4), 0, a.subarray(0, 700), false);
        await chunk(metaOf('a', a, 4), 0, a.subarray(0, 300), false); // restart: 300 bytes received now
        await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('a', a, 4), offset: 700, data: a.subarray(700), done: true }, 'StorageContract');
        await chunk(metaOf('b', b, 8), 0, b.subarray(0, 500), false); // drops a
        await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('a', a, 4), offset: 300, data: a.subarray(300), done: true }, 'StorageContract');
        await chunk(metaOf('b', b, 8), 500, b.subarray(500), true);
        expect(await getSnapshot()).to.deep.equal(metaOf('b', b, 8));
        expect(await readAll('b')).to.deep.equal(b);
      });

      it('a finished snapshot whose crc32 or length does not match its meta is refused (SnapshotChecksumError), the previous kept, the unfinished one dropped', async () => {
        const good = snapData(1200, 5);
        await writeSnap(metaOf('good', good, 10), good);
        const data = snapData(2000, 6);
        const wrongCrc = { ...metaOf('bad', data, 20), checksum: (crc32(data) + 1) >>> 0 };
        await chunk(wrongCrc, 0, data.subarray(0, 1000), false);
        const err = await refusedWith(s, { type: 'writeSnapshot', meta: wrongCrc, offset: 1000, data: data.subarray(1000), done: true }, 'SnapshotChecksum');
        expect(err.message).to.match(/bad/);
        expect(await getSnapshot()).to.deep.equal(metaOf('good', good, 10));
        expect(await readAll('good')).to.deep.equal(good);
        // Dropped: continuing it is refused as a chunk of a snapshot not being received.
        await refusedWith(s, { type: 'writeSnapshot', meta: wrongCrc, offset: 2000, data: new Uint8Array(0), done: true }, 'StorageContract');
        // Short at done, and more bytes than byteLength.
        await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('short', data, 20), offset: 0, data: data.subarray(0, 1999), done: true }, 'SnapshotChecksum');
        await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('long', data.subarray(0, 10), 20), offset: 0, data, done: false }, 'SnapshotChecksum');
        expect(await getSnapshot()).to.deep.equal(metaOf('good', good, 10));
      });

      it('readSnapshot of a replaced snapshot is SnapshotGoneError; the new one reads', async () => {
        const a = snapData(500, 7);
        const b = snapData(800, 8);
        await writeSnap(metaOf('first', a, 10), a);
        expect((await readSnap('first', 0, 10)).byteLength).to.equal(10);
        await writeSnap(metaOf('second', b, 20), b, 300);
        const gone = await refusedWith(s, { type: 'readSnapshot', id: 'first', offset: 10, maxBytes: 10 }, 'SnapshotGone');
        expect((gone as Error & { id?: string }).id).to.equal('first');
        expect(await readAll('second')).to.deep.equal(b);
        expect((await initial()).snapshot).to.deep.equal(metaOf('second', b, 20));
      });

      it('refuses a bad meta or bad read arguments, and changes nothing', async () => {
        const data = snapData(50);
        const m = metaOf('ok', data, 5);
        const bad: Array<Record<string, unknown>> = [
          { ...m, id: '../etc' }, { ...m, id: '' }, { ...m, id: 'x'.repeat(129) }, { ...m, lastIncludedIndex: 0 }, { ...m, lastIncludedTerm: -1 },
          { ...m, lastIncludedIndex: 1.5 }, { ...m, membershipIndex: 6 }, { ...m, byteLength: -1 }, { ...m, checksum: 2 ** 32 },
          { ...m, membership: { members: [], nonVoters: [], membersAfterConsensus: null } }, { ...m, membership: null },
        ];
        for (const meta of bad) {
          await refusedWith(s, { type: 'writeSnapshot', meta: meta as unknown as SnapshotMeta, offset: 0, data, done: true }, ['StorageContract', 'MalformedMessage']);
        }
        await refusedWith(s, { type: 'writeSnapshot', meta: m, offset: -1, data, done: true }, 'StorageContract');
        expect(await getSnapshot()).to.equal(null);
        await writeSnap(m, data);
        for (const [offset, maxBytes] of [[51, 10], [-1, 10], [0, 0], [0, 64 * 1024 * 1024 + 1], [0.5, 10]]) {
          await refusedWith(s, { type: 'readSnapshot', id: 'ok', offset, maxBytes }, 'StorageContract');
        }
        expect(await readAll('ok')).to.deep.equal(data);
        expect((await readSnap('ok', 0, 64 * 1024 * 1024)).byteLength).to.equal(50);
      });
    });

    describe('purgeLog', () => {
      const snap = async (through: number, snapId = `p-${through}`): Promise<SnapshotMeta> => {
        const data = snapData(64, through);
        const meta = metaOf(snapId, data, through, 1 + Math.floor(through / 10));
        await writeSnap(meta, data);
        return meta;
      };

      it('is refused without a snapshot, or beyond the snapshot, and the log is kept', async () => {
        await append(range(1, 20));
        await refusedWith(s, { type: 'purgeLog', throughIndex: ix(5) }, 'StorageContract');
        await snap(10);
        await refusedWith(s, { type: 'purgeLog', throughIndex: ix(11) }, 'StorageContract');
        await refusedWith(s, { type: 'purgeLog', throughIndex: ix(-1) }, 'StorageContract');
        expect(await wholeLog()).to.deep.equal(range(1, 20));
        expect((await initial()).firstIndex).to.equal(1);
      });

      it('deletes a prefix: the log starts after it, reads below it are LogPurgedError naming the first index, writes go on', async () => {
        await append(range(1, 40));
        await snap(25);
        expect(await purge(15)).to.equal(undefined);
        const st = await initial();
        expect(st.firstIndex).to.equal(16);
        expect(decoded(st.entries)).to.deep.equal(range(16, 40));
        expect(await get(16, 20)).to.deep.equal(range(16, 19));
        expect(await get(30, 100)).to.deep.equal(range(30, 40));
        for (const [from, to] of [[15, 20], [1, 100], [0, 5], [10, 10]]) {
          const err = await refusedWith(s, { type: 'getEntries', from: ix(from), toExclusive: ix(to) }, 'LogPurged');
          expect((err as Error & { firstIndex?: number }).firstIndex).to.equal(16);
        }
        expect(await append(range(41, 42))).to.equal(42);
        // The log's suffix can still be replaced, but nothing below the first index held.
        expect(await replicate(30, range(30, 31, () => 9))).to.equal(31);
        await refusedWith(s, { type: 'truncate', from: ix(15) }, 'StorageContract');
        await refusedWith(s, { type: 'replicateEntries', truncateFrom: ix(10), entries: encodeEntries(range(10, 10)) }, 'StorageContract');
        expect(await wholeLog()).to.deep.equal([...range(16, 29), ...range(30, 31, () => 9)]);
        // A purge at or below what is already purged changes nothing.
        await purge(15);
        await purge(3);
        expect((await initial()).firstIndex).to.equal(16);
        await purge(25);
        expect((await initial()).firstIndex).to.equal(26);
        expect(await get(26, 28)).to.deep.equal(range(26, 27));
      });

      it('truncate at the first index held empties the log, which continues there', async () => {
        await append(range(1, 20));
        await snap(10);
        await purge(10);
        await ask(s, { type: 'truncate', from: ix(11) });
        expect(await wholeLog()).to.deep.equal([]);
        expect((await initial()).firstIndex).to.equal(11);
        expect(await append([])).to.equal(10);
        expect(await append(range(11, 12, () => 4))).to.equal(12);
      });

      it('purging through or past the last index empties the log, which continues after the purge point', async () => {
        await append(range(1, 10));
        await snap(20);
        await purge(20);
        const st = await initial();
        expect(st.firstIndex).to.equal(21);
        expect(decoded(st.entries)).to.deep.equal([]);
        expect(await get(21, 30)).to.deep.equal([]);
        await refusedWith(s, { type: 'getEntries', from: ix(20), toExclusive: ix(30) }, 'LogPurged');
        expect(await append([])).to.equal(20);
        await refusedWith(s, { type: 'appendEntries', entries: encodeEntries(range(11, 12)) }, 'StorageContract');
        await refusedWith(s, { type: 'appendEntries', entries: encodeEntries(range(22, 23)) }, 'StorageContract');
        expect(await append(range(21, 25))).to.equal(25);
        expect(await replicate(null, range(26, 26))).to.equal(26);
        expect(await get(21, 100)).to.deep.equal(range(21, 26));
      });

      it('a snapshot that ends below the purge point is refused (it would leave entries nowhere)', async () => {
        await append(range(1, 30));
        const kept = await snap(20);
        await purge(20);
        const data = snapData(10);
        await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('older', data, 15), offset: 0, data, done: true }, 'StorageContract');
        expect(await getSnapshot()).to.deep.equal(kept);
        await snap(20, 'same-point'); // at the purge point is fine
        expect((await getSnapshot())!.id).to.equal('same-point');
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

        it('a snapshot and a purge survive a restart: the meta, the bytes, the first index and the log after it', async () => {
          await ask(s, { type: 'saveHardState', hardState: { currentTerm: tm(4), votedFor: id(1) } });
          await append(range(1, 60));
          const data = snapData(50_000, 9);
          const meta = metaOf('durable-1', data, 45, 5);
          await writeSnap(meta, data, 4096);
          await purge(40);
          s = await reopen(s);
          const st = await initial();
          expect(st.hardState).to.deep.equal({ currentTerm: 4, votedFor: 1 });
          expect(st.snapshot).to.deep.equal(meta);
          expect(st.firstIndex).to.equal(41);
          expect(decoded(st.entries)).to.deep.equal(range(41, 60));
          expect(Buffer.from(await readAll('durable-1', 10_000)).equals(Buffer.from(data))).to.equal(true);
          await refusedWith(s, { type: 'getEntries', from: ix(40), toExclusive: ix(50) }, 'LogPurged');
          expect(await append(range(61, 62))).to.equal(62);
          await purge(45);
          s = await reopen(s);
          expect((await initial()).firstIndex).to.equal(46);
          expect(await wholeLog()).to.deep.equal(range(46, 62));
        });

        it('a log purged past its end survives a restart empty, and continues after the purge point', async () => {
          await append(range(1, 5));
          const data = snapData(300, 10);
          await writeSnap(metaOf('ahead', data, 50), data);
          await purge(50);
          s = await reopen(s);
          expect((await initial()).firstIndex).to.equal(51);
          expect(await wholeLog()).to.deep.equal([]);
          expect(await append(range(51, 52))).to.equal(52);
          s = await reopen(s);
          expect(await wholeLog()).to.deep.equal(range(51, 52));
        });

        it('a snapshot whose done never came is gone after a restart; the previous one is current', async () => {
          const a = snapData(700, 11);
          await writeSnap(metaOf('kept', a, 3), a);
          const b = snapData(900, 12);
          await chunk(metaOf('unfinished', b, 6), 0, b.subarray(0, 400), false);
          s = await reopen(s);
          expect(await getSnapshot()).to.deep.equal(metaOf('kept', a, 3));
          expect(await readAll('kept')).to.deep.equal(a);
          await refusedWith(s, { type: 'writeSnapshot', meta: metaOf('unfinished', b, 6), offset: 400, data: b.subarray(400), done: true }, 'StorageContract');
          await writeSnap(metaOf('unfinished', b, 6), b);
          s = await reopen(s);
          expect(await getSnapshot()).to.deep.equal(metaOf('unfinished', b, 6));
          await refusedWith(s, { type: 'readSnapshot', id: 'kept', offset: 0, maxBytes: 5 }, 'SnapshotGone');
        });

        it('appends, snapshots and purges asked at once are answered in order and all durable', async () => {
          await append(range(1, 10));
          const data = snapData(2000, 13);
          await writeSnap(metaOf('mid', data, 50), data, 500);
          const asks: Promise<unknown>[] = [];
          for (let b = 1; b < 10; b++) asks.push(append(range(b * 10 + 1, b * 10 + 10)));
          asks.push(purge(30), append(range(101, 105)), purge(50), append(range(106, 110)));
          const answers = await Promise.all(asks);
          expect(answers).to.deep.equal([20, 30, 40, 50, 60, 70, 80, 90, 100, undefined, 105, undefined, 110]);
          s = await reopen(s);
          const st = await initial();
          expect(st.firstIndex).to.equal(51);
          expect(decoded(st.entries)).to.deep.equal(range(51, 110));
          expect(st.snapshot).to.deep.equal(metaOf('mid', data, 50));
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
