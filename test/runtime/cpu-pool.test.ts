/**
 * runtime/cpu-pool.ts: the snapshot envelope (format byte, optional gzip, crc32), run inline for
 * small snapshots and on the process's piscina pool for large ones, with the same bytes either way.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { crc32, gunzipSync } from 'node:zlib';
import { ActorSystem } from '../../runtime/system';
import { LOCAL, type Actor, type ActorContext } from '../../runtime/actor';
import { CPU_OFFLOAD_BYTES, CPU_POOL_ID, CpuPoolActor, ensureCpuPool, packSnapshot, unpackSnapshot } from '../../runtime/cpu-pool';

/** Runs `fn` inside an actor of `system`, to get a real ActorContext. */
async function inActor<T>(system: ActorSystem, fn: (ctx: ActorContext) => Promise<T>): Promise<T> {
  const id = `probe-${Math.random().toString(36).slice(2)}`;
  const ref = await system.spawn<null>(id, { factory: (): Actor<null> => ({ receive: (_m: null, ctx: ActorContext) => fn(ctx) }) }, LOCAL);
  try { return await ref.ask<T>(null, 60_000); } finally { await system.stop(id); }
}

const text = (n: number): Uint8Array => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = 97 + ((i * 7) % 13); return b; };

describe('runtime/cpu-pool: snapshot envelopes', () => {
  let system: ActorSystem;
  beforeEach(() => { system = ActorSystem.create(); });
  afterEach(() => system.shutdown());

  it('level 0 stores the bytes as they are behind a format byte; 1-9 gzip them; unpack gives the bytes back with the crc32 of the envelope', async () => {
    const data = [text(1000), text(500)];
    await inActor(system, async (ctx) => {
      const raw = await packSnapshot(ctx, data, 0);
      expect(raw.bytes[0]).to.equal(0);
      expect(Buffer.from(raw.bytes.subarray(1)).equals(Buffer.concat(data))).to.equal(true);
      expect(raw.checksum).to.equal(crc32(raw.bytes));
      for (const level of [1, 6, 9]) {
        const z = await packSnapshot(ctx, data, level);
        expect(z.bytes[0]).to.equal(1);
        expect(z.bytes.byteLength).to.be.below(raw.bytes.byteLength / 5);
        expect(Buffer.from(gunzipSync(z.bytes.subarray(1))).equals(Buffer.concat(data))).to.equal(true);
        const back = await unpackSnapshot(ctx, [z.bytes.subarray(0, 7), z.bytes.subarray(7)]);
        expect(Buffer.from(back.data).equals(Buffer.concat(data))).to.equal(true);
        expect(back.checksum).to.equal(z.checksum);
      }
      return null;
    });
  });

  it('refuses a bad level, an empty envelope and an unknown format byte', async () => {
    await inActor(system, async (ctx) => {
      let err: unknown = null;
      try { await packSnapshot(ctx, [text(10)], 10); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(RangeError);
      for (const [bad, re] of [[new Uint8Array(0), /at least its format byte/], [Uint8Array.of(7, 1, 2), /unknown snapshot format byte 7/]] as const) {
        let e2: unknown = null;
        try { await unpackSnapshot(ctx, [bad]); } catch (e) { e2 = e; }
        expect((e2 as Error).message).to.match(re);
      }
      return null;
    });
  });

  it('a large snapshot is packed and unpacked on the pool, to the same bytes as inline', async () => {
    await ensureCpuPool(system);
    await ensureCpuPool(system); // idempotent
    const big = [text(CPU_OFFLOAD_BYTES), text(CPU_OFFLOAD_BYTES / 2)];
    const pool = system.localActor<CpuPoolActor>(CPU_POOL_ID)!;
    const before = pool.tasksRun;
    const noise = new Uint8Array(randomBytes(2 * CPU_OFFLOAD_BYTES)); // does not compress
    const { packed, unpacked, rawUnpacked, noisy } = await inActor(system, async (ctx) => {
      const p = await packSnapshot(ctx, big, 1); // 1.5 MiB to gzip: on the pool
      const u = await unpackSnapshot(ctx, [p.bytes]); // a few KiB stored: inline
      const raw = await packSnapshot(ctx, big, 0); // no compression: inline (a copy and a crc32)
      const ru = await unpackSnapshot(ctx, [raw.bytes]); // not compressed: inline
      const n = await packSnapshot(ctx, [noise], 1); // on the pool, and still over 1 MiB stored
      const nu = await unpackSnapshot(ctx, [n.bytes]); // a large gunzip: on the pool
      return { packed: p, unpacked: u, rawUnpacked: ru, noisy: nu };
    });
    expect(pool.tasksRun - before, 'the large gzip and gunzip ran on the pool, nothing else').to.equal(3);
    expect(Buffer.from(noisy.data).equals(Buffer.from(noise))).to.equal(true);
    expect(Buffer.from(rawUnpacked.data).equals(Buffer.concat(big))).to.equal(true);
    const bare = ActorSystem.create(); // a system without a pool: inline
    const inline = await inActor(bare, (ctx) => packSnapshot(ctx, big, 1)).finally(() => bare.shutdown());
    expect(Buffer.from(packed.bytes).equals(Buffer.from(inline.bytes))).to.equal(true);
    expect(packed.checksum).to.equal(inline.checksum);
    expect(Buffer.from(unpacked.data).equals(Buffer.concat(big))).to.equal(true);
  });

  it('nodes starting in parallel share one pool actor', async () => {
    await Promise.all([ensureCpuPool(system), ensureCpuPool(system), ensureCpuPool(system)]);
    expect(system.actorIds().filter((id) => id === CPU_POOL_ID)).to.have.length(1);
  });
});
