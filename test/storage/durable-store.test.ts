/**
 * storage/durable-store.ts: how a log write becomes records (shared by FileStorage and the
 * simulator's storage), including the split of a batch too big for one record.
 */
import { expect } from 'chai';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, LogIndex, Term } from '../../actors/raft/core/types';
import { MemoryStore } from '../../storage/memory-storage';
import { MAX_APPEND_RECORD_BYTES, planLogWrite, replayRecord } from '../../storage/durable-store';
import { CorruptLogError, MAX_RECORD_BYTES } from '../../storage/record-log';
import { StorageContractError } from '../../storage/storage';

const entry = (i: number, bytes = 100): Entry => ({ kind: 'normal', index: i as LogIndex, term: 1 as Term, payload: new Uint8Array(bytes).fill(i) });
const entries = (from: number, to: number, bytes = 100): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, bytes));

describe('storage/durable-store', () => {
  it('an append is one record carrying the batch bytes as they came (no re-encoding)', () => {
    const store = new MemoryStore();
    const bytes = encodeEntries(entries(1, 5));
    const w = planLogWrite(store, { type: 'appendEntries', entries: bytes });
    expect(w.records).to.have.length(1);
    expect(w.records[0].rec).to.deep.equal({ type: 'append', entries: bytes });
    expect((w.records[0].rec as { entries: Uint8Array }).entries).to.equal(bytes);
    expect(w.value).to.equal(5);
  });

  it('a batch bigger than one record is split into records of whole entries, in order, that replay to the same log', () => {
    const store = new MemoryStore();
    const batch = entries(1, 40, 1000);
    const w = planLogWrite(store, { type: 'replicateEntries', truncateFrom: null, entries: encodeEntries(batch) }, 8 * 1024);
    expect(w.records.length).to.be.greaterThan(4);
    const replayed = new MemoryStore();
    let n = 0;
    for (const r of w.records) {
      expect(r.rec.type).to.equal('append');
      const bytes = (r.rec as { entries: Uint8Array }).entries;
      expect(bytes.byteLength).to.be.at.most(8 * 1024);
      expect(decodeEntries(bytes)).to.deep.equal(r.entries);
      replayRecord(replayed, r.rec, 'f', n++);
    }
    expect(replayed.log).to.deep.equal(batch);
    expect(store.log).to.deep.equal(batch);
  });

  it('the split bound leaves room for the largest payload: a 64 MiB entry fits one record', () => {
    expect(MAX_APPEND_RECORD_BYTES).to.be.at.most(MAX_RECORD_BYTES - 1);
    expect(MAX_APPEND_RECORD_BYTES).to.be.at.least(64 * 1024 * 1024 + 64);
  });

  it('a truncation that cuts entries is a truncate record before the new entries; one past the end is no record', () => {
    const store = new MemoryStore();
    planLogWrite(store, { type: 'appendEntries', entries: encodeEntries(entries(1, 6)) });
    const w = planLogWrite(store, { type: 'replicateEntries', truncateFrom: 4 as LogIndex, entries: encodeEntries(entries(4, 4)) });
    expect(w.records.map((r) => r.rec.type)).to.deep.equal(['truncate', 'append']);
    expect(w.truncateFrom).to.equal(4);
    const past = planLogWrite(store, { type: 'truncate', from: 9 as LogIndex });
    expect(past.records).to.deep.equal([]);
    expect(past.truncateFrom).to.equal(null);
  });

  it('a refused write throws StorageContractError and leaves the view as it was', () => {
    const store = new MemoryStore();
    planLogWrite(store, { type: 'appendEntries', entries: encodeEntries(entries(1, 3)) });
    expect(() => planLogWrite(store, { type: 'appendEntries', entries: encodeEntries(entries(5, 6)) })).to.throw(StorageContractError);
    expect(() => planLogWrite(store, { type: 'truncate', from: 0 as LogIndex })).to.throw(StorageContractError);
    expect(store.log).to.deep.equal(entries(1, 3));
  });

  it('replaying a record that does not fit the log so far is CorruptLogError at its offset', () => {
    const store = new MemoryStore();
    let err: unknown = null;
    try { replayRecord(store, { type: 'append', entries: encodeEntries(entries(3, 4)) }, 'seg', 77); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(CorruptLogError);
    expect((err as CorruptLogError).offset).to.equal(77);
    expect((err as CorruptLogError).file).to.equal('seg');
  });
});
