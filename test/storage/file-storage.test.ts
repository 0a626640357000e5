/**
 * FileStorage: the conformance suite (with restarts), group commit, segments, the atomic hard
 * state, the directory lock, and recovery from every crash image docs/STORAGE.md names. Each store
 * is a real actor on an ActorSystem, writing real files in a temp directory.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ActorSystem } from '../../runtime/system';
import { LOCAL } from '../../runtime/actor';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, LogIndex, NodeId, Term } from '../../actors/raft/core/types';
import {
  DEFAULT_SEGMENT_BYTES, FileStorageActor, FileStorageStats, fileStorageSpec, readFileStorage, StorageIoError, StorageLockedError,
  type FileStorageOptions,
} from '../../storage/file-storage';
import { CorruptLogError, encodeRecord } from '../../storage/record-log';
import { crc32 } from 'node:zlib';
import type { SnapshotMeta } from '../../actors/raft/core/types';
import { StorageContractError, type StorageMsg, type StoredState } from '../../storage/storage';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import { storageConformanceSuite, type StorageUnderTest } from './conformance';

const ix = (n: number): LogIndex => n as LogIndex;
const tm = (n: number): Term => n as Term;
const entry = (i: number, t = 1, bytes = 40): Entry => ({ kind: 'normal', index: ix(i), term: tm(t), payload: new Uint8Array(bytes).fill(i & 0xff) });
const entries = (from: number, to: number, t = 1, bytes = 40): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, t, bytes));

interface OpenStore extends StorageUnderTest {
  readonly id: string;
  readonly dir: string;
  ask<R = unknown>(msg: StorageMsg): Promise<R>;
}

/** One ActorSystem per file; each store is a FileStorage actor on it (local placement). */
class Harness {
  readonly lines: Record<string, unknown>[] = [];
  readonly system = ActorSystem.create({
    logger: pino({ level: 'info' }, { write: (line: string) => { this.lines.push(JSON.parse(line) as Record<string, unknown>); } }),
  });
  private readonly dirs: string[] = [];
  private n = 0;

  tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'actor-raft-fs-'));
    this.dirs.push(d);
    return d;
  }

  async open(dir: string, opts: Partial<FileStorageOptions> = {}): Promise<OpenStore> {
    const id = `fs-${++this.n}`;
    const ref = await this.system.spawn<StorageMsg>(id, { factory: () => new FileStorageActor({ dir, ...opts }) }, LOCAL);
    const ask = <R>(msg: StorageMsg): Promise<R> => ref.ask<R>(msg);
    return { id, dir, ask, receive: ask };
  }

  async close(s: StorageUnderTest): Promise<void> {
    const id = (s as OpenStore).id;
    if (this.system.has(id)) await this.system.stop(id);
  }

  async reopen(s: StorageUnderTest, opts: Partial<FileStorageOptions> = {}): Promise<OpenStore> {
    await this.close(s);
    return this.open((s as OpenStore).dir, opts);
  }

  async shutdown(): Promise<void> {
    await this.system.shutdown();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

const h = new Harness();
after(() => h.shutdown());

storageConformanceSuite('FileStorageActor', () => h.open(h.tempDir()), { reopen: (s) => h.reopen(s), close: (s) => h.close(s) });
storageConformanceSuite('FileStorageActor, 4 KiB segments', () => h.open(h.tempDir(), { segmentBytes: 4096 }), {
  reopen: (s) => h.reopen(s, { segmentBytes: 4096 }), close: (s) => h.close(s),
});

const segmentsOf = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('segment-')).sort();
const lastSegment = (dir: string): string => join(dir, segmentsOf(dir).at(-1)!);
const wholeLog = async (s: OpenStore): Promise<Entry[]> => decodeEntries((await s.ask<StoredState>({ type: 'getInitialState' })).entries);
const append = (s: OpenStore, es: Entry[]): Promise<number> => s.ask<number>({ type: 'appendEntries', entries: encodeEntries(es) });

/** Asserts opening `dir` fails with CorruptLogError; returns it. */
async function openRefused(dir: string): Promise<CorruptLogError> {
  let err: unknown = null;
  try { await h.open(dir); } catch (e) { err = e; }
  expect(err, 'opening a damaged directory must be refused').to.be.instanceOf(CorruptLogError);
  return err as CorruptLogError;
}

/** A directory with entries 1..30 in three appends (each one record), closed cleanly. */
async function writtenDir(opts: Partial<FileStorageOptions> = {}): Promise<{ dir: string; recordEnds: number[] }> {
  const dir = h.tempDir();
  const s = await h.open(dir, opts);
  await s.ask({ type: 'saveHardState', hardState: { currentTerm: tm(3), votedFor: 2 as NodeId } });
  const recordEnds: number[] = [];
  for (const [a, b] of [[1, 10], [11, 20], [21, 30]]) {
    await append(s, entries(a, b));
    recordEnds.push(statSync(lastSegment(dir)).size);
  }
  await h.close(s);
  return { dir, recordEnds };
}

describe('FileStorage', () => {
  describe('options', () => {
    it('refuses bad options with an error naming the field, before any thread starts', () => {
      expect(() => fileStorageSpec({ dir: '' })).to.throw(TypeError, /dir must be a non-empty path/);
      expect(() => fileStorageSpec({ dir: 3 as unknown as string })).to.throw(TypeError, /dir/);
      expect(() => fileStorageSpec({ dir: '/tmp/x', segmentBytes: 10 })).to.throw(RangeError, /segmentBytes must be an integer in 4096\.\./);
      expect(() => fileStorageSpec({ dir: '/tmp/x', segmentBytes: 1.5 })).to.throw(RangeError, /segmentBytes/);
      expect(() => fileStorageSpec({ dir: '/tmp/x', stats: new ArrayBuffer(8) as unknown as SharedArrayBuffer })).to.throw(TypeError, /stats/);
      expect(() => fileStorageSpec({ dir: '/tmp/x', segmentbytes: 5 } as unknown as FileStorageOptions)).to.throw(TypeError, /unknown FileStorage option "segmentbytes"/);
      expect(() => fileStorageSpec(null as unknown as FileStorageOptions)).to.throw(TypeError, /must be an object/);
    });

    it('fileStorageSpec resolves the directory and defaults the segment size', () => {
      const spec = fileStorageSpec({ dir: 'relative/dir' }) as { args: FileStorageOptions };
      expect(spec.args.dir).to.equal(join(process.cwd(), 'relative/dir'));
      expect(spec.args.segmentBytes).to.equal(DEFAULT_SEGMENT_BYTES);
    });
  });

  describe('on disk', () => {
    it('a fresh directory gets a hard-state file, the first segment and a LOCK with our pid; closing removes the LOCK', async () => {
      const dir = join(h.tempDir(), 'nested', 'node-1');
      const s = await h.open(dir);
      expect(readdirSync(dir).sort()).to.deep.equal(['LOCK', 'hard-state', 'segment-0000000001.log']);
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).to.match(new RegExp(`^${process.pid} [0-9a-f-]{36}\n$`));
      await h.close(s);
      expect(existsSync(join(dir, 'LOCK'))).to.equal(false);
      expect((await readFileStorage(dir)).hardState).to.deep.equal({ currentTerm: 0, votedFor: null });
    });

    it('the hard-state file is replaced whole: one record, and no temp file left behind', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      for (let t = 1; t <= 5; t++) await s.ask({ type: 'saveHardState', hardState: { currentTerm: tm(t), votedFor: t as NodeId } });
      expect(readFileSync(join(dir, 'hard-state')).equals(Buffer.from(encodeRecord({ type: 'hardState', hardState: { currentTerm: tm(5), votedFor: 5 as NodeId } })))).to.equal(true);
      expect(existsSync(join(dir, 'hard-state.tmp'))).to.equal(false);
      await h.close(s);
    });

    it('writes each batch as records appended to the segment, the encoded entries byte for byte', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      const batch = encodeEntries(entries(1, 3));
      await s.ask({ type: 'appendEntries', entries: batch });
      const file = readFileSync(lastSegment(dir));
      expect(file.equals(Buffer.from(encodeRecord({ type: 'append', entries: batch })))).to.equal(true);
      await h.close(s);
    });

    it('rolls to a new segment past segmentBytes, seals the full one, and reads the whole log back across segments', async () => {
      const dir = h.tempDir();
      let s = await h.open(dir, { segmentBytes: 4096 });
      for (let b = 0; b < 40; b++) await append(s, entries(b * 10 + 1, b * 10 + 10, 1, 60));
      const segs = segmentsOf(dir);
      expect(segs.length).to.be.greaterThan(5);
      expect(segs[0]).to.equal('segment-0000000001.log');
      s = await h.reopen(s, { segmentBytes: 4096 });
      expect(await wholeLog(s)).to.deep.equal(entries(1, 400, 1, 60));
      // A truncation reaching back into an earlier segment is a record in the current one.
      await s.ask({ type: 'truncate', from: ix(15) });
      s = await h.reopen(s, { segmentBytes: 4096 });
      expect(await wholeLog(s)).to.deep.equal(entries(1, 14, 1, 60));
      expect(await append(s, entries(15, 16, 2))).to.equal(16);
      await h.close(s);
    });
  });

  describe('group commit', () => {
    it('one fdatasync covers every write asked while the previous one ran: far fewer fsyncs than writes', async () => {
      const stats = FileStorageStats.create();
      const dir = h.tempDir();
      const s = await h.open(dir, { stats: stats.buffer });
      const before = stats.read();
      const asks: Promise<number>[] = [];
      for (let i = 1; i <= 400; i++) asks.push(append(s, [entry(i)]));
      expect(await Promise.all(asks)).to.deep.equal(Array.from({ length: 400 }, (_, k) => k + 1));
      const after = stats.read();
      expect(after.records - before.records).to.equal(400);
      expect(after.batches - before.batches, 'log flushes').to.be.within(1, 200);
      expect(after.fsyncs - before.fsyncs).to.equal(after.batches - before.batches);
      expect(after.bytes - before.bytes).to.equal(statSync(lastSegment(dir)).size);
      await h.close(s);
    });

    it('answers a write only after its flush: a read of the file at answer time holds it', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      for (let i = 1; i <= 20; i++) {
        await append(s, [entry(i)]);
        expect((await readFileStorage(dir)).entries.length, `after write ${i}`).to.equal(i);
      }
      await h.close(s);
    });

    it('malformed messages are refused with StorageContractError, and the store goes on', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await append(s, entries(1, 2));
      const bad: unknown[] = [
        null, 42, { type: 'nonsense' }, { type: 'getEntries', from: -1, toExclusive: 3 }, { type: 'getEntries', from: 1, toExclusive: 1.5 },
        { type: 'truncate', from: 'x' }, { type: 'saveHardState', hardState: null }, { type: 'saveHardState', hardState: { currentTerm: 1, votedFor: 0 } },
      ];
      for (const msg of bad) {
        let err: unknown = null;
        try { await s.ask(msg as StorageMsg); } catch (e) { err = e; }
        expect(err, JSON.stringify(msg)).to.be.instanceOf(StorageContractError);
      }
      let garbled: unknown = null;
      try { await s.ask({ type: 'appendEntries', entries: Uint8Array.of(0, 0, 0, 9, 1) }); } catch (e) { garbled = e; }
      expect(garbled, 'undecodable entries').to.be.instanceOf(MalformedMessageError);
      expect(h.system.has(s.id), 'the store is still running').to.equal(true);
      expect(await wholeLog(s)).to.deep.equal(entries(1, 2));
      await h.close(s);
    });

    it('a refused write answers with StorageContractError and writes nothing', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await append(s, entries(1, 3));
      const size = statSync(lastSegment(dir)).size;
      let err: unknown = null;
      try { await append(s, entries(5, 6)); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(StorageContractError);
      let hsErr: unknown = null;
      try { await s.ask({ type: 'saveHardState', hardState: { currentTerm: tm(-1), votedFor: null } }); } catch (e) { hsErr = e; }
      expect(hsErr).to.be.instanceOf(StorageContractError);
      expect(statSync(lastSegment(dir)).size).to.equal(size);
      await h.close(s);
    });
  });

  describe('a failing disk', () => {
    it('a failed write answers the waiting writes with StorageIoError, then stops the actor with it', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await append(s, entries(1, 2));
      const crashes: Error[] = [];
      const off = h.system.onCrash((_id, error) => crashes.push(error));
      // Pull the file out from under it: the next writev fails (EBADF), as a dying disk's would.
      await (h.system.localActor<FileStorageActor>(s.id) as unknown as { fh: { close(): Promise<void> } }).fh.close();
      const results = await Promise.allSettled([append(s, entries(3, 3)), append(s, entries(4, 4))]);
      // The crash is reported once the actor's stopped() has run.
      for (const deadline = Date.now() + 10_000; crashes.length === 0 && Date.now() < deadline;) await new Promise((r) => setImmediate(r));
      off();
      for (const r of results) {
        expect(r.status).to.equal('rejected');
        expect((r as PromiseRejectedResult).reason).to.be.instanceOf(StorageIoError);
        expect(((r as PromiseRejectedResult).reason as StorageIoError).file).to.equal(lastSegment(dir));
      }
      expect(crashes.map((e) => e.name)).to.deep.equal(['StorageIoError']);
      expect(h.system.has(s.id)).to.equal(false);
      expect(existsSync(join(dir, 'LOCK')), 'a crashed storage releases its lock').to.equal(false);
      expect((await readFileStorage(dir)).entries).to.deep.equal(entries(1, 2));
    });
  });

  describe('a failing disk (hard state)', () => {
    it('a failed hard-state replacement answers its own askers with StorageIoError', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await s.ask({ type: 'saveHardState', hardState: { currentTerm: tm(1), votedFor: null } });
      // The directory fsync after the rename fails (EBADF), as a dying disk's would.
      await (h.system.localActor<FileStorageActor>(s.id) as unknown as { dirFh: { close(): Promise<void> } }).dirFh.close();
      let err: unknown = null;
      try { await s.ask({ type: 'saveHardState', hardState: { currentTerm: tm(2), votedFor: 3 as NodeId } }); } catch (e) { err = e; }
      expect(err, 'the asker hears the cause, not ActorGoneError').to.be.instanceOf(StorageIoError);
      expect((err as StorageIoError).op).to.equal('fsync');
    });
  });

  describe('the LOCK file', () => {
    it('a LOCK without a pid (not one this code writes: it writes LOCK whole, by link) is refused, not taken over', async () => {
      const dir = h.tempDir();
      writeFileSync(join(dir, 'LOCK'), '');
      let err: unknown = null;
      try { await h.open(dir); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(StorageLockedError);
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).to.equal('');
      expect(readdirSync(dir).filter((n) => n.startsWith('LOCK.')), 'no staging file is left behind').to.deep.equal([]);
    });

    it('refuses a directory held by another live process, naming it', async () => {
      const dir = h.tempDir();
      writeFileSync(join(dir, 'LOCK'), `${process.ppid}\n`);
      let err: unknown = null;
      try { await h.open(dir); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(StorageLockedError);
      expect((err as StorageLockedError).pid).to.equal(process.ppid);
      expect((err as Error).message).to.include(dir);
      expect(readFileSync(join(dir, 'LOCK'), 'utf8').trim(), 'the other process keeps its lock').to.equal(String(process.ppid));
    });

    it('takes over the lock of a process that died (a SIGKILL leaves it behind)', async () => {
      const dir = h.tempDir();
      writeFileSync(join(dir, 'LOCK'), '2147483646\n'); // no such process
      const s = await h.open(dir);
      expect(readFileSync(join(dir, 'LOCK'), 'utf8').startsWith(`${process.pid} `)).to.equal(true);
      await h.close(s);
    });

    it('refuses a second opening of a directory in this same process, and the first keeps its lock and goes on', async () => {
      const dir = h.tempDir();
      const first = await h.open(dir);
      const lock = readFileSync(join(dir, 'LOCK'), 'utf8');
      let err: unknown = null;
      try { await h.open(dir); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(StorageLockedError);
      expect((err as StorageLockedError).pid).to.equal(process.pid);
      expect((err as Error).message).to.match(/this process/);
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).to.equal(lock);
      expect(await append(first, entries(1, 2))).to.equal(2);
      await h.close(first);
      expect(existsSync(join(dir, 'LOCK'))).to.equal(false);
    });
  });

  describe('recovery from crash images', () => {
    it('a truncated last record: cut off and logged; every earlier record kept; the node goes on', async () => {
      const { dir, recordEnds } = await writtenDir();
      const seg = lastSegment(dir);
      for (const cut of [recordEnds[2] - 1, recordEnds[1] + 3, recordEnds[1] + 12]) {
        truncateSync(seg, cut);
        expect((await readFileStorage(dir)).tornBytes).to.equal(cut - recordEnds[1]);
        const s = await h.open(dir);
        expect(await wholeLog(s)).to.deep.equal(entries(1, 20));
        expect(statSync(seg).size, 'the torn tail is cut from the file').to.equal(recordEnds[1]);
        const warn = h.lines.find((l) => l.msg === 'recovery cut a torn tail (a write the crash cut short; it was never acknowledged)' && l.file === seg && l.tornBytes === cut - recordEnds[1]);
        expect(warn, 'the cut is logged with the file and byte count').to.not.equal(undefined);
        expect(await append(s, entries(21, 30))).to.equal(30);
        await h.close(s);
        expect((await readFileStorage(dir)).entries).to.deep.equal(entries(1, 30));
      }
    });

    it('garbage or zeros after the last record: cut off; the whole records stay', async () => {
      for (const tail of [Buffer.from('\u0000\u0001garbage that is not a record'), Buffer.alloc(4096), Buffer.from([0, 0, 0, 9, 1, 2])]) {
        const { dir, recordEnds } = await writtenDir();
        appendFileSync(lastSegment(dir), tail);
        const s = await h.open(dir);
        expect(await wholeLog(s)).to.deep.equal(entries(1, 30));
        expect(statSync(lastSegment(dir)).size).to.equal(recordEnds[2]);
        await h.close(s);
      }
    });

    it('a flipped byte in the middle of a segment: refuses to start, naming the file and the record offset', async () => {
      const { dir, recordEnds } = await writtenDir();
      const seg = lastSegment(dir);
      const bytes = readFileSync(seg);
      bytes[recordEnds[0] + 30] ^= 0x10; // inside the second record
      writeFileSync(seg, bytes);
      const err = await openRefused(dir);
      expect(err.file).to.equal(seg);
      expect(err.offset).to.equal(recordEnds[0]);
      expect(err.message).to.include(`${seg}: corrupt record at byte offset ${recordEnds[0]}`);
      expect(readFileSync(seg).equals(bytes), 'a refused start changes nothing').to.equal(true);
      expect(existsSync(join(dir, 'LOCK')), 'and leaves no lock').to.equal(false);
    });

    it('a damaged length field in the middle that points past the end is damage, not a torn tail', async () => {
      const { dir, recordEnds } = await writtenDir();
      const seg = lastSegment(dir);
      const bytes = readFileSync(seg);
      bytes.writeUInt32BE(100_000, recordEnds[0]);
      writeFileSync(seg, bytes);
      expect((await openRefused(dir)).offset).to.equal(recordEnds[0]);
    });

    it('a missing segment in the middle, or the last one after a sealed segment: refuses, naming the missing file', async () => {
      const a = h.tempDir();
      let s = await h.open(a, { segmentBytes: 4096 });
      for (let b = 0; b < 20; b++) await append(s, entries(b * 10 + 1, b * 10 + 10, 1, 60));
      await h.close(s);
      const segs = segmentsOf(a);
      expect(segs.length).to.be.greaterThan(3);
      const copy = h.tempDir();
      for (const n of readdirSync(a)) writeFileSync(join(copy, n), readFileSync(join(a, n)));
      unlinkSync(join(a, segs[1]));
      const mid = await openRefused(a);
      expect(mid.file).to.equal(join(a, segs[1]));
      expect(mid.message).to.match(/segment 2 is missing/);
      unlinkSync(join(copy, segs.at(-1)!));
      const last = await openRefused(copy);
      expect(last.file).to.equal(join(copy, segs.at(-1)!));
      expect(last.message).to.match(/is missing: segment \d+ was closed/);
    });

    it('segment 1 missing when it is the only one: refuses, since the hard-state file is written only after it', async () => {
      const { dir } = await writtenDir();
      unlinkSync(join(dir, 'segment-0000000001.log'));
      const err = await openRefused(dir);
      expect(err.file).to.equal(join(dir, 'segment-0000000001.log'));
      expect(err.message).to.match(/segment 1 is missing/);
    });

    it('a crash during the very first opening (an empty segment 1, no hard-state file yet) starts fresh', async () => {
      const dir = h.tempDir();
      writeFileSync(join(dir, 'segment-0000000001.log'), Buffer.alloc(0));
      const s = await h.open(dir);
      expect(await s.ask<StoredState>({ type: 'getInitialState' })).to.deep.include({ hardState: { currentTerm: 0, votedFor: null } });
      expect(existsSync(join(dir, 'hard-state'))).to.equal(true);
      await h.close(s);
    });

    it('a crash between starting a new segment and sealing the full one: recovers and seals it', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await append(s, entries(1, 10));
      await h.close(s);
      writeFileSync(join(dir, 'segment-0000000002.log'), Buffer.alloc(0)); // created, but the seal of 1 never written
      const r = await h.open(dir);
      expect(await wholeLog(r)).to.deep.equal(entries(1, 10));
      expect(await append(r, entries(11, 12))).to.equal(12);
      await h.close(r);
      expect((await readFileStorage(dir)).entries).to.deep.equal(entries(1, 12));
      expect(statSync(join(dir, 'segment-0000000002.log')).size).to.be.greaterThan(0);
    });

    it('a crash that tore the seal of the full segment (part of it on disk) while starting a new one: recovers, cutting the torn seal', async () => {
      for (const keep of [1, 8, 10, 16]) {
        const dir = h.tempDir();
        const s = await h.open(dir);
        await append(s, entries(1, 10));
        await h.close(s);
        const seg1 = join(dir, 'segment-0000000001.log');
        const whole = statSync(seg1).size;
        const seal = encodeRecord({ type: 'seal', next: 2 });
        expect(seal.byteLength).to.equal(17);
        appendFileSync(seg1, seal.subarray(0, keep));
        writeFileSync(join(dir, 'segment-0000000002.log'), Buffer.alloc(0));
        const r = await h.open(dir);
        expect(await wholeLog(r), `${keep} bytes of the seal`).to.deep.equal(entries(1, 10));
        expect(await append(r, entries(11, 11))).to.equal(11);
        await h.close(r);
        expect(statSync(seg1).size, 'the torn seal is replaced by a whole one').to.equal(whole + 17);
        expect((await readFileStorage(dir)).entries).to.deep.equal(entries(1, 11));
      }
    });

    it('more damage than a seal at the end of a full segment before an empty new one: refuses', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await append(s, entries(1, 10));
      await h.close(s);
      appendFileSync(join(dir, 'segment-0000000001.log'), Buffer.alloc(18, 7));
      writeFileSync(join(dir, 'segment-0000000002.log'), Buffer.alloc(0));
      expect((await openRefused(dir)).message).to.match(/damaged bytes at the end of a closed segment/);
    });

    it('an unsealed segment followed by one with records: refuses', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await append(s, entries(1, 10));
      await h.close(s);
      writeFileSync(join(dir, 'segment-0000000002.log'), encodeRecord({ type: 'append', entries: encodeEntries(entries(11, 12)) }));
      const err = await openRefused(dir);
      expect(err.file).to.equal(join(dir, 'segment-0000000001.log'));
      expect(err.message).to.match(/never closed/);
    });

    it('a hard-state file from before a crash (the new one only in hard-state.tmp): starts from the old one, drops the temp file', async () => {
      const { dir } = await writtenDir();
      writeFileSync(join(dir, 'hard-state.tmp'), encodeRecord({ type: 'hardState', hardState: { currentTerm: tm(9), votedFor: 1 as NodeId } }).subarray(0, 10));
      const s = await h.open(dir);
      expect((await s.ask<StoredState>({ type: 'getInitialState' })).hardState).to.deep.equal({ currentTerm: 3, votedFor: 2 });
      expect(existsSync(join(dir, 'hard-state.tmp'))).to.equal(false);
      await h.close(s);
    });

    it('a hard-state file older than the log (term below the last entry\'s): storage hands both back as they are', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      await s.ask({ type: 'saveHardState', hardState: { currentTerm: tm(1), votedFor: null } });
      await append(s, entries(1, 5, 4));
      await h.close(s);
      // The Raft core takes the log's term with no vote (test/core: startup); storage must not invent one.
      const r = await h.open(dir);
      const st = await r.ask<StoredState>({ type: 'getInitialState' });
      expect(st.hardState).to.deep.equal({ currentTerm: 1, votedFor: null });
      expect(decodeEntries(st.entries).at(-1)!.term).to.equal(4);
      await h.close(r);
    });

    it('a damaged or missing hard-state file next to a log: refuses (the vote would be lost)', async () => {
      const { dir } = await writtenDir();
      const hs = readFileSync(join(dir, 'hard-state'));
      hs[12] ^= 1;
      writeFileSync(join(dir, 'hard-state'), hs);
      expect((await openRefused(dir)).file).to.equal(join(dir, 'hard-state'));
      unlinkSync(join(dir, 'hard-state'));
      const missing = await openRefused(dir);
      expect(missing.file).to.equal(join(dir, 'hard-state'));
      expect(missing.message).to.match(/hard-state file is missing but the log exists/);
    });

    it('an append record that does not follow the log before it: refuses at that record', async () => {
      const { dir, recordEnds } = await writtenDir();
      appendFileSync(lastSegment(dir), encodeRecord({ type: 'append', entries: encodeEntries(entries(35, 36)) }));
      appendFileSync(lastSegment(dir), encodeRecord({ type: 'truncate', from: ix(2) }));
      const err = await openRefused(dir);
      expect(err.offset).to.equal(recordEnds[2]);
      expect(err.message).to.match(/does not fit the log before it/);
    });
  });

  describe('snapshots and purges on disk', () => {
    const snapMeta = (id: string, data: Uint8Array, last: number): SnapshotMeta => ({
      id, lastIncludedIndex: ix(last), lastIncludedTerm: tm(1), membership: { members: [1 as NodeId], nonVoters: [], membersAfterConsensus: null },
      membershipIndex: ix(0), byteLength: data.byteLength, checksum: crc32(data) >>> 0,
    });
    const putSnap = async (s: OpenStore, id: string, data: Uint8Array, last: number): Promise<void> => {
      await s.ask({ type: 'writeSnapshot', meta: snapMeta(id, data, last), offset: 0, data: data.subarray(0, 100), done: false });
      await s.ask({ type: 'writeSnapshot', meta: snapMeta(id, data, last), offset: 100, data: data.subarray(100), done: true });
    };
    const bytes = (n: number, k = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + k) & 0xff);

    /** A closed directory with entries 1..200 over 4 KiB segments, snapshot 'snap-a' through 120, purged through 120. */
    async function compactedDir(): Promise<string> {
      const dir = h.tempDir();
      const s = await h.open(dir, { segmentBytes: 4096 });
      for (let b = 0; b < 20; b++) await append(s, entries(b * 10 + 1, b * 10 + 10, 1, 60));
      await putSnap(s, 'snap-a', bytes(5000), 120);
      await s.ask({ type: 'purgeLog', throughIndex: ix(120) });
      await h.close(s);
      return dir;
    }

    it('a finished snapshot is snapshot-<id>.snap plus snapshot.meta; an unfinished one a .tmp; a replaced one is deleted', async () => {
      const dir = h.tempDir();
      const s = await h.open(dir);
      const a = bytes(3000);
      await s.ask({ type: 'writeSnapshot', meta: snapMeta('a', a, 5), offset: 0, data: a.subarray(0, 100), done: false });
      expect(readdirSync(dir)).to.include('snapshot-a.tmp');
      expect(readdirSync(dir)).to.not.include('snapshot.meta');
      await s.ask({ type: 'writeSnapshot', meta: snapMeta('a', a, 5), offset: 100, data: a.subarray(100), done: true });
      expect(readdirSync(dir).filter((n) => n.startsWith('snapshot')).sort()).to.deep.equal(['snapshot-a.snap', 'snapshot.meta']);
      expect(readFileSync(join(dir, 'snapshot-a.snap')).equals(Buffer.from(a))).to.equal(true);
      expect(readFileSync(join(dir, 'snapshot.meta')).equals(Buffer.from(encodeRecord({ type: 'snapshotMeta', meta: snapMeta('a', a, 5) })))).to.equal(true);
      await putSnap(s, 'b', bytes(4000, 2), 9);
      expect(readdirSync(dir).filter((n) => n.startsWith('snapshot')).sort()).to.deep.equal(['snapshot-b.snap', 'snapshot.meta']);
      await h.close(s);
      expect((await readFileStorage(dir)).snapshot).to.deep.equal(snapMeta('b', bytes(4000, 2), 9));
    });

    it('a purge writes log-start and deletes the segments it covers whole (never the current one); recovery starts from there', async () => {
      const stats = FileStorageStats.create();
      const dir = h.tempDir();
      let s = await h.open(dir, { segmentBytes: 4096, stats: stats.buffer });
      for (let b = 0; b < 20; b++) await append(s, entries(b * 10 + 1, b * 10 + 10, 1, 60));
      const before = segmentsOf(dir);
      await putSnap(s, 'snap-a', bytes(5000), 120);
      await s.ask({ type: 'purgeLog', throughIndex: ix(120) });
      const after = segmentsOf(dir);
      expect(after.length).to.be.lessThan(before.length);
      const firstSeq = Number(/(\d{10})/.exec(after[0])![1]);
      expect(stats.read().segmentsDeleted).to.equal(firstSeq - 1);
      expect(readFileSync(join(dir, 'log-start')).equals(Buffer.from(encodeRecord({ type: 'logStart', purgedThrough: ix(120), firstSegment: firstSeq })))).to.equal(true);
      s = await h.reopen(s, { segmentBytes: 4096 });
      expect(await wholeLog(s)).to.deep.equal(entries(121, 200, 1, 60));
      // Purging everything: the current segment stays, the log continues after the purge point.
      await putSnap(s, 'snap-b', bytes(100, 3), 250);
      await s.ask({ type: 'purgeLog', throughIndex: ix(250) });
      expect(segmentsOf(dir)).to.deep.equal([segmentsOf(dir).at(-1)]);
      s = await h.reopen(s, { segmentBytes: 4096 });
      expect((await s.ask<StoredState>({ type: 'getInitialState' })).firstIndex).to.equal(251);
      expect(await append(s, entries(251, 252))).to.equal(252);
      await h.close(s);
      const r = await readFileStorage(dir);
      expect(r.firstIndex).to.equal(251);
      expect(r.entries).to.deep.equal(entries(251, 252));
    });

    it('a crash after log-start was replaced but before the segments were deleted: recovery deletes them', async () => {
      const dir = await compactedDir();
      const start = segmentsOf(dir)[0];
      const seq = Number(/(\d{10})/.exec(start)![1]);
      const stale = join(dir, `segment-${String(seq - 1).padStart(10, '0')}.log`);
      writeFileSync(stale, encodeRecord({ type: 'append', entries: encodeEntries(entries(1, 2)) }));
      const s = await h.open(dir, { segmentBytes: 4096 });
      expect(existsSync(stale)).to.equal(false);
      expect(await wholeLog(s)).to.deep.equal(entries(121, 200, 1, 60));
      await h.close(s);
    });

    it('leftover .tmp files and a .snap no meta names (a crash mid-snapshot) are deleted at start', async () => {
      const dir = await compactedDir();
      writeFileSync(join(dir, 'snapshot-half.tmp'), bytes(10));
      writeFileSync(join(dir, 'snapshot-orphan.snap'), bytes(10));
      writeFileSync(join(dir, 'snapshot.meta.tmp'), bytes(3));
      writeFileSync(join(dir, 'log-start.tmp'), bytes(3));
      const s = await h.open(dir, { segmentBytes: 4096 });
      expect(readdirSync(dir).filter((n) => n.startsWith('snapshot') || n.startsWith('log-start')).sort()).to.deep.equal(['log-start', 'snapshot-snap-a.snap', 'snapshot.meta']);
      expect((await s.ask<StoredState>({ type: 'getInitialState' })).snapshot!.id).to.equal('snap-a');
      await h.close(s);
    });

    it('a damaged or cut .snap, a damaged or missing snapshot.meta, a missing .snap, a damaged log-start or a missing first segment: refuses, naming the file', async () => {
      const cases: Array<[string, (dir: string) => void, string]> = [
        ['flipped byte in the .snap', (d) => { const b = readFileSync(join(d, 'snapshot-snap-a.snap')); b[77] ^= 1; writeFileSync(join(d, 'snapshot-snap-a.snap'), b); }, 'snapshot-snap-a.snap'],
        ['cut .snap', (d) => truncateSync(join(d, 'snapshot-snap-a.snap'), 4000), 'snapshot-snap-a.snap'],
        ['missing .snap', (d) => unlinkSync(join(d, 'snapshot-snap-a.snap')), 'snapshot-snap-a.snap'],
        ['damaged snapshot.meta', (d) => { const b = readFileSync(join(d, 'snapshot.meta')); b[20] ^= 1; writeFileSync(join(d, 'snapshot.meta'), b); }, 'snapshot.meta'],
        ['missing snapshot.meta (log-start says entries were purged)', (d) => unlinkSync(join(d, 'snapshot.meta')), 'log-start'],
        ['damaged log-start', (d) => { const b = readFileSync(join(d, 'log-start')); b[10] ^= 1; writeFileSync(join(d, 'log-start'), b); }, 'log-start'],
        ['missing first segment', (d) => unlinkSync(join(d, segmentsOf(d)[0])), 'segment-'],
      ];
      for (const [what, damage, file] of cases) {
        const dir = await compactedDir();
        damage(dir);
        const names = readdirSync(dir).sort();
        const err = await openRefused(dir);
        expect(err.file, what).to.include(join(dir, file));
        expect(readdirSync(dir).sort(), `${what}: a refused start deletes nothing`).to.deep.equal(names);
      }
    });
  });
});
