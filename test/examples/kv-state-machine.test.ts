/**
 * The demo's KV state machine (examples/kv/kv-state-machine.ts): command results, lastApplied,
 * non-normal entries, local queries, and the digest used to compare replicas.
 */
import { expect } from 'chai';
import type { Entry, LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../../actors/raft/core/types';
import { createKv, encodeKv, KvStateMachine, type KvCommand, type KvResult } from '../../examples/kv/kv-state-machine';

interface Digest { appliedIndex: number; keys: number; sha256: string }

/** Builds consecutive entries from index `start`, all in term 1. */
function entries(start: number, items: ReadonlyArray<KvCommand | Uint8Array | 'blank' | 'config'>): Entry[] {
  const cfg: Membership = { members: [1 as NodeId], nonVoters: [], membersAfterConsensus: null };
  return items.map((it, k): Entry => {
    const index = (start + k) as LogIndex;
    const term = 1 as Term;
    if (it === 'blank') return { kind: 'blank', index, term };
    if (it === 'config') return { kind: 'config', index, term, membership: cfg };
    return { kind: 'normal', index, term, payload: it instanceof Uint8Array ? it : encodeKv(it) };
  });
}

/** A machine that has applied `cmds` from index 1, one entry each; returns the machine and results. */
function run(cmds: ReadonlyArray<KvCommand | Uint8Array | 'blank' | 'config'>): { kv: KvStateMachine; results: KvResult[] } {
  const kv = new KvStateMachine();
  const results = kv.apply(entries(1, cmds));
  return { kv, results };
}

const digest = (kv: KvStateMachine): Digest => kv.query({ q: 'digest' }) as Digest;
const raw = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('KvStateMachine', () => {
  it('starts empty with nothing applied', () => {
    const kv = createKv();
    expect(kv).to.be.instanceOf(KvStateMachine);
    expect(kv.lastApplied()).to.equal(0);
    expect(kv.query({ q: 'size' })).to.equal(0);
    expect(kv.query({ q: 'get', key: 'a' })).to.equal(null);
    expect(kv.apply([])).to.deep.equal([]);
    expect(kv.lastApplied()).to.equal(0);
  });

  describe('commands', () => {
    it('put then get', () => {
      const { kv, results } = run([
        { op: 'get', key: 'a' },
        { op: 'put', key: 'a', value: '1' },
        { op: 'get', key: 'a' },
        { op: 'put', key: 'a', value: '2' },
        { op: 'get', key: 'a' },
      ]);
      expect(results).to.deep.equal([
        { ok: true, value: null },
        { ok: true, value: null },
        { ok: true, value: '1' },
        { ok: true, value: null },
        { ok: true, value: '2' },
      ]);
      expect(kv.query({ q: 'get', key: 'a' })).to.equal('2');
      expect(kv.query({ q: 'size' })).to.equal(1);
    });

    it('put of an empty string stores the empty string, not a missing key', () => {
      const { kv, results } = run([{ op: 'put', key: 'e', value: '' }, { op: 'get', key: 'e' }]);
      expect(results[1]).to.deep.equal({ ok: true, value: '' });
      expect(kv.query({ q: 'size' })).to.equal(1);
    });

    it('append creates a missing key and concatenates onto an existing one', () => {
      const { kv, results } = run([
        { op: 'append', key: 'log', value: 'a' },
        { op: 'append', key: 'log', value: 'bc' },
        { op: 'get', key: 'log' },
      ]);
      expect(results).to.deep.equal([{ ok: true, value: null }, { ok: true, value: null }, { ok: true, value: 'abc' }]);
      expect(kv.query({ q: 'get', key: 'log' })).to.equal('abc');
    });

    it('cas with a matching expected value swaps', () => {
      const { kv, results } = run([
        { op: 'cas', key: 'k', expected: null, value: 'first' }, // absent key matches null
        { op: 'cas', key: 'k', expected: 'first', value: 'second' },
      ]);
      expect(results).to.deep.equal([{ ok: true, value: null }, { ok: true, value: null }]);
      expect(kv.query({ q: 'get', key: 'k' })).to.equal('second');
    });

    it('cas with a mismatched expected value fails, reports the current value and changes nothing', () => {
      const { kv, results } = run([
        { op: 'put', key: 'k', value: 'v1' },
        { op: 'cas', key: 'k', expected: 'other', value: 'v2' },
        { op: 'cas', key: 'k', expected: null, value: 'v3' },
        { op: 'cas', key: 'missing', expected: 'x', value: 'v4' },
      ]);
      expect(results.slice(1)).to.deep.equal([
        { ok: false, error: 'cas mismatch', value: 'v1' },
        { ok: false, error: 'cas mismatch', value: 'v1' },
        { ok: false, error: 'cas mismatch', value: null },
      ]);
      expect(kv.query({ q: 'get', key: 'k' })).to.equal('v1');
      expect(kv.query({ q: 'get', key: 'missing' })).to.equal(null);
      expect(kv.query({ q: 'size' })).to.equal(1);
    });

    it('delete returns the value it removed, or null when the key was absent', () => {
      const { kv, results } = run([
        { op: 'put', key: 'd', value: 'gone' },
        { op: 'delete', key: 'd' },
        { op: 'delete', key: 'd' },
        { op: 'get', key: 'd' },
      ]);
      expect(results.slice(1)).to.deep.equal([{ ok: true, value: 'gone' }, { ok: true, value: null }, { ok: true, value: null }]);
      expect(kv.query({ q: 'size' })).to.equal(0);
    });

    it('an unknown op fails with a message naming it', () => {
      const { results } = run([raw('{"op":"incr","key":"a"}')]);
      expect(results).to.deep.equal([{ ok: false, error: 'unknown op incr' }]);
    });

    it('a command whose value is not a string is refused as malformed and changes nothing', () => {
      // A put without a value must not store the string "undefined"; an object must not become
      // "[object Object]". Either would be a silent client bug replicated to every node.
      const { kv, results } = run([
        raw('{"op":"put","key":"a"}'),
        raw('{"op":"append","key":"b","value":{"x":1}}'),
        raw('{"op":"cas","key":"c","expected":null,"value":[1]}'),
      ]);
      for (const r of results) expect(r.ok, JSON.stringify(r)).to.equal(false);
      expect(kv.query({ q: 'size' })).to.equal(0);
    });
  });

  describe('malformed payloads', () => {
    const bad: Array<[string, Uint8Array]> = [
      ['not JSON', raw('put a 1')],
      ['empty', new Uint8Array(0)],
      ['JSON null', raw('null')],
      ['a JSON number', raw('42')],
      ['a JSON array', raw('["put","a","1"]')],
      ['no key', raw('{"op":"put","value":"1"}')],
      ['a numeric key', raw('{"op":"put","key":1,"value":"1"}')],
      ['invalid UTF-8', Uint8Array.of(0xff, 0xfe, 0xfd)],
    ];
    for (const [name, payload] of bad) {
      it(`${name}: ok:false, nothing changes, lastApplied still advances`, () => {
        const kv = new KvStateMachine();
        kv.apply(entries(1, [{ op: 'put', key: 'x', value: 'y' }]));
        const before = digest(kv);
        const results = kv.apply(entries(2, [payload]));
        expect(results).to.have.length(1);
        expect(results[0].ok).to.equal(false);
        expect((results[0] as { error: string }).error).to.be.a('string').and.not.equal('');
        expect(kv.lastApplied()).to.equal(2);
        expect(digest(kv).sha256).to.equal(before.sha256);
        expect(kv.query({ q: 'get', key: 'x' })).to.equal('y');
      });
    }

    it('a malformed entry in the middle of a batch does not stop the rest', () => {
      const { kv, results } = run([
        { op: 'put', key: 'a', value: '1' },
        raw('}{'),
        { op: 'put', key: 'b', value: '2' },
      ]);
      expect(results.map((r) => r.ok)).to.deep.equal([true, false, true]);
      expect(results[1]).to.deep.equal({ ok: false, error: 'malformed command' });
      expect(kv.lastApplied()).to.equal(3);
      expect(kv.query({ q: 'size' })).to.equal(2);
    });
  });

  describe('non-normal entries and lastApplied', () => {
    it('blank and config entries answer {ok:true, value:null}, change no data, and advance lastApplied', () => {
      const { kv, results } = run([{ op: 'put', key: 'a', value: '1' }, 'blank', 'config', 'blank']);
      expect(results.slice(1)).to.deep.equal([{ ok: true, value: null }, { ok: true, value: null }, { ok: true, value: null }]);
      expect(kv.lastApplied()).to.equal(4);
      expect(kv.query({ q: 'size' })).to.equal(1);
    });

    it('lastApplied is the index of the last entry of each batch', () => {
      const kv = new KvStateMachine();
      kv.apply(entries(1, ['blank', 'blank']));
      expect(kv.lastApplied()).to.equal(2);
      kv.apply(entries(3, [{ op: 'put', key: 'k', value: 'v' }]));
      expect(kv.lastApplied()).to.equal(3);
      kv.apply(entries(4, ['config', { op: 'get', key: 'k' }, 'blank']));
      expect(kv.lastApplied()).to.equal(6);
    });

    it('returns one result per entry, in order', () => {
      const cmds: KvCommand[] = [];
      for (let i = 0; i < 50; i++) cmds.push({ op: 'append', key: `k${i % 5}`, value: String(i) });
      cmds.push({ op: 'get', key: 'k3' });
      const { results } = run(cmds);
      expect(results).to.have.length(51);
      expect(results.slice(0, 50).every((r) => r.ok && r.value === null)).to.equal(true);
      // k3 got 3, 8, 13, ..., 48 appended in index order.
      expect(results[50]).to.deep.equal({ ok: true, value: '381318232833384348' });
    });
  });

  describe('queries', () => {
    it('get, size and digest read local state', () => {
      const { kv } = run([{ op: 'put', key: 'a', value: '1' }, { op: 'put', key: 'b', value: '2' }]);
      expect(kv.query({ q: 'get', key: 'a' })).to.equal('1');
      expect(kv.query({ q: 'get', key: 'zz' })).to.equal(null);
      expect(kv.query({ q: 'size' })).to.equal(2);
      const d = digest(kv);
      expect(d.appliedIndex).to.equal(2);
      expect(d.keys).to.equal(2);
      expect(d.sha256).to.match(/^[0-9a-f]{64}$/);
    });

    it('an unknown query throws TypeError', () => {
      expect(() => new KvStateMachine().query({ q: 'keys' } as never)).to.throw(TypeError, /unknown query/);
    });

    it('results survive a structured clone (they cross threads to clients)', () => {
      const { results } = run([{ op: 'put', key: 'a', value: '1' }, { op: 'cas', key: 'a', expected: '0', value: '2' }, raw('x')]);
      expect(structuredClone(results)).to.deep.equal(results);
    });
  });

  describe('digest', () => {
    const script: KvCommand[] = [
      { op: 'put', key: 'a', value: '1' },
      { op: 'append', key: 'a', value: '2' },
      { op: 'put', key: 'b', value: 'x' },
      { op: 'cas', key: 'b', expected: 'x', value: 'y' },
      { op: 'cas', key: 'b', expected: 'x', value: 'z' },
      { op: 'put', key: 'c', value: '' },
      { op: 'delete', key: 'c' },
      { op: 'put', key: 'd', value: 'δ unicode ✓' },
    ];

    it('two machines fed the same entries have equal digests, however the batches were cut', () => {
      const es = entries(1, [...script, 'blank', 'config']);
      const one = new KvStateMachine();
      one.apply(es);
      const two = new KvStateMachine();
      for (const e of es) two.apply([e]);
      const three = new KvStateMachine();
      three.apply(es.slice(0, 3));
      three.apply(es.slice(3, 7));
      three.apply(es.slice(7));
      expect(digest(two)).to.deep.equal(digest(one));
      expect(digest(three)).to.deep.equal(digest(one));
      expect(digest(one).appliedIndex).to.equal(10);
      expect(digest(one).keys).to.equal(3);
    });

    it('the digest does not depend on insertion order, only on the data and applied index', () => {
      const { kv: a } = run([{ op: 'put', key: 'x', value: '1' }, { op: 'put', key: 'y', value: '2' }]);
      const { kv: b } = run([{ op: 'put', key: 'y', value: '2' }, { op: 'put', key: 'x', value: '1' }]);
      expect(digest(a)).to.deep.equal(digest(b));
    });

    it('machines with different data have different digests', () => {
      const base = run(script).kv;
      const variants: KvCommand[][] = [
        [...script.slice(0, -1), { op: 'put', key: 'd', value: 'δ unicode ✗' }], // one value differs
        [...script.slice(0, -1), { op: 'put', key: 'e', value: 'δ unicode ✓' }], // one key differs
        [...script.slice(0, -1), { op: 'get', key: 'd' }], // one key missing
      ];
      for (const v of variants) {
        const other = run(v).kv;
        expect(digest(other).appliedIndex).to.equal(digest(base).appliedIndex);
        expect(digest(other).sha256).to.not.equal(digest(base).sha256);
      }
    });

    it('machines at different applied indexes have different digests even with the same data', () => {
      const a = run([{ op: 'put', key: 'k', value: 'v' }]).kv;
      const b = run([{ op: 'put', key: 'k', value: 'v' }, 'blank']).kv;
      expect(digest(a).sha256).to.equal(digest(b).sha256);
      expect(digest(a)).to.not.deep.equal(digest(b));
    });

    it('the digest tells apart states that differ only in where a NUL falls between key and value', () => {
      // Keys and values are arbitrary JSON strings, so they may contain "\u0000". The digest must
      // not collide for { "a\0b": "c" } and { "a": "b\0c" }: different states, same key count.
      const a = run([{ op: 'put', key: 'a\u0000b', value: 'c' }]).kv;
      const b = run([{ op: 'put', key: 'a', value: 'b\u0000c' }]).kv;
      expect(a.query({ q: 'get', key: 'a' })).to.not.equal(b.query({ q: 'get', key: 'a' }));
      expect(digest(a).keys).to.equal(digest(b).keys);
      expect(digest(a).sha256).to.not.equal(digest(b).sha256);
    });
  });

  describe('snapshots', () => {
    const meta = (index: number): SnapshotMeta => ({ id: 's1', lastIncludedIndex: index as LogIndex, lastIncludedTerm: 1 as Term, membership: { members: [1 as NodeId], nonVoters: [], membersAfterConsensus: null }, membershipIndex: 0 as LogIndex, byteLength: 0, checksum: 0 });
    async function bytesOf(kv: KvStateMachine): Promise<Uint8Array[]> {
      const out: Uint8Array[] = [];
      for await (const c of kv.snapshot()) out.push(c);
      return out;
    }
    async function* pieces(chunks: Uint8Array[], size: number): AsyncIterable<Uint8Array> {
      const all = Buffer.concat(chunks);
      for (let i = 0; i < all.length; i += size) yield all.subarray(i, i + size);
    }

    it('round-trips in pieces of about 1 MiB, however the restore stream is cut (a character may straddle two pieces)', async () => {
      const big = 'é'.repeat(600_000); // 1.2 MB of UTF-8 per value: the map spans several pieces
      const { kv } = run([{ op: 'put', key: 'a', value: big }, { op: 'put', key: 'b', value: big + 'b' }, { op: 'put', key: 'ключ', value: 'значение' }, { op: 'put', key: 'gone', value: 'x' }, { op: 'put', key: 'c', value: big + 'c' }, { op: 'delete', key: 'gone' }]);
      const chunks = await bytesOf(kv);
      expect(chunks.length, 'header and more than one piece').to.be.at.least(3);
      for (const size of [99_991, 1 << 30]) {
        const copy = new KvStateMachine();
        await copy.restore(meta(6), pieces(chunks, size));
        expect(digest(copy), `pieces of ${size}`).to.deep.equal(digest(kv));
        expect(copy.lastApplied()).to.equal(6);
      }
      const small = run([{ op: 'put', key: 'ключ', value: 'значение ✓' }, { op: 'put', key: 'k2', value: 'line\nbreak' }]).kv;
      const byByte = new KvStateMachine();
      await byByte.restore(meta(2), pieces(await bytesOf(small), 1));
      expect(digest(byByte)).to.deep.equal(digest(small));
    });

    it('restores the format before JSON lines (one JSON object, no final newline)', async () => {
      const copy = new KvStateMachine();
      const old = new TextEncoder().encode(JSON.stringify({ applied: 3, data: [['x', '1'], ['y', '2']] }));
      await copy.restore(meta(3), pieces([old], 5));
      expect(copy.query({ q: 'get', key: 'y' })).to.equal('2');
      expect(copy.lastApplied()).to.equal(3);
    });

    it('refuses a truncated, mismatched or malformed snapshot and keeps the state it had', async () => {
      const { kv } = run([{ op: 'put', key: 'a', value: '1' }, { op: 'put', key: 'b', value: '2' }]);
      const good = Buffer.concat(await bytesOf(kv));
      const target = run([{ op: 'put', key: 'keep', value: 'me' }]).kv;
      const before = digest(target);
      const cases: Array<[Uint8Array, number, RegExp]> = [
        [good.subarray(0, good.length - 4), 2, /./],                 // cut inside the last line
        [good, 9, /meta says 9/],                                     // another index
        [Buffer.from(good.toString().replace('"keys":2', '"keys":3')), 2, /header says 3/],
        [Buffer.from('{"format":7,"applied":2,"keys":0}\n'), 2, /format 7/],
        [Buffer.from('{"format":2,"applied":2,"keys":1}\n[1,2]\n'), 2, /pair/],
        [Buffer.alloc(0), 2, /empty/],
      ];
      for (const [bytes, index, msg] of cases) {
        let err: Error | null = null;
        await target.restore(meta(index), pieces([bytes], 3)).catch((e: Error) => { err = e; });
        expect(err, String(msg)).to.be.instanceOf(Error);
        expect(err!.message).to.match(msg);
        expect(digest(target)).to.deep.equal(before);
      }
    });
  });
});
