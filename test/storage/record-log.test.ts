/**
 * The storage log's record format (storage/record-log.ts): every record round-trips, and recovery
 * tells a torn tail (dropped) from damage in the middle of the log (CorruptLogError).
 */
import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, HardState, LogIndex, Membership, NodeId, Term } from '../../actors/raft/core/types';
import { checksum, CorruptLogError, encodeRecord, type LogRecord, MAX_RECORD_BYTES, replayRecords } from '../../storage/record-log';

const ix = (n: number): LogIndex => n as LogIndex;
const tm = (n: number): Term => n as Term;
const id = (n: number): NodeId => n as NodeId;
const FILE = 'n1/raft.log';
const HEADER = 8;

const JOINT: Membership = { members: [id(1), id(2), id(3)], nonVoters: [id(9)], membersAfterConsensus: [id(2), id(3), id(4)] };
const ENTRIES: Entry[] = [
  { kind: 'normal', index: ix(1), term: tm(1), payload: Uint8Array.of(1, 2, 3, 250) },
  { kind: 'blank', index: ix(2), term: tm(2) },
  { kind: 'config', index: ix(3), term: tm(2), membership: JOINT },
  { kind: 'normal', index: ix(4), term: tm(2), payload: new Uint8Array(0) },
];

const hardState = (term: number, vote: number | null): LogRecord =>
  ({ type: 'hardState', hardState: { currentTerm: tm(term), votedFor: vote === null ? null : id(vote) } });
const append = (entries: readonly Entry[]): LogRecord => ({ type: 'append', entries: encodeEntries(entries) });
const truncate = (from: number): LogRecord => ({ type: 'truncate', from: ix(from) });

/** A small log of every record type, with the byte offset where each record starts. */
function sampleLog(): { records: LogRecord[]; bytes: Uint8Array; starts: number[] } {
  const records: LogRecord[] = [
    hardState(1, 1),
    append(ENTRIES.slice(0, 2)),
    hardState(2, null),
    append(ENTRIES.slice(2)),
    truncate(3),
    append([{ kind: 'normal', index: ix(3), term: tm(3), payload: Uint8Array.of(7) }]),
  ];
  const parts = records.map(encodeRecord);
  const starts: number[] = [];
  let total = 0;
  for (const p of parts) { starts.push(total); total += p.byteLength; }
  return { records, bytes: cat(...parts), starts: [...starts, total] };
}

/** A record built by hand: any body, with a correct checksum (the writer would never produce it). */
function rawRecord(body: Uint8Array, lengthField = body.byteLength): Uint8Array {
  const out = new Uint8Array(HEADER + body.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, lengthField);
  out.set(body, HEADER);
  view.setUint32(4, checksum(out, 0, out.byteLength));
  return out;
}

const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function corruptError(fn: () => unknown): CorruptLogError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(caught, 'expected a CorruptLogError, nothing was thrown').to.be.instanceOf(CorruptLogError);
  const err = caught as CorruptLogError;
  expect(err.code).to.equal('CorruptLog');
  expect(err.name).to.equal('CorruptLogError');
  return err;
}

describe('storage/record-log', () => {
  describe('round trip', () => {
    const roundTrip = (rec: LogRecord): LogRecord[] => {
      const bytes = encodeRecord(rec);
      const replay = replayRecords(bytes, FILE);
      expect(replay.validBytes).to.equal(bytes.byteLength);
      expect(replay.tornBytes).to.equal(0);
      return replay.records;
    };

    it('a hardState record round-trips a vote, no vote (null), and terms and votes up to 2^53 - 1', () => {
      const states: HardState[] = [
        { currentTerm: tm(0), votedFor: null },
        { currentTerm: tm(1), votedFor: id(3) },
        { currentTerm: tm(7), votedFor: null },
        { currentTerm: tm(2 ** 32 + 5), votedFor: id(2 ** 32 - 1) },
        { currentTerm: tm(Number.MAX_SAFE_INTEGER), votedFor: id(Number.MAX_SAFE_INTEGER) },
        { currentTerm: tm(Number.MAX_SAFE_INTEGER), votedFor: null },
      ];
      for (const hs of states) {
        expect(roundTrip({ type: 'hardState', hardState: hs }), JSON.stringify(hs)).to.deep.equal([{ type: 'hardState', hardState: hs }]);
      }
    });

    it('an append record carries encoded normal, blank and config entries byte for byte', () => {
      const encoded = encodeEntries(ENTRIES);
      const [rec] = roundTrip({ type: 'append', entries: encoded });
      expect(rec.type).to.equal('append');
      const got = (rec as Extract<LogRecord, { type: 'append' }>).entries;
      expect(Buffer.from(got).equals(Buffer.from(encoded))).to.equal(true);
      expect(decodeEntries(got)).to.deep.equal(ENTRIES);
    });

    it('an append record of zero entries round-trips', () => {
      const [rec] = roundTrip(append([]));
      expect(decodeEntries((rec as Extract<LogRecord, { type: 'append' }>).entries)).to.deep.equal([]);
    });

    it('a truncate record round-trips, including an index above 2^32', () => {
      for (const from of [1, 5, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
        expect(roundTrip(truncate(from))).to.deep.equal([truncate(from)]);
      }
    });

    it('the returned append bytes do not alias the file (changing the file later does not change them)', () => {
      const bytes = encodeRecord(append(ENTRIES));
      const [rec] = replayRecords(bytes, FILE).records as Extract<LogRecord, { type: 'append' }>[];
      bytes.fill(0);
      expect(decodeEntries(rec.entries)).to.deep.equal(ENTRIES);
    });

    it('replays a log of several records in order, also from a view into a larger buffer', () => {
      const { records, bytes, starts } = sampleLog();
      const offsets = starts.slice(0, records.length);
      expect(replayRecords(bytes, FILE)).to.deep.equal({ records, offsets, validBytes: bytes.byteLength, tornBytes: 0 });
      // The same bytes at offset 13 of a bigger buffer (the DataView must honour byteOffset).
      const big = new Uint8Array(bytes.byteLength + 20).fill(0xab);
      big.set(bytes, 13);
      const view = big.subarray(13, 13 + bytes.byteLength);
      expect(replayRecords(view, FILE)).to.deep.equal({ records, offsets, validBytes: bytes.byteLength, tornBytes: 0 });
    });

    it('an empty file replays to no records and nothing torn', () => {
      expect(replayRecords(new Uint8Array(0), FILE)).to.deep.equal({ records: [], offsets: [], validBytes: 0, tornBytes: 0 });
    });

    it('frames a record as u32 body length, u32 crc32(length field and body), then the body', () => {
      const bytes = encodeRecord(truncate(5));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(view.getUint32(0)).to.equal(9);
      expect(view.getUint32(4)).to.equal(crc32(bytes.subarray(HEADER), crc32(bytes.subarray(0, 4))));
      expect(bytes.byteLength).to.equal(HEADER + 9);
    });
  });

  describe('torn tail', () => {
    it('a log cut at every byte offset replays to exactly the whole records before the cut, the rest torn', () => {
      const { records, bytes, starts } = sampleLog();
      expect(bytes.byteLength).to.be.greaterThan(100);
      for (let cut = 0; cut <= bytes.byteLength; cut++) {
        let whole = 0;
        while (whole < records.length && starts[whole + 1] <= cut) whole++;
        const replay = replayRecords(bytes.slice(0, cut), FILE);
        expect(replay.records, `cut at ${cut}`).to.deep.equal(records.slice(0, whole));
        expect(replay.validBytes, `validBytes at cut ${cut}`).to.equal(starts[whole]);
        expect(replay.tornBytes, `tornBytes at cut ${cut}`).to.equal(cut - starts[whole]);
      }
    });

    it('a flipped byte anywhere in the final record (header or body) makes it a torn tail, not an error', () => {
      const { records, bytes, starts } = sampleLog();
      const last = records.length - 1;
      for (let at = starts[last]; at < bytes.byteLength; at++) {
        const damaged = bytes.slice();
        damaged[at] ^= 0xff;
        const replay = replayRecords(damaged, FILE);
        expect(replay.records, `flip at ${at}`).to.deep.equal(records.slice(0, last));
        expect(replay.validBytes).to.equal(starts[last]);
        expect(replay.tornBytes).to.equal(bytes.byteLength - starts[last]);
      }
    });

    it('a length field above MAX_RECORD_BYTES at the tail is a torn tail', () => {
      const { records, bytes } = sampleLog();
      const garbage = rawRecord(Uint8Array.of(1, 2, 3), MAX_RECORD_BYTES + 1);
      const replay = replayRecords(cat(bytes, garbage), FILE);
      expect(replay.records).to.deep.equal(records);
      expect(replay.validBytes).to.equal(bytes.byteLength);
      expect(replay.tornBytes).to.equal(garbage.byteLength);
    });

    it('a length field of 0 in the very last header is a torn tail', () => {
      const { records, bytes } = sampleLog();
      const replay = replayRecords(cat(bytes, new Uint8Array(HEADER)), FILE);
      expect(replay.records).to.deep.equal(records);
      expect(replay.tornBytes).to.equal(HEADER);
    });

    it('encodeRecord refuses a record above MAX_RECORD_BYTES instead of writing one recovery would drop', () => {
      const tooBig = { byteLength: MAX_RECORD_BYTES } as Uint8Array; // body = 1 type byte + this
      expect(() => encodeRecord({ type: 'append', entries: tooBig })).to.throw(RangeError, /exceeds/);
    });
  });

  describe('damage before the tail', () => {
    it('a flipped byte in the body of any earlier record throws CorruptLogError naming the file and that record\'s start', () => {
      const { records, bytes, starts } = sampleLog();
      let tried = 0;
      for (let r = 0; r < records.length - 1; r++) {
        for (let at = starts[r] + HEADER; at < starts[r + 1]; at++) {
          const damaged = bytes.slice();
          damaged[at] ^= 0x01;
          const err = corruptError(() => replayRecords(damaged, FILE));
          expect(err.file).to.equal(FILE);
          expect(err.offset, `flip at ${at} in record ${r}`).to.equal(starts[r]);
          expect(err.reason).to.match(/checksum mismatch/);
          expect(err.message).to.include(`${FILE}: corrupt record at byte offset ${starts[r]}`);
          tried++;
        }
      }
      expect(tried).to.be.greaterThan(50);
    });

    it('a flipped checksum byte of an earlier record throws CorruptLogError at that record', () => {
      const { bytes, starts } = sampleLog();
      const damaged = bytes.slice();
      damaged[starts[2] + 5] ^= 0x80;
      expect(corruptError(() => replayRecords(damaged, FILE)).offset).to.equal(starts[2]);
    });

    it('an impossible length field of 0 in the middle of the log throws', () => {
      const { bytes, starts } = sampleLog();
      const damaged = bytes.slice();
      new DataView(damaged.buffer).setUint32(starts[3], 0);
      const err = corruptError(() => replayRecords(damaged, FILE));
      expect(err.offset).to.equal(starts[3]);
      expect(err.reason).to.match(/impossible record length 0/);
    });

    it('an unknown record type in a checksummed body throws, even as the last record', () => {
      const { bytes } = sampleLog();
      const bad = rawRecord(Uint8Array.of(9, 0, 0, 0));
      for (const log of [cat(bytes, bad), cat(bytes, bad, encodeRecord(truncate(1)))]) {
        const err = corruptError(() => replayRecords(log, FILE));
        expect(err.offset).to.equal(bytes.byteLength);
        expect(err.reason).to.match(/unknown record type 9/);
      }
    });

    it('a hardState or truncate body of the wrong size throws, even when its checksum is good', () => {
      const cases: Array<[Uint8Array, RegExp]> = [
        [rawRecord(Uint8Array.of(1, ...new Array<number>(10).fill(0))), /record type 1 has 11 bytes, expected 17/],
        [rawRecord(Uint8Array.of(1, ...new Array<number>(17).fill(0))), /record type 1 has 18 bytes, expected 17/],
        [rawRecord(Uint8Array.of(3, 0, 0, 0, 0)), /record type 3 has 5 bytes, expected 9/],
      ];
      for (const [bad, re] of cases) {
        const prefix = encodeRecord(hardState(1, 1));
        const err = corruptError(() => replayRecords(cat(prefix, bad), FILE));
        expect(err.offset).to.equal(prefix.byteLength);
        expect(err.reason).to.match(re);
      }
    });
  });
});
