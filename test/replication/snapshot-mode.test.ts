/**
 * ReplicationStream snapshot mode (paper 7): a follower behind the leader's purge point gets the
 * snapshot as InstallSnapshot chunks, then appends resume after it. A real stream, a real
 * MemoryStorage, a scripted follower, in virtual time.
 */
import { expect } from 'chai';
import type { AppendEntriesRequest, InstallSnapshotRequest, LogIndex, Term } from '../../actors/raft/core/types';
import {
  FOLLOWER, LEADER, leaderWithPurgedLog, makeSnapshot, type Recorded, type Snapshot, StreamHarness,
} from './stream-harness';

const HEARTBEAT = 50;
const MAX_CHUNK = 1000;

type Chunk = Recorded & { readonly req: InstallSnapshotRequest };
type Append = Recorded & { readonly req: AppendEntriesRequest };

const appendsOf = (h: StreamHarness): Append[] =>
  h.follower.sent.filter((r): r is Append => r.req.type === 'appendEntries');

/** Every chunk of one transfer attempt carries the snapshot's meta, the leader's term and id. */
function expectMeta(c: Chunk, s: Snapshot, term = 3): void {
  const { req } = c;
  expect(req.term).to.equal(term);
  expect(req.leaderId).to.equal(LEADER);
  expect(req.snapshotId).to.equal(s.meta.id);
  expect(req.lastIncludedIndex).to.equal(s.meta.lastIncludedIndex);
  expect(req.lastIncludedTerm).to.equal(s.meta.lastIncludedTerm);
  expect(req.membership).to.deep.equal(s.meta.membership);
  expect(req.membershipIndex).to.equal(s.meta.membershipIndex);
  expect(req.byteLength).to.equal(s.meta.byteLength);
  expect(req.checksum).to.equal(s.meta.checksum);
}

/** The chunks of one complete attempt: consecutive from 0, each at most MAX_CHUNK, done only on the last. */
function expectCompleteAttempt(chunks: readonly Chunk[], s: Snapshot, term = 3): void {
  let offset = 0;
  chunks.forEach((c, i) => {
    expectMeta(c, s, term);
    expect(c.req.offset, `chunk ${i} offset`).to.equal(offset);
    expect(c.req.data.byteLength, `chunk ${i} size`).to.be.at.most(MAX_CHUNK);
    expect(c.req.done, `chunk ${i} done`).to.equal(i === chunks.length - 1);
    offset += c.req.data.byteLength;
  });
  expect(offset).to.equal(s.meta.byteLength);
  expect(Buffer.concat(chunks.map((c) => c.req.data)).equals(Buffer.from(s.data))).to.equal(true);
}

describe('ReplicationStream snapshot mode', function () {
  this.timeout(20_000);
  let h: StreamHarness;
  afterEach(async () => { await h?.shutdown(); });

  it('sends a follower behind the purge point the snapshot in chunks, then appends from lastIncludedIndex + 1', async () => {
    const snap = makeSnapshot('snap-a', 25, 3500, 1);
    h = new StreamHarness({ followerLast: 3 });
    await leaderWithPurgedLog(h, snap, 20);
    await h.runUntil(() => h.raft.replicated().includes(41), 10_000, 'follower caught up to 41');

    const chunks = h.follower.chunks();
    expect(chunks.map((c) => [c.req.offset, c.req.data.byteLength, c.req.done])).to.deep.equal([
      [0, 1000, false], [1000, 1000, false], [2000, 1000, false], [3000, 500, true],
    ]);
    expectCompleteAttempt(chunks, snap);
    expect(h.follower.installed).to.have.length(1);
    expect(h.follower.installed[0].meta).to.deep.equal(snap.meta);
    expect(Buffer.from(h.follower.installed[0].data).equals(Buffer.from(snap.data))).to.equal(true);

    // The first report is the snapshot's index, then the follower climbs to the leader's last.
    const replicated = h.raft.replicated();
    expect(replicated[0]).to.equal(25);
    expect(replicated[replicated.length - 1]).to.equal(41);
    for (let i = 1; i < replicated.length; i++) expect(replicated[i]).to.be.above(replicated[i - 1]);
    const first = h.raft.reports.find((r) => r.type === 'replicated')!;
    expect(first).to.include({ peer: FOLLOWER, leaderTerm: 3 });

    // No append carried entries while the transfer ran; the first one after it follows the snapshot.
    const start = chunks[0].seq;
    const last = chunks[chunks.length - 1].seq;
    const withEntries = appendsOf(h).filter((a) => a.req.entries.length > 0);
    expect(withEntries.filter((a) => a.seq > start && a.seq < last)).to.deep.equal([]);
    const after = withEntries.filter((a) => a.seq > last);
    expect(after[0].req.prevLogIndex).to.equal(25);
    expect(after[0].req.prevLogTerm).to.equal(2);
    expect(after[0].req.entries[0].index).to.equal(26);
    expect(h.follower.last).to.equal(41);
    expect(h.follower.violations).to.deep.equal([]);
    // Nothing asked for the snapshot again.
    expect(h.follower.chunks()).to.have.length(4);
  });

  it('a log purged through the snapshot\'s last index: appends resume after it without a second transfer', async () => {
    // snapshotKeepEntries 0: the entry at lastIncludedIndex is gone from the log too, so the stream
    // must take prevLogTerm from the snapshot (its match) and read entries from lastIncludedIndex + 1.
    const snap = makeSnapshot('snap-a', 25, 1500, 9);
    h = new StreamHarness({ followerLast: 3 });
    await leaderWithPurgedLog(h, snap, 25);
    await h.runUntil(() => h.raft.replicated().includes(41), 10_000, 'follower caught up to 41');
    expect(h.follower.chunks().map((c) => c.req.offset)).to.deep.equal([0, 1000]);
    expect(h.raft.replicated()[0]).to.equal(25);
    const after = appendsOf(h).filter((a) => a.req.entries.length > 0 && a.seq > h.follower.chunks()[1].seq);
    expect([after[0].req.prevLogIndex, after[0].req.prevLogTerm, after[0].req.entries[0].index]).to.deep.equal([25, 2, 26]);
    expect(h.follower.violations).to.deep.equal([]);
  });

  it('a response in a higher term reports higherTerm and the stream goes idle', async () => {
    const snap = makeSnapshot('snap-a', 25, 3500, 2);
    h = new StreamHarness({
      followerLast: 3,
      script: (req) => (req.type === 'installSnapshot' ? { kind: 'higherTerm', term: 5 } : { kind: 'reply' }),
    });
    await leaderWithPurgedLog(h, snap, 20);
    await h.runUntil(() => h.raft.reports.some((r) => r.type === 'higherTerm'), 10_000, 'higherTerm');
    expect(h.raft.reports.map((r) => (r.type === 'higherTerm' ? r.term : r.type))).to.deep.equal([5]);
    const sentThen = h.follower.sent.length;
    await h.runFor(20 * HEARTBEAT);
    // Idle: no more chunks, no heartbeats, nothing replicated.
    expect(h.follower.sent.length).to.equal(sentThen);
    expect(h.follower.chunks()).to.have.length(1);
    expect(h.raft.replicated()).to.deep.equal([]);
  });

  for (const failure of ['error', 'silence', 'malformed'] as const) {
    it(`a chunk that fails (${failure}) restarts the transfer from offset 0 after a heartbeat interval`, async () => {
      const snap = makeSnapshot('snap-a', 25, 3500, 3);
      let failed = false;
      h = new StreamHarness({
        followerLast: 3,
        script: (req) => {
          if (req.type === 'installSnapshot' && req.offset === 2000 && !failed) { failed = true; return { kind: failure }; }
          return { kind: 'reply' };
        },
      });
      await leaderWithPurgedLog(h, snap, 20);
      await h.runUntil(() => h.raft.replicated().includes(41), 20_000, 'follower caught up to 41');

      const chunks = h.follower.chunks();
      const failedAt = chunks.findIndex((c) => c.action !== 'reply');
      expect(chunks.map((c) => c.req.offset)).to.deep.equal([0, 1000, 2000, 0, 1000, 2000, 3000]);
      expect(failedAt).to.equal(2);
      // The restart waits a heartbeat interval after the failure is known: at once for an error or
      // bad bytes; for silence, at the first answered heartbeat once the chunk has been out for two
      // election timeouts (600 ms here), not after the chunk's 10 s RPC timeout (simulator seed 33).
      const gap = chunks[3].atMs - chunks[2].atMs;
      if (failure === 'silence') expect(gap).to.be.within(600 + HEARTBEAT, 600 + 3 * HEARTBEAT);
      else expect(gap).to.equal(HEARTBEAT);
      expectCompleteAttempt(chunks.slice(3), snap);
      expect(h.follower.installed.map((s) => s.meta.id)).to.deep.equal(['snap-a']);
      expect(Buffer.from(h.follower.installed[0].data).equals(Buffer.from(snap.data))).to.equal(true);
      expect(h.raft.replicated()[0]).to.equal(25);
      expect(h.follower.violations).to.deep.equal([]);
    });
  }

  it('a snapshot replaced mid-transfer: the stream starts over with the new one', async () => {
    const a = makeSnapshot('snap-a', 25, 3500, 4);
    const b = makeSnapshot('snap-b', 30, 2500, 5);
    let replaced = false;
    h = new StreamHarness({
      followerLast: 3,
      script: async (req, harness) => {
        if (req.type === 'installSnapshot' && req.snapshotId === 'snap-a' && req.offset === 1000 && !replaced) {
          // Between chunks 2 and 3 of snap-a the leader takes a newer snapshot and purges further.
          replaced = true;
          await harness.writeSnapshotNow(b);
          await harness.storage.ask({ type: 'purgeLog', throughIndex: 28 as LogIndex });
        }
        return { kind: 'reply' };
      },
    });
    await leaderWithPurgedLog(h, a, 20);
    await h.runUntil(() => h.raft.replicated().includes(41), 10_000, 'follower caught up to 41');

    const chunks = h.follower.chunks();
    expect(chunks.map((c) => `${c.req.snapshotId}@${c.req.offset}`)).to.deep.equal([
      'snap-a@0', 'snap-a@1000', 'snap-b@0', 'snap-b@1000', 'snap-b@2000',
    ]);
    expectCompleteAttempt(chunks.slice(2), b);
    expect(h.follower.installed.map((s) => s.meta.id)).to.deep.equal(['snap-b']);
    expect(Buffer.from(h.follower.installed[0].data).equals(Buffer.from(b.data))).to.equal(true);
    expect(h.raft.replicated()[0]).to.equal(30);
    const after = appendsOf(h).filter((x) => x.req.entries.length > 0 && x.seq > chunks[chunks.length - 1].seq);
    expect(after[0].req.prevLogIndex).to.equal(30);
    expect(after[0].req.entries[0].index).to.equal(31);
    expect(h.follower.violations).to.deep.equal([]);
  });

  it('heartbeats keep going on their timer while chunks are in flight', async () => {
    const snap = makeSnapshot('snap-a', 25, 3500, 6);
    // Each chunk takes over 3 heartbeat intervals to be answered (a big chunk on a slow link or
    // disk), and is sent between two ticks of the heartbeat timer.
    h = new StreamHarness({
      followerLast: 3,
      script: (req) => (req.type === 'installSnapshot' ? { kind: 'delay', ms: 3 * HEARTBEAT + 20 } : { kind: 'reply' }),
    });
    await leaderWithPurgedLog(h, snap, 20);
    await h.runUntil(() => h.raft.replicated().includes(25), 10_000, 'snapshot installed');

    const chunks = h.follower.chunks();
    expect(chunks).to.have.length(4);
    const from = chunks[0].atMs;
    const to = h.raft.reports.find((r) => r.type === 'replicated')!.atMs;
    expect(to - from).to.be.at.least(4 * 3 * HEARTBEAT);
    const beats = appendsOf(h).filter((x) => x.req.entries.length === 0 && x.atMs >= from && x.atMs <= to);
    // One per interval, whatever the chunks do; anchored at the match (0 before the snapshot).
    expect(beats.length).to.be.at.least(Math.floor((to - from) / HEARTBEAT) - 1);
    for (const b of beats) expect([b.req.prevLogIndex, b.req.prevLogTerm]).to.deep.equal([0, 0]);
    const times = [from, ...beats.map((b) => b.atMs), to];
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1], `gap before beat ${i}`).to.be.at.most(HEARTBEAT);
    expect(h.follower.violations).to.deep.equal([]);
  });

  it('a zero-byte snapshot is one empty chunk with done', async () => {
    const snap = makeSnapshot('snap-empty', 25, 0, 7);
    h = new StreamHarness({ followerLast: 3 });
    await leaderWithPurgedLog(h, snap, 20);
    await h.runUntil(() => h.raft.replicated().includes(41), 10_000, 'follower caught up to 41');
    const chunks = h.follower.chunks();
    expect(chunks.map((c) => [c.req.offset, c.req.data.byteLength, c.req.done])).to.deep.equal([[0, 0, true]]);
    expectMeta(chunks[0], snap);
    expect(h.raft.replicated()[0]).to.equal(25);
  });

  it('idle abandons a transfer: no more chunks, no heartbeats', async () => {
    const snap = makeSnapshot('snap-a', 25, 3500, 8);
    h = new StreamHarness({
      followerLast: 3,
      script: (req) => (req.type === 'installSnapshot' ? { kind: 'delay', ms: 2 * HEARTBEAT } : { kind: 'reply' }),
    });
    await leaderWithPurgedLog(h, snap, 20);
    await h.runUntil(() => h.follower.chunks().length === 2, 10_000, 'second chunk sent');
    h.stream.tell({ type: 'idle' });
    const sentThen = h.follower.sent.length;
    await h.runFor(20 * HEARTBEAT); // the second chunk's answer lands meanwhile
    expect(h.follower.sent.length).to.equal(sentThen);
    expect(h.raft.replicated()).to.deep.equal([]);
  });

  it('leading again in a new term starts a new transfer from offset 0; an answer to the old one is ignored', async () => {
    const snap = makeSnapshot('snap-a', 25, 3500, 10);
    h = new StreamHarness({
      followerLast: 3,
      script: (req) => {
        if (req.type !== 'installSnapshot' || req.offset !== 1000) return { kind: 'reply' };
        // The old term's second chunk is answered while the new term's second chunk is in flight.
        return { kind: 'delay', ms: req.term === 3 ? 5 * HEARTBEAT : 10 * HEARTBEAT };
      },
    });
    await leaderWithPurgedLog(h, snap, 20);
    await h.runUntil(() => h.follower.chunks().length === 2, 10_000, 'second chunk sent');
    h.stream.tell({ type: 'idle' });
    h.stream.tell({ type: 'lead', params: { term: 4 as Term, nextIndex: 41 as LogIndex, commitIndex: 41 as LogIndex, lastLogIndex: 41 as LogIndex } });
    await h.runUntil(() => h.raft.replicated().includes(25), 10_000, 'snapshot installed in term 4');

    const chunks = h.follower.chunks();
    expect(chunks.map((c) => `${c.req.term}@${c.req.offset}`)).to.deep.equal(['3@0', '3@1000', '4@0', '4@1000', '4@2000', '4@3000']);
    // The chunk at 2000 went out on the answer to the new term's chunk at 1000, not the old one's.
    expect(chunks[4].atMs - chunks[3].atMs).to.equal(10 * HEARTBEAT);
    expectCompleteAttempt(chunks.slice(2), snap, 4);
    expect(h.raft.reports.filter((r) => r.type === 'replicated')[0]).to.include({ leaderTerm: 4, matchIndex: 25 });
  });
});
