/**
 * Storage-engine benchmark for the durable Raft log: the numbers behind the choice between
 *
 *   A  our own segmented append-only file with group commit: each batch of records is framed as
 *      `u32 bodyLength | u32 crc32 | body` (crc32 from node:zlib over the length field and the body),
 *      written with ONE FileHandle.writev and made durable with ONE FileHandle.datasync;
 *   B  the embedded store `lmdb` (npm), one transaction per batch, keys = u64 big-endian index;
 *   C  `better-sqlite3` (npm), journal_mode=WAL, synchronous=FULL, one transaction per batch,
 *      table `log (idx INTEGER PRIMARY KEY, body BLOB)`.
 *
 * Only durable configurations are what we compare: a batch counts as done once it is on disk
 * (fsync'd). One lmdb configuration that does NOT wait for the flush is also measured, because it is
 * lmdb's default behaviour for a plain `await db.transaction(...)`; it is labelled `durable: false`.
 *
 * For every engine and each batch size (1, 10, 100, 1000 records of 100 bytes) the append loop runs
 * for `--seconds`, awaiting each batch before starting the next, in a fresh temp dir (os.tmpdir +
 * mkdtemp, deleted afterwards). This is repeated `--runs` times (runs are interleaved across engines
 * so that noise on a shared machine hits all of them alike). Reported per batch size: records/s,
 * batches/s (= durable commits/s: one fdatasync for A; see the engine notes for B and C), per-batch
 * latency p50/p99, each the median over the runs. Recovery: a log of `--recovery-records` (100k)
 * records is written, the engine is closed, and the time to reopen and read back every record (for A
 * including checksum verification) is measured. The page cache is warm for that scan (the files were
 * just written), so it measures CPU + syscall cost, not cold disk reads.
 *
 * lmdb and better-sqlite3 are NOT dependencies of this project. They are loaded with `require` inside
 * try/catch; when missing, the engine is reported as `{ "skipped": "not installed: ..." }`. To run
 * them, install them somewhere else and point the script at that node_modules directory:
 *
 *   mkdir -p .scratch/engines && cd .scratch/engines && npm init -y && npm install lmdb better-sqlite3
 *   STORAGE_ENGINES_MODULES=/abs/path/.scratch/engines/node_modules \
 *     npx ts-node --transpile-only bench/storage-engines.ts
 *
 * STORAGE_ENGINES_MODULES=<dir> (a node_modules directory, or the directory that contains one) makes
 * the script resolve the optional packages from there via createRequire. Without it the ordinary
 * resolution applies, so NODE_PATH=<dir>/node_modules works as well.
 *
 *   npx ts-node --transpile-only bench/storage-engines.ts [--seconds N] [--runs N] [--out file]
 *       [--batches 1,10,100,1000] [--engines A,lmdb,sqlite] [--recovery-records N]
 *
 * Progress goes to stderr, the JSON report to stdout (and to --out when given).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, release, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';

const { values: argv } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    batches: { type: 'string', default: '1,10,100,1000' },
    engines: { type: 'string', default: 'A,lmdb,sqlite' },
    'recovery-records': { type: 'string', default: '100000' },
    out: { type: 'string' },
  },
});

function positiveInts(name: string, value: string, max: number): number[] {
  const xs = value.split(',').map(Number);
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x > max) throw new RangeError(`--${name}: ${value} (each must be an integer in 1..${max})`);
  }
  return xs;
}

const SECONDS = positiveInts('seconds', argv.seconds!, 600)[0];
const RUNS = positiveInts('runs', argv.runs!, 50)[0];
const BATCH_SIZES = positiveInts('batches', argv.batches!, 100_000);
const RECOVERY_RECORDS = positiveInts('recovery-records', argv['recovery-records']!, 10_000_000)[0];
const ENGINE_FAMILIES = new Set(argv.engines!.split(',').map((s) => s.trim()));
const RECORD_BYTES = 100;
const RECOVERY_FILL_BATCH = 1000;

function progress(line: string): void {
  process.stderr.write(`[storage-engines] ${line}\n`);
}

// ---------------------------------------------------------------------------------------------
// Engine interface

/** An open log that appends batches; `appendBatch` resolves when the engine reports the batch done. */
interface OpenLog {
  appendBatch(firstIndex: number, bodies: readonly Buffer[]): Promise<void>;
  close(): Promise<void>;
}

interface ScanResult {
  records: number;
  bodyBytes: number;
}

interface EngineVariant {
  /** Key in the JSON report. */
  readonly id: string;
  /** Which `--engines` family selects it. */
  readonly family: 'A' | 'lmdb' | 'sqlite';
  /** True when `appendBatch` only resolves after the batch is fsync'd. */
  readonly durable: boolean;
  readonly description: string;
  readonly settings: Record<string, unknown>;
  /** Whether to run the recovery scan for this variant (variants sharing a format scan once). */
  readonly measureRecovery: boolean;
  open(dir: string): Promise<OpenLog>;
  /** Reopen the log in `dir` and read every record back. */
  scan(dir: string): Promise<ScanResult>;
}

type EngineSlot = { variants: EngineVariant[] } | { skipped: string; variantIds: string[] };

// ---------------------------------------------------------------------------------------------
// Engine A: segmented append-only files, one writev + one fdatasync per batch

const crc32: ((data: NodeJS.ArrayBufferView, value?: number) => number) | undefined = (zlib as { crc32?: typeof zlib.crc32 }).crc32;
const FRAME_HEADER_BYTES = 8;
const SEGMENT_MAX_BYTES = 64 * 1024 * 1024;

function segmentFileName(firstIndex: number): string {
  return `segment-${String(firstIndex).padStart(20, '0')}.log`;
}

/** fsync a directory so that a newly created segment file's directory entry is durable too. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

class SegmentedFileLog implements OpenLog {
  private segment: FileHandle | undefined;
  private segmentBytes = 0;

  constructor(private readonly dir: string) {}

  private async startSegment(firstIndex: number): Promise<void> {
    if (this.segment) await this.segment.close();
    this.segment = await open(join(this.dir, segmentFileName(firstIndex)), 'wx');
    this.segmentBytes = 0;
    await syncDirectory(this.dir);
  }

  async appendBatch(firstIndex: number, bodies: readonly Buffer[]): Promise<void> {
    const checksum = crc32!;
    const headers = Buffer.allocUnsafe(FRAME_HEADER_BYTES * bodies.length);
    const iovecs: Buffer[] = new Array(bodies.length * 2);
    let batchBytes = 0;
    for (let i = 0; i < bodies.length; i++) {
      const body = bodies[i];
      const header = headers.subarray(i * FRAME_HEADER_BYTES, (i + 1) * FRAME_HEADER_BYTES);
      header.writeUInt32LE(body.length, 0);
      header.writeUInt32LE(checksum(body, checksum(header.subarray(0, 4))), 4);
      iovecs[2 * i] = header;
      iovecs[2 * i + 1] = body;
      batchBytes += FRAME_HEADER_BYTES + body.length;
    }
    if (!this.segment || (this.segmentBytes > 0 && this.segmentBytes + batchBytes > SEGMENT_MAX_BYTES)) {
      await this.startSegment(firstIndex);
    }
    const segment = this.segment!;
    // One writev per batch (libuv splits it into several writev(2) calls above IOV_MAX = 1024 buffers
    // and retries short writes itself; we still check the total).
    const { bytesWritten } = await segment.writev(iovecs, this.segmentBytes);
    if (bytesWritten !== batchBytes) throw new Error(`short writev: ${bytesWritten} of ${batchBytes} bytes`);
    this.segmentBytes += batchBytes;
    await segment.datasync();
  }

  async close(): Promise<void> {
    await this.segment?.close();
    this.segment = undefined;
  }
}

/** Read every segment in index order, verify each frame's checksum, count the records. */
async function scanSegmentedFileLog(dir: string): Promise<ScanResult> {
  const checksum = crc32!;
  const names = (await readdir(dir)).filter((n) => n.startsWith('segment-') && n.endsWith('.log')).sort();
  let records = 0;
  let bodyBytes = 0;
  for (const name of names) {
    const bytes = await readFile(join(dir, name));
    let offset = 0;
    while (offset < bytes.length) {
      if (offset + FRAME_HEADER_BYTES > bytes.length) throw new Error(`${name}: torn header at ${offset}`);
      const length = bytes.readUInt32LE(offset);
      const stored = bytes.readUInt32LE(offset + 4);
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > bytes.length) throw new Error(`${name}: torn body at ${offset}`);
      const computed = checksum(bytes.subarray(offset + FRAME_HEADER_BYTES, end), checksum(bytes.subarray(offset, offset + 4)));
      if (computed !== stored) throw new Error(`${name}: checksum mismatch at ${offset}`);
      records++;
      bodyBytes += length;
      offset = end;
    }
  }
  return { records, bodyBytes };
}

function segmentedFileEngine(): EngineSlot {
  if (typeof crc32 !== 'function') return { skipped: `node:zlib has no crc32 (needs Node >= 20.15, this is ${process.version})`, variantIds: ['A-segmented-file'] };
  return {
    variants: [
      {
        id: 'A-segmented-file',
        family: 'A',
        durable: true,
        description: 'own segmented append-only file: one FileHandle.writev + one FileHandle.datasync (fdatasync) per batch',
        settings: {
          frame: 'u32le bodyLength | u32le crc32(lengthField, body) | body',
          segmentMaxBytes: SEGMENT_MAX_BYTES,
          newSegment: 'open wx + fsync of the directory',
          preallocation: 'none (each fdatasync also commits the file size change)',
        },
        measureRecovery: true,
        open: async (dir) => new SegmentedFileLog(dir),
        scan: scanSegmentedFileLog,
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Optional npm packages

interface LoadedPackage<T> {
  module: T;
  version: string;
  packageDir: string;
}

function optionalRequire(): NodeJS.Require {
  const fromEnv = process.env.STORAGE_ENGINES_MODULES;
  if (!fromEnv) return require;
  const modulesDir = basename(fromEnv) === 'node_modules' ? fromEnv : join(fromEnv, 'node_modules');
  // createRequire resolves from the directory of this (nonexistent) file; Node does not append
  // another `node_modules` to a path segment that already is one, so `<dir>/<package>` is found.
  return createRequire(join(modulesDir, 'storage-engines-resolver.js'));
}

function loadOptional<T>(name: string): LoadedPackage<T> | { skipped: string } {
  const load = optionalRequire();
  let entry: string;
  try {
    entry = load.resolve(name);
  } catch (err) {
    return { skipped: `not installed: ${name} (${(err as Error).message.split('\n')[0]})` };
  }
  let module: T;
  try {
    module = load(name) as T;
  } catch (err) {
    return { skipped: `failed to load: ${name} (${(err as Error).message.split('\n')[0]})` };
  }
  let packageDir = dirname(entry);
  let version = 'unknown';
  for (let dir = packageDir; dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === name) {
        packageDir = dir;
        version = manifest.version ?? version;
        break;
      }
    } catch {
      // no package.json at this level; keep walking up
    }
  }
  return { module, version, packageDir };
}

// ---------------------------------------------------------------------------------------------
// Engine B: lmdb (minimal local typing of the part of its API used here)

interface LmdbOpenOptions {
  path: string;
  encoding: 'binary';
  keyEncoding: 'binary';
  overlappingSync?: boolean;
  noSync?: boolean;
}

interface LmdbDatabase {
  put(key: Buffer, value: Buffer): unknown;
  transaction<T>(action: () => T): Promise<T>;
  /** Resolves when all previous writes are committed and flushed to disk. */
  readonly flushed: PromiseLike<unknown>;
  getRange(options?: Record<string, unknown>): Iterable<{ key: Buffer; value: Buffer }>;
  close(): Promise<void>;
}

interface LmdbModule {
  open(options: LmdbOpenOptions): LmdbDatabase;
}

function u64Key(index: number): Buffer {
  const key = Buffer.allocUnsafe(8);
  key.writeBigUInt64BE(BigInt(index));
  return key;
}

type LmdbCommitWait = 'sync-commit' | 'commit-then-flushed' | 'commit-only';

function lmdbVariant(lmdb: LoadedPackage<LmdbModule>, wait: LmdbCommitWait): EngineVariant {
  const overlappingSync = wait !== 'sync-commit';
  const options = (dir: string): LmdbOpenOptions => ({ path: join(dir, 'log.mdb'), encoding: 'binary', keyEncoding: 'binary', overlappingSync });
  const descriptions: Record<LmdbCommitWait, string> = {
    'sync-commit':
      'lmdb with overlappingSync: false: classic LMDB commit that syncs inside the commit (strace with lmdb 3.5.6: pwrite of the data pages, fdatasync, then the meta page written through an O_DSYNC descriptor); await db.transaction(...) resolves after that',
    'commit-then-flushed':
      'lmdb default (overlappingSync: true): await db.transaction(...), then await db.flushed (resolves when the commit is fdatasync\'d by lmdb\'s flush after the commit)',
    'commit-only':
      'NOT DURABLE: lmdb default (overlappingSync: true), await db.transaction(...) only; that promise resolves when the commit is visible, before it is flushed to disk',
  };
  return {
    id: `B-lmdb-${wait}`,
    family: 'lmdb',
    durable: wait !== 'commit-only',
    description: descriptions[wait],
    settings: { package: `lmdb@${lmdb.version}`, overlappingSync, encoding: 'binary', keyEncoding: 'binary (u64 big-endian index)', noSync: false, noMetaSync: false },
    measureRecovery: wait === 'sync-commit',
    open: async (dir) => {
      const db = lmdb.module.open(options(dir));
      return {
        appendBatch: async (firstIndex, bodies) => {
          await db.transaction(() => {
            for (let i = 0; i < bodies.length; i++) db.put(u64Key(firstIndex + i), bodies[i]);
          });
          if (wait === 'commit-then-flushed') await db.flushed;
        },
        close: async () => {
          await db.flushed;
          await db.close();
        },
      };
    },
    scan: async (dir) => {
      const db = lmdb.module.open(options(dir));
      try {
        let records = 0;
        let bodyBytes = 0;
        for (const { value } of db.getRange({})) {
          records++;
          bodyBytes += value.length;
        }
        return { records, bodyBytes };
      } finally {
        await db.close();
      }
    },
  };
}

function lmdbEngine(): EngineSlot {
  const variantIds = ['B-lmdb-sync-commit', 'B-lmdb-commit-then-flushed', 'B-lmdb-commit-only'];
  const lmdb = loadOptional<LmdbModule>('lmdb');
  if ('skipped' in lmdb) return { skipped: lmdb.skipped, variantIds };
  return { variants: [lmdbVariant(lmdb, 'sync-commit'), lmdbVariant(lmdb, 'commit-then-flushed'), lmdbVariant(lmdb, 'commit-only')] };
}

// ---------------------------------------------------------------------------------------------
// Engine C: better-sqlite3 (minimal local typing)

interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  iterate(...params: unknown[]): IterableIterator<unknown>;
  raw(toggle?: boolean): SqliteStatement;
}

interface SqliteDatabase {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): SqliteDatabase;
  prepare(sql: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): SqliteDatabase;
}

type SqliteConstructor = new (filename: string) => SqliteDatabase;

function sqliteEngine(): EngineSlot {
  const id = 'C-better-sqlite3-wal-full';
  const loaded = loadOptional<SqliteConstructor | { default: SqliteConstructor }>('better-sqlite3');
  if ('skipped' in loaded) return { skipped: loaded.skipped, variantIds: [id] };
  const Database: SqliteConstructor = typeof loaded.module === 'function' ? loaded.module : loaded.module.default;
  const settings: Record<string, unknown> = { package: `better-sqlite3@${loaded.version}` };

  const openDatabase = (dir: string): SqliteDatabase => {
    const db = new Database(join(dir, 'log.sqlite'));
    const journalMode = db.pragma('journal_mode = WAL', { simple: true });
    db.pragma('synchronous = FULL');
    const synchronous = db.pragma('synchronous', { simple: true });
    if (journalMode !== 'wal' || synchronous !== 2) throw new Error(`sqlite settings not applied: journal_mode=${String(journalMode)} synchronous=${String(synchronous)}`);
    settings.journal_mode = journalMode;
    settings.synchronous = 'FULL (2)';
    settings.wal_autocheckpoint = db.pragma('wal_autocheckpoint', { simple: true });
    settings.sqliteVersion = (db.prepare('SELECT sqlite_version() AS version').get() as { version: string }).version;
    return db;
  };

  return {
    variants: [
      {
        id,
        family: 'sqlite',
        durable: true,
        description: 'better-sqlite3, journal_mode=WAL, synchronous=FULL (WAL fsync on every commit), one transaction per batch; synchronous API (blocks the event loop during the commit)',
        settings,
        measureRecovery: true,
        open: async (dir) => {
          const db = openDatabase(dir);
          db.exec('CREATE TABLE log (idx INTEGER PRIMARY KEY, body BLOB NOT NULL)');
          const insert = db.prepare('INSERT INTO log (idx, body) VALUES (?, ?)');
          const insertBatch = db.transaction((firstIndex: number, bodies: readonly Buffer[]) => {
            for (let i = 0; i < bodies.length; i++) insert.run(firstIndex + i, bodies[i]);
          });
          return {
            appendBatch: async (firstIndex, bodies) => insertBatch(firstIndex, bodies),
            close: async () => {
              db.close();
            },
          };
        },
        scan: async (dir) => {
          const db = openDatabase(dir);
          try {
            let records = 0;
            let bodyBytes = 0;
            for (const row of db.prepare('SELECT idx, body FROM log ORDER BY idx').raw(true).iterate()) {
              records++;
              bodyBytes += ((row as unknown[])[1] as Buffer).length;
            }
            return { records, bodyBytes };
          } finally {
            db.close();
          }
        },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Measurement

interface AppendRun {
  batches: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  batchesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  diskBytes: number;
}

interface RecoveryRun {
  records: number;
  scanMs: number;
  recordsPerSec: number;
  diskBytes: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Allocated bytes (st_blocks * 512) of every file under `dir`. */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await allocatedBytes(path) : (await stat(path)).blocks * 512;
  }
  return total;
}

async function withTempDir<T>(label: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `storage-engines-${label}-`));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** 1024 distinct random 100-byte bodies, reused round-robin. */
const BODY_POOL: Buffer[] = Array.from({ length: 1024 }, () => {
  const body = Buffer.allocUnsafe(RECORD_BYTES);
  for (let i = 0; i < RECORD_BYTES; i++) body[i] = (Math.random() * 256) | 0;
  return body;
});

function fillBatch(batch: Buffer[], firstIndex: number): void {
  for (let i = 0; i < batch.length; i++) batch[i] = BODY_POOL[(firstIndex + i) & 1023];
}

async function measureAppend(engine: EngineVariant, batchSize: number): Promise<AppendRun> {
  return withTempDir(engine.id, async (dir) => {
    const log = await engine.open(dir);
    const batch: Buffer[] = new Array(batchSize);
    let latencies = new Float64Array(1024);
    let batches = 0;
    let nextIndex = 1;
    let elapsedMs: number;
    try {
      const start = performance.now();
      const deadline = start + SECONDS * 1000;
      let now = start;
      while (now < deadline) {
        fillBatch(batch, nextIndex);
        const before = performance.now();
        await log.appendBatch(nextIndex, batch);
        now = performance.now();
        if (batches === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[batches++] = now - before;
        nextIndex += batchSize;
      }
      elapsedMs = now - start;
    } finally {
      await log.close();
    }
    const diskBytes = await allocatedBytes(dir);
    const sorted = latencies.subarray(0, batches).sort();
    const seconds = elapsedMs / 1000;
    return {
      batches,
      records: batches * batchSize,
      seconds: round(seconds),
      recordsPerSec: round((batches * batchSize) / seconds, 1),
      batchesPerSec: round(batches / seconds, 1),
      p50Ms: round(percentile(sorted, 0.5)),
      p99Ms: round(percentile(sorted, 0.99)),
      maxMs: round(sorted[batches - 1] ?? NaN),
      diskBytes,
    };
  });
}

async function measureRecovery(engine: EngineVariant): Promise<RecoveryRun> {
  return withTempDir(`${engine.id}-recovery`, async (dir) => {
    const log = await engine.open(dir);
    try {
      const batch: Buffer[] = new Array(RECOVERY_FILL_BATCH);
      for (let first = 1; first <= RECOVERY_RECORDS; first += RECOVERY_FILL_BATCH) {
        const size = Math.min(RECOVERY_FILL_BATCH, RECOVERY_RECORDS - first + 1);
        batch.length = size;
        fillBatch(batch, first);
        await log.appendBatch(first, batch);
      }
    } finally {
      await log.close();
    }
    const diskBytes = await allocatedBytes(dir);
    const start = performance.now();
    const result = await engine.scan(dir);
    const scanMs = performance.now() - start;
    if (result.records !== RECOVERY_RECORDS || result.bodyBytes !== RECOVERY_RECORDS * RECORD_BYTES) {
      throw new Error(`${engine.id}: scan found ${result.records} records / ${result.bodyBytes} bytes, expected ${RECOVERY_RECORDS}`);
    }
    return { records: result.records, scanMs: round(scanMs), recordsPerSec: round(result.records / (scanMs / 1000), 1), diskBytes };
  });
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const slots: EngineSlot[] = [];
  if (ENGINE_FAMILIES.has('A')) slots.push(segmentedFileEngine());
  if (ENGINE_FAMILIES.has('lmdb')) slots.push(lmdbEngine());
  if (ENGINE_FAMILIES.has('sqlite')) slots.push(sqliteEngine());

  const report: Record<string, unknown> = {};
  const engines: EngineVariant[] = [];
  for (const slot of slots) {
    if ('skipped' in slot) {
      for (const id of slot.variantIds) report[id] = { skipped: slot.skipped };
      progress(`${slot.variantIds.join(', ')}: skipped (${slot.skipped})`);
    } else {
      engines.push(...slot.variants);
    }
  }

  const appendRuns = new Map<string, AppendRun[]>(); // key: `${engine.id}/${batchSize}`
  const recoveryRuns = new Map<string, RecoveryRun[]>();
  for (let run = 1; run <= RUNS; run++) {
    for (const batchSize of BATCH_SIZES) {
      for (const engine of engines) {
        const result = await measureAppend(engine, batchSize);
        const key = `${engine.id}/${batchSize}`;
        appendRuns.set(key, [...(appendRuns.get(key) ?? []), result]);
        progress(
          `run ${run}/${RUNS} ${engine.id} batch=${batchSize}: ${result.recordsPerSec} records/s, ${result.batchesPerSec} batches/s, ` +
            `p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`,
        );
      }
    }
    for (const engine of engines.filter((e) => e.measureRecovery)) {
      const result = await measureRecovery(engine);
      recoveryRuns.set(engine.id, [...(recoveryRuns.get(engine.id) ?? []), result]);
      progress(`run ${run}/${RUNS} ${engine.id} recovery scan of ${result.records} records: ${result.scanMs} ms`);
    }
  }

  for (const engine of engines) {
    const append: Record<string, unknown> = {};
    for (const batchSize of BATCH_SIZES) {
      const runs = appendRuns.get(`${engine.id}/${batchSize}`) ?? [];
      append[String(batchSize)] = {
        recordsPerSec: round(median(runs.map((r) => r.recordsPerSec)), 1),
        batchesPerSec: round(median(runs.map((r) => r.batchesPerSec)), 1),
        p50Ms: round(median(runs.map((r) => r.p50Ms))),
        p99Ms: round(median(runs.map((r) => r.p99Ms))),
        diskBytesPerRecord: round(median(runs.map((r) => r.diskBytes / r.records)), 1),
        runs,
      };
    }
    const recovery = recoveryRuns.get(engine.id);
    report[engine.id] = {
      durable: engine.durable,
      description: engine.description,
      settings: engine.settings,
      append,
      recovery: recovery
        ? {
            records: RECOVERY_RECORDS,
            scanMs: round(median(recovery.map((r) => r.scanMs))),
            recordsPerSec: round(median(recovery.map((r) => r.recordsPerSec)), 1),
            diskBytes: median(recovery.map((r) => r.diskBytes)),
            pageCache: 'warm (files just written)',
            runs: recovery,
          }
        : 'not measured separately (same on-disk format as another variant)',
    };
  }

  const output = {
    benchmark: 'storage-engines',
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${release()} ${process.arch}`,
    cpus: cpus().length,
    tmpdir: tmpdir(),
    config: { seconds: SECONDS, runs: RUNS, recordBytes: RECORD_BYTES, batchSizes: BATCH_SIZES, recoveryRecords: RECOVERY_RECORDS, statistic: 'median of runs' },
    engines: report,
  };
  const json = JSON.stringify(output, null, 2);
  process.stdout.write(`${json}\n`);
  if (argv.out) writeFileSync(argv.out, `${json}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
