import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import {
  checkOperations,
  HistoryFormatError,
  kvModel,
  KvInput,
  KvOutput,
  Operation,
  parseEtcdLog,
  parseKvHistory,
  pendingOperation,
  registerModel,
  RegisterInput,
  RegisterOutput,
  UNKNOWN,
} from '../../sim/linearizability';

// shared/ sits beside the clone (locally and in CI), i.e. in the repo root's parent.
const TESTDATA = path.join(__dirname, '../../../shared/testdata/linearizability');
// Generous per-history budgets: every known-answer history finishes far inside them, and
// running out gives 'unknown', which fails the verdict assertion rather than passing.
const BUDGET_MS = 15_000;

function requireTestdata(): void {
  if (!fs.existsSync(path.join(TESTDATA, 'README.md'))) {
    throw new Error(`linearizability testdata missing: expected ${TESTDATA} (shared/ must sit beside the repo clone)`);
  }
}

type RegOp = Operation<RegisterInput, RegisterOutput>;
type KvOp = Operation<KvInput, KvOutput>;

function reg(clientId: number, input: RegisterInput, call: number, output: RegisterOutput, ret: number): RegOp {
  return { clientId, input, call, output, return: ret };
}

describe('linearizability checker', function () {
  // Known-answer runs take ~2 s in total; the budget only guards a pathological regression.
  this.timeout(60_000);

  describe('key-value histories (c01/c10/c50)', () => {
    before(requireTestdata);
    const timings: string[] = [];
    after(() => console.log(`      kv timings: ${timings.join(', ')}`));
    for (const clients of ['c01', 'c10', 'c50']) {
      for (const kind of ['ok', 'bad'] as const) {
        const file = `${clients}-${kind}.txt`;
        it(`${file} is ${kind === 'ok' ? 'linearizable' : 'not linearizable'}`, () => {
          const full = path.join(TESTDATA, file);
          const ops = parseKvHistory(fs.readFileSync(full, 'utf8'), file);
          const result = checkOperations(kvModel, ops, { timeoutMs: BUDGET_MS });
          timings.push(`${file} ${result.elapsedMs.toFixed(0)} ms`);
          expect(result.verdict).to.equal(kind === 'ok' ? 'ok' : 'illegal');
          // Split by key: one partition per key, each much smaller than the history.
          expect(result.partitions.length).to.be.greaterThan(1);
          expect(result.elapsedMs).to.be.lessThan(BUDGET_MS / 2);
        });
      }
    }
  });

  describe('Jepsen etcd register histories', () => {
    it('every etcd_NNN.log gets the verdict in etcd_expected.txt', () => {
      requireTestdata();
      const expected = new Map<number, boolean>();
      for (const line of fs.readFileSync(path.join(TESTDATA, 'etcd_expected.txt'), 'utf8').split(/\r?\n/)) {
        if (line.trim() === '') continue;
        const m = /^(\d+) (true|false)$/.exec(line.trim());
        if (!m) throw new Error(`bad line in etcd_expected.txt: ${line}`);
        expected.set(Number(m[1]), m[2] === 'true');
      }
      const files = fs.readdirSync(TESTDATA).filter((f) => /^etcd_\d+\.log$/.test(f)).sort();
      expect(files.length).to.be.greaterThan(100);
      const mismatches: string[] = [];
      let checked = 0;
      let slowest = 0;
      const start = performance.now();
      for (const file of files) {
        const n = Number(file.slice(5, -4));
        const ops = parseEtcdLog(fs.readFileSync(path.join(TESTDATA, file), 'utf8'), file);
        const want = expected.get(n);
        if (want === undefined) {
          // Only an empty log may lack a verdict (etcd_095.log is empty); anything else would
          // be a history silently left unchecked.
          if (ops.length > 0) mismatches.push(`${file}: no expected verdict`);
          continue;
        }
        const result = checkOperations(registerModel, ops, { timeoutMs: BUDGET_MS });
        slowest = Math.max(slowest, result.elapsedMs);
        checked++;
        if (result.verdict !== (want ? 'ok' : 'illegal')) mismatches.push(`${file}: ${result.verdict}, expected ${want}`);
      }
      console.log(
        `      etcd timings: ${checked} logs in ${(performance.now() - start).toFixed(0)} ms, slowest ${slowest.toFixed(0)} ms`,
      );
      expect(mismatches).to.deep.equal([]);
      expect(checked).to.equal(expected.size);
    });
  });

  describe('key-value compare-and-set (the simulator workload)', () => {
    const kv = (c: number, input: KvInput, call: number, output: KvOutput, ret: number): Operation<KvInput, KvOutput> => ({ clientId: c, input, call, output, return: ret });
    it('a cas that succeeded saw its expected value, and one that failed saw another', () => {
      const ok = [
        kv(0, { op: 'put', key: 'k', value: 'a' }, 0, undefined, 1),
        kv(1, { op: 'cas', key: 'k', expected: 'a', value: 'b' }, 2, true, 3),
        kv(0, { op: 'cas', key: 'k', expected: 'a', value: 'c' }, 4, false, 5),
        kv(1, { op: 'get', key: 'k' }, 6, 'b', 7),
      ];
      expect(checkOperations(kvModel, ok).verdict).to.equal('ok');
      const lies = [kv(0, { op: 'put', key: 'k', value: 'a' }, 0, undefined, 1), kv(1, { op: 'cas', key: 'k', expected: 'a', value: 'b' }, 2, false, 3)];
      expect(checkOperations(kvModel, lies).verdict).to.equal('illegal');
    });

    it("'' as the expected value matches a missing key", () => {
      const ops = [kv(0, { op: 'cas', key: 'k', expected: '', value: 'x' }, 0, true, 1), kv(1, { op: 'get', key: 'k' }, 2, 'x', 3)];
      expect(checkOperations(kvModel, ops).verdict).to.equal('ok');
    });

    it('a cas of unknown outcome may or may not have taken effect', () => {
      const unknownCas = { ...pendingOperation<KvInput, KvOutput>(0, { op: 'cas', key: 'k', expected: '', value: 'x' }, 0) };
      for (const seen of ['x', '']) {
        expect(checkOperations(kvModel, [unknownCas, kv(1, { op: 'get', key: 'k' }, 5, seen, 6)]).verdict, `get saw '${seen}'`).to.equal('ok');
      }
      expect(checkOperations(kvModel, [unknownCas, kv(1, { op: 'get', key: 'k' }, 5, 'y', 6)]).verdict).to.equal('illegal');
    });
  });

  describe('hand-written histories', () => {
    it('accepts a trivially linearizable sequential history', () => {
      const ops = [
        reg(0, { op: 'write', value: 1 }, 0, undefined, 1),
        reg(1, { op: 'read' }, 2, 1, 3),
        reg(0, { op: 'cas', from: 1, to: 2 }, 4, true, 5),
        reg(1, { op: 'read' }, 6, 2, 7),
      ];
      expect(checkOperations(registerModel, ops).verdict).to.equal('ok');
    });

    it('rejects a stale read after a completed write', () => {
      const ops = [
        reg(0, { op: 'write', value: 1 }, 0, undefined, 1),
        reg(0, { op: 'write', value: 2 }, 2, undefined, 3),
        reg(1, { op: 'read' }, 4, 1, 5),
      ];
      const result = checkOperations(registerModel, ops);
      expect(result.verdict).to.equal('illegal');
      expect(result.illegalPartition).to.equal(0);
      // The search got as far as both writes before the read could not fit.
      expect(result.partitions[0].longestLinearization).to.have.length(2);
    });

    it('allows concurrent writes to take effect in either order', () => {
      const writes = [reg(0, { op: 'write', value: 1 }, 0, undefined, 3), reg(1, { op: 'write', value: 2 }, 1, undefined, 4)];
      for (const last of [1, 2]) {
        const ops = [...writes, reg(2, { op: 'read' }, 5, last, 6)];
        expect(checkOperations(registerModel, ops).verdict, `final value ${last}`).to.equal('ok');
      }
      expect(checkOperations(registerModel, [...writes, reg(2, { op: 'read' }, 5, 3, 6)]).verdict).to.equal('illegal');
    });

    it('lets an unknown-outcome write take effect late, or never', () => {
      const timedOut = pendingOperation<RegisterInput, RegisterOutput>(0, { op: 'write', value: 9 }, 0);
      expect(timedOut.return).to.equal(Infinity);
      expect(timedOut.output).to.equal(UNKNOWN);
      const base = [reg(1, { op: 'write', value: 1 }, 1, undefined, 2)];
      // Observed long after the request timed out, and after a later write: must be allowed.
      const late = [timedOut, ...base, reg(2, { op: 'read' }, 10, 1, 11), reg(2, { op: 'read' }, 20, 9, 21)];
      expect(checkOperations(registerModel, late).verdict).to.equal('ok');
      // Never observed: also fine.
      expect(checkOperations(registerModel, [timedOut, ...base, reg(2, { op: 'read' }, 10, 1, 11)]).verdict).to.equal('ok');
      // Once seen, it cannot be un-seen: reading 9 then 1 again needs another write of 1.
      const flipBack = [timedOut, ...base, reg(2, { op: 'read' }, 10, 9, 11), reg(2, { op: 'read' }, 20, 1, 21)];
      expect(checkOperations(registerModel, flipBack).verdict).to.equal('illegal');
    });

    it('drops a failed cas so it cannot take effect', () => {
      const log = [
        'INFO  jepsen.util - 0\t:invoke\t:write\t1',
        'INFO  jepsen.util - 0\t:ok\t:write\t1',
        'INFO  jepsen.util - 1\t:invoke\t:cas\t[1 5]',
        'INFO  jepsen.util - 1\t:fail\t:cas\t[1 5]',
        'INFO  jepsen.util - 2\t:invoke\t:read\tnil',
        'INFO  jepsen.util - 2\t:ok\t:read\t5',
      ].join('\n');
      const ops = parseEtcdLog(log, 'failed-cas.log');
      expect(ops.map((op) => op.input.op)).to.deep.equal(['write', 'read']);
      expect(checkOperations(registerModel, ops).verdict).to.equal('illegal');
      // A cas that returned false observed a different value and changed nothing.
      const casFalse = [
        reg(0, { op: 'write', value: 1 }, 0, undefined, 1),
        reg(1, { op: 'cas', from: 3, to: 5 }, 2, false, 3),
        reg(2, { op: 'read' }, 4, 1, 5),
      ];
      expect(checkOperations(registerModel, casFalse).verdict).to.equal('ok');
    });

    it('reports an exhausted time budget as unknown, never ok', () => {
      requireTestdata();
      const ops = parseKvHistory(fs.readFileSync(path.join(TESTDATA, 'c10-ok.txt'), 'utf8'), 'c10-ok.txt');
      const result = checkOperations(kvModel, ops, { timeoutMs: 0 });
      expect(result.verdict).to.equal('unknown');
      expect(result.partitions.some((p) => p.verdict === 'unknown')).to.equal(true);
    });

    it('splits a key-value history by key', () => {
      const ops: KvOp[] = [
        { clientId: 0, input: { op: 'put', key: 'a', value: 'x' }, call: 0, output: undefined, return: 1 },
        { clientId: 1, input: { op: 'append', key: 'b', value: 'y' }, call: 0, output: undefined, return: 1 },
        { clientId: 0, input: { op: 'get', key: 'a' }, call: 2, output: 'x', return: 3 },
        { clientId: 1, input: { op: 'get', key: 'b' }, call: 2, output: 'y', return: 3 },
      ];
      const result = checkOperations(kvModel, ops);
      expect(result.verdict).to.equal('ok');
      expect(result.partitions.map((p) => p.operations)).to.deep.equal([2, 2]);
    });
  });

  describe('parsers', () => {
    it('names the file and line of a malformed record', () => {
      const text = '{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n{:process 0, :type :ok, :f :frob}';
      expect(() => parseKvHistory(text, 'broken.txt'))
        .to.throw(HistoryFormatError, 'broken.txt:2')
        .with.property('line', 2);
      expect(() => parseEtcdLog('INFO  jepsen.util - 0\t:invoke\t:cas\t[1]', 'broken.log'))
        .to.throw(HistoryFormatError, 'broken.log:1');
      expect(() => parseEtcdLog('INFO  jepsen.util - 0\t:ok\t:read\t1', 'orphan.log')).to.throw(HistoryFormatError, 'never invoked');
    });

    it('turns :info and unfinished invokes into pending operations', () => {
      const log = [
        'INFO  jepsen.util - 0\t:invoke\t:write\t3',
        'INFO  jepsen.util - 1\t:invoke\t:read\tnil',
        'INFO  jepsen.util - 0\t:info\t:write\t:timed-out',
        'INFO  jepsen.util - 1\t:ok\t:read\tnil',
        'INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]',
      ].join('\n');
      const ops = parseEtcdLog(log, 'pending.log');
      expect(ops.map((op) => [op.input.op, op.call, op.return])).to.deep.equal([
        ['write', 1, Infinity],
        ['read', 2, 4],
        ['cas', 5, Infinity],
      ]);
      expect(ops[1].output).to.equal(null);
      expect(ops[0].output).to.equal(UNKNOWN);
    });
  });
});
