/**
 * MemoryStorage against the RaftStorage conformance suite, plus what is particular to it: the
 * MemoryStore behind it outlives the actor (a restart on the same thread keeps the state), and it
 * refuses messages and indexes outside the contract.
 */
import { expect } from 'chai';
import { decodeEntries, encodeEntries } from '../../actors/raft/codec';
import type { Entry, LogIndex, NodeId, Term } from '../../actors/raft/core/types';
import { ErrorReply } from '../../runtime/actor';
import { createMemoryStorage, MemoryStorageActor, MemoryStore } from '../../storage/memory-storage';
import { StorageContractError, type StorageMsg, type StoredState } from '../../storage/storage';
import { storageConformanceSuite } from './conformance';

storageConformanceSuite('MemoryStorageActor', () => new MemoryStorageActor());

const ix = (n: number): LogIndex => n as LogIndex;
const blank = (i: number, t = 1): Entry => ({ kind: 'blank', index: ix(i), term: t as Term });

/** The refusal a receive answers with (`replyError`, so the actor goes on); throws if it answered normally. */
function refusal(s: MemoryStorageActor, msg: StorageMsg): Error {
  const answer = s.receive(msg);
  if (answer instanceof ErrorReply) return answer.error;
  throw new Error(`${JSON.stringify(msg)} was answered, not refused`);
}

describe('MemoryStorageActor specifics', () => {
  it('a new actor over the same MemoryStore sees everything the old one wrote (restart on one thread)', () => {
    const store = new MemoryStore();
    const first = new MemoryStorageActor(store);
    first.receive({ type: 'saveHardState', hardState: { currentTerm: 4 as Term, votedFor: 2 as NodeId } });
    first.receive({ type: 'appendEntries', entries: encodeEntries([blank(1), blank(2, 3)]) });
    const second = new MemoryStorageActor(store);
    const st = second.receive({ type: 'getInitialState' }) as StoredState;
    expect(st.hardState).to.deep.equal({ currentTerm: 4, votedFor: 2 });
    expect(decodeEntries(st.entries)).to.deep.equal([blank(1), blank(2, 3)]);
    expect(store.lastIndex()).to.equal(2);
  });

  it('createMemoryStorage (the module entry) builds an empty MemoryStorageActor each call', () => {
    const a = createMemoryStorage();
    const b = createMemoryStorage();
    expect(a).to.be.instanceOf(MemoryStorageActor);
    expect(a.store).to.not.equal(b.store);
    expect(a.store.lastIndex()).to.equal(0);
    expect(a.store.hardState).to.deep.equal({ currentTerm: 0, votedFor: null });
  });

  it('a fresh MemoryStorageActor shares nothing with another', () => {
    const a = new MemoryStorageActor();
    const b = new MemoryStorageActor();
    a.receive({ type: 'appendEntries', entries: encodeEntries([blank(1)]) });
    expect(decodeEntries((b.receive({ type: 'getInitialState' }) as StoredState).entries)).to.deep.equal([]);
  });

  it('refuses contract violations with StorageContractError (replyError: the actor goes on) and a message naming the problem', () => {
    const s = new MemoryStorageActor();
    s.receive({ type: 'appendEntries', entries: encodeEntries([blank(1), blank(2)]) });
    const cases: Array<[StorageMsg, RegExp]> = [
      [{ type: 'appendEntries', entries: encodeEntries([blank(4)]) }, /append at index 4 leaves a gap after last index 2/],
      [{ type: 'truncate', from: ix(0) }, /truncate from 0: indexes start at 1/],
      [{ type: 'truncate', from: ix(1.5) }, /from must be a non-negative integer, got 1.5/],
      [{ type: 'truncate', from: ix(-3) }, /from must be a non-negative integer, got -3/],
      [{ type: 'getEntries', from: ix(1), toExclusive: ix(NaN) }, /toExclusive must be a non-negative integer, got NaN/],
      [{ type: 'getEntries', from: '1' as unknown as LogIndex, toExclusive: ix(2) }, /from must be a non-negative integer, got 1/],
      [{ type: 'replicateEntries', truncateFrom: ix(2 ** 53), entries: encodeEntries([]) }, /truncateFrom must be a non-negative integer/],
    ];
    for (const [msg, re] of cases) {
      const err = refusal(s, msg);
      expect(err, JSON.stringify(msg)).to.be.instanceOf(StorageContractError);
      expect((err as StorageContractError).code).to.equal('StorageContract');
      expect((err as Error).message).to.match(/^storage contract violated: /).and.to.match(re);
    }
    // Not a storage message at all: a bug in the sender, thrown so the actor crashes and fails its node.
    expect(() => s.receive({ type: 'bogus' } as unknown as StorageMsg)).to.throw(StorageContractError, /unknown storage message "bogus"/);
    expect(decodeEntries((s.receive({ type: 'getInitialState' }) as StoredState).entries)).to.deep.equal([blank(1), blank(2)]);
  });

  it('a malformed entries buffer is refused with the codec error and changes nothing', () => {
    const s = new MemoryStorageActor();
    s.receive({ type: 'appendEntries', entries: encodeEntries([blank(1)]) });
    const bad = encodeEntries([blank(2)]).slice(0, 10);
    expect(refusal(s, { type: 'appendEntries', entries: bad }).message).to.match(/malformed message: truncated/);
    expect(s.store.lastIndex()).to.equal(1);
  });

  it('a malformed entries buffer in replicateEntries changes nothing either (no truncation first)', () => {
    const s = new MemoryStorageActor();
    s.receive({ type: 'appendEntries', entries: encodeEntries([blank(1), blank(2), blank(3)]) });
    const bad = encodeEntries([blank(2, 2)]).slice(0, 10);
    expect(refusal(s, { type: 'replicateEntries', truncateFrom: ix(2), entries: bad }).message).to.match(/malformed message/);
    expect(s.store.lastIndex(), 'the log was truncated by a refused write').to.equal(3);
  });
});
