/**
 * ReplicationStream acknowledgements (issue 7): every request is tagged with the latest heartbeat
 * round, `heartbeatNow` sends a heartbeat at once, and answers in the leader's term (successes and
 * refusals) are reported as `replicated` reports with their round and send time, throttled to one
 * per 10 ms of send time unless they bring progress or a new round. A real stream, a real
 * MemoryStorage, a scripted follower, in virtual time.
 */
import { expect } from 'chai';
import type { AppendEntriesRequest, LogIndex, RaftRequest, RaftResponse, Term } from '../../actors/raft/core/types';
import type { LeadParams } from '../../actors/replication/replication-stream';
import { entries, FOLLOWER, type Recorded, type Script, StreamHarness } from './stream-harness';

const HEARTBEAT = 50;
/** ACK_REPORT_EVERY_MS in replication-stream.ts. */
const ACK_EVERY = 10;

type Append = Recorded & { readonly req: AppendEntriesRequest };
const appendsOf = (h: StreamHarness): Append[] => h.follower.sent.filter((r): r is Append => r.req.type === 'appendEntries');
const isHeartbeat = (req: RaftRequest): boolean => req.type === 'appendEntries' && req.entries.length === 0;

/** The ack fields a test compares (atMs is when the Raft actor got it). */
const ackView = (h: StreamHarness) => h.raft.acks.map((a) => ({ matchIndex: a.matchIndex, round: a.round, sentAtMs: a.sentAtMs }));

/**
 * Starts the harness with the leader's log 1..`logThrough` in storage and the stream leading in
 * `term` from index 41 (the leader's last index 40 at election). Returns the time `lead` was sent.
 */
async function leadFrom41(h: StreamHarness, opts: { logThrough?: number; term?: number; round?: number } = {}): Promise<number> {
  await h.start();
  await h.append(1, opts.logThrough ?? 40);
  const params: LeadParams = {
    term: (opts.term ?? 3) as Term, nextIndex: 41 as LogIndex, commitIndex: 40 as LogIndex, lastLogIndex: 40 as LogIndex,
    ...(opts.round !== undefined ? { round: opts.round } : {}),
  };
  const t0 = h.clock.now();
  h.stream.tell({ type: 'lead', params });
  return t0;
}

/** Pushes entries from..to to the stream as the Raft actor does after appending them. */
function push(h: StreamHarness, from: number, to: number): void {
  h.stream.tell({ type: 'entries', entries: entries(from, to) });
}

describe('ReplicationStream acknowledgements', function () {
  this.timeout(20_000);
  let h: StreamHarness;
  afterEach(async () => { await h?.shutdown(); });

  it('heartbeatNow sends a heartbeat at once, tagged with the round; the answer is reported with that round and its send time', async () => {
    // Heartbeats are answered 5 ms after they arrive, so send time and report time differ.
    h = new StreamHarness({ followerLast: 40, script: (req) => (isHeartbeat(req) ? { kind: 'delay', ms: 5 } : { kind: 'reply' }) });
    const t0 = await leadFrom41(h);
    await h.runFor(20);
    // The election heartbeat, round 0 (none asked for yet).
    expect(h.raft.acks.map((a) => ({ peer: a.peer, leaderTerm: a.leaderTerm, matchIndex: a.matchIndex, round: a.round, sentAtMs: a.sentAtMs, atMs: a.atMs })))
      .to.deep.equal([{ peer: FOLLOWER, leaderTerm: 3, matchIndex: 0, round: 0, sentAtMs: t0, atMs: t0 + 5 }]);

    const t = h.clock.now();
    expect(t - t0).to.equal(20); // well before the heartbeat timer's first tick (t0 + 50)
    const sentBefore = h.follower.sent.length;
    h.stream.tell({ type: 'heartbeatNow', round: 7 });
    await h.runFor(0);
    const sent = h.follower.sent.slice(sentBefore);
    expect(sent.map((r) => ({ atMs: r.atMs, heartbeat: isHeartbeat(r.req) }))).to.deep.equal([{ atMs: t, heartbeat: true }]);
    expect(sent[0].req).to.include({ term: 3, prevLogIndex: 0, prevLogTerm: 0 });

    await h.runUntil(() => h.raft.acks.length === 2, 100, 'the round 7 heartbeat acknowledged');
    const ack = h.raft.acks[1];
    expect(ack).to.deep.equal({ type: 'replicated', peer: FOLLOWER, leaderTerm: 3, matchIndex: 0, round: 7, sentAtMs: t, atMs: t + 5 });
    // An acknowledgement without progress is not a progress report.
    expect(h.raft.replicated()).to.deep.equal([]);

    // From now on every request carries round 7: the timer's heartbeats too.
    await h.runFor(3 * HEARTBEAT);
    const later = h.raft.acks.slice(2);
    expect(later.length).to.be.at.least(2);
    for (const a of later) expect(a.round, `ack sent at ${a.sentAtMs}`).to.equal(7);
  });

  it('requests sent before a round carry the older round; those after it the new one', async () => {
    // Appends are answered 30 ms late, heartbeats at once.
    h = new StreamHarness({ followerLast: 40, script: (req) => (isHeartbeat(req) ? { kind: 'reply' } : { kind: 'delay', ms: 30 }) });
    const t0 = await leadFrom41(h, { logThrough: 48 });
    push(h, 41, 48);
    await h.runFor(10);
    // Probing: one append [41..44] is out, sent at t0, tagged round 0.
    expect(appendsOf(h).filter((a) => a.req.entries.length > 0).map((a) => [a.atMs, a.req.entries[0].index])).to.deep.equal([[t0, 41]]);
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    await h.runUntil(() => h.raft.replicated().includes(48), 1_000, 'follower at 48');

    expect(ackView(h)).to.deep.equal([
      { matchIndex: 0, round: 0, sentAtMs: t0 }, // the election heartbeat
      { matchIndex: 0, round: 1, sentAtMs: t0 + 10 }, // heartbeatNow
      { matchIndex: 44, round: 0, sentAtMs: t0 }, // the append sent before round 1, answered after it
      { matchIndex: 48, round: 1, sentAtMs: t0 + 30 }, // the append sent after round 1
    ]);
    expect(h.raft.acks.map((a) => a.atMs)).to.deep.equal([t0, t0 + 10, t0 + 30, t0 + 60]);
    expect(h.raft.replicated()).to.deep.equal([44, 48]);
    expect(h.follower.violations).to.deep.equal([]);
  });

  it('a refusal in the leader\'s term (log mismatch) is reported as an acknowledgement, without progress', async () => {
    // The follower holds 1..3 only; its heartbeats fail, so only append answers can acknowledge.
    h = new StreamHarness({ followerLast: 3, script: (req) => (isHeartbeat(req) ? { kind: 'error' } : { kind: 'reply' }) });
    const t0 = await leadFrom41(h, { logThrough: 41 });
    await h.runFor(5);
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    await h.runFor(5);
    expect(h.raft.acks, 'failed heartbeats acknowledge nothing').to.deep.equal([]);
    push(h, 41, 41);
    await h.runUntil(() => h.raft.replicated().includes(41), 2_000, 'follower repaired to 41');

    const first = appendsOf(h).find((a) => a.req.entries.length > 0)!;
    expect([first.atMs, first.req.prevLogIndex]).to.deep.equal([t0 + 10, 40]); // refused: the follower has 3 entries
    expect(h.raft.acks[0]).to.deep.equal({ type: 'replicated', peer: FOLLOWER, leaderTerm: 3, matchIndex: 0, round: 1, sentAtMs: t0 + 10, atMs: t0 + 10 });
    // The refusal is no progress: the progress reports start with the repair's first success.
    expect(h.raft.replicated()[0]).to.be.above(0);
    expect(h.raft.reports.every((r) => r.type === 'replicated' && r.matchIndex > 0)).to.equal(true);
    expect(h.follower.violations).to.deep.equal([]);
  });

  it('a refusal in an older term is not an acknowledgement', async () => {
    let refused = false;
    const script: Script = (req) => {
      if (isHeartbeat(req)) return { kind: 'error' };
      // The first append is answered in term 2 (an older term than the leader's 3): a refusal.
      if (!refused) { refused = true; return { kind: 'higherTerm', term: 2 }; }
      return { kind: 'reply' };
    };
    h = new StreamHarness({ followerLast: 40, script });
    const t0 = await leadFrom41(h, { logThrough: 41 });
    await h.runFor(5);
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    push(h, 41, 41);
    await h.runUntil(() => h.raft.replicated().includes(41), 2_000, 'follower at 41');
    expect(h.follower.sent.filter((r) => r.action === 'higherTerm')).to.have.length(1);
    // Only the resent append's success: the term-2 refusal (round 1, sent at t0 + 5) is not reported.
    expect(ackView(h)).to.deep.equal([{ matchIndex: 41, round: 1, sentAtMs: t0 + 5 }]);
    expect(appendsOf(h).filter((a) => a.req.entries.length > 0)).to.have.length(2);
    expect(h.raft.reports.some((r) => r.type === 'higherTerm')).to.equal(false);
  });

  it('a success in an older term is neither an acknowledgement nor progress', async () => {
    h = new StreamHarness({ followerLast: 40, script: (req) => (isHeartbeat(req) ? { kind: 'error' } : { kind: 'reply' }) });
    // The follower answers its first append with success in term 2 (as a follower that answered
    // an older leader's request would): the stream must ignore it.
    const follower = h.follower as unknown as { handle(req: RaftRequest): RaftResponse };
    const handle = follower.handle.bind(follower);
    let answered = 0;
    follower.handle = (req) => {
      const resp = handle(req);
      return req.type === 'appendEntries' && req.entries.length > 0 && answered++ === 0 ? { ...resp, term: 2 as Term } : resp;
    };
    const t0 = await leadFrom41(h, { logThrough: 42 });
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    push(h, 41, 41);
    await h.runFor(3 * HEARTBEAT);
    expect(answered).to.equal(1);
    expect(h.follower.last).to.equal(41);
    expect(h.raft.acks, 'nothing reported for the term-2 success').to.deep.equal([]);
    expect(h.raft.reports).to.deep.equal([]);

    // The next append, answered in term 3, is reported.
    const t = h.clock.now();
    push(h, 42, 42);
    await h.runUntil(() => h.raft.replicated().includes(42), 1_000, 'follower at 42');
    expect(ackView(h)).to.deep.equal([{ matchIndex: 42, round: 1, sentAtMs: t }]);
    expect(t).to.be.above(t0);
  });

  it('an answer in a higher term is reported as higherTerm only, not as an acknowledgement', async () => {
    h = new StreamHarness({ followerLast: 40, script: (req) => (isHeartbeat(req) ? { kind: 'error' } : { kind: 'higherTerm', term: 5 }) });
    await leadFrom41(h, { logThrough: 41 });
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    push(h, 41, 41);
    await h.runUntil(() => h.raft.reports.length > 0, 1_000, 'a report');
    await h.runFor(3 * HEARTBEAT);
    expect(h.raft.reports.map((r) => r.type === 'higherTerm' && r.term)).to.deep.equal([5]);
    expect(h.raft.acks).to.deep.equal([]);
  });

  it('lead with a round tags requests from that round; heartbeatNow with an older round keeps it; a new term leads from its own', async () => {
    h = new StreamHarness({ followerLast: 40 });
    const t0 = await leadFrom41(h, { round: 4 });
    await h.runFor(0);
    expect(ackView(h)).to.deep.equal([{ matchIndex: 0, round: 4, sentAtMs: t0 }]);

    // An older round (a late message) does not take the tag back; the heartbeat still goes out at once.
    await h.runFor(ACK_EVERY);
    const sentBefore = h.follower.sent.length;
    h.stream.tell({ type: 'heartbeatNow', round: 2 });
    await h.runFor(0);
    expect(h.follower.sent.length).to.equal(sentBefore + 1);
    expect(ackView(h)[1]).to.deep.equal({ matchIndex: 0, round: 4, sentAtMs: t0 + ACK_EVERY });

    // Leading again, in term 4 from round 9: the new term's acks carry term 4 and round 9.
    const t1 = h.clock.now();
    h.stream.tell({ type: 'lead', params: { term: 4 as Term, nextIndex: 41 as LogIndex, commitIndex: 40 as LogIndex, lastLogIndex: 40 as LogIndex, round: 9 } });
    await h.runFor(0);
    const term4 = h.raft.acks.filter((a) => a.leaderTerm === 4);
    expect(term4.map((a) => ({ round: a.round, sentAtMs: a.sentAtMs }))).to.deep.equal([{ round: 9, sentAtMs: t1 }]);
    expect(h.follower.sent[h.follower.sent.length - 1].req).to.include({ term: 4 });
  });

  it('lead without a round tags from round 0; a later heartbeatNow raises it', async () => {
    h = new StreamHarness({ followerLast: 40 });
    const t0 = await leadFrom41(h);
    await h.runFor(0);
    h.stream.tell({ type: 'heartbeatNow', round: 3 });
    await h.runFor(0);
    expect(ackView(h)).to.deep.equal([{ matchIndex: 0, round: 0, sentAtMs: t0 }, { matchIndex: 0, round: 3, sentAtMs: t0 }]);
  });

  it('throttling: answers without progress or a new round give one report per 10 ms of send time; progress always reports', async () => {
    h = new StreamHarness({ followerLast: 40 });
    const t0 = await leadFrom41(h, { logThrough: 60 });
    await h.runFor(20);
    expect(ackView(h)).to.deep.equal([{ matchIndex: 0, round: 0, sentAtMs: t0 }]);

    // Five heartbeats of round 1 sent together: the first is a new round, the others add nothing.
    const sentBefore = h.follower.sent.length;
    for (let i = 0; i < 5; i++) h.stream.tell({ type: 'heartbeatNow', round: 1 });
    await h.runFor(0);
    expect(h.follower.sent.length - sentBefore, 'heartbeats sent').to.equal(5);
    expect(ackView(h).slice(1)).to.deep.equal([{ matchIndex: 0, round: 1, sentAtMs: t0 + 20 }]);

    // 5 ms later: answered, not reported (same round, less than 10 ms of send time later).
    await h.runFor(5);
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    await h.runFor(0);
    expect(h.follower.sent.length - sentBefore).to.equal(6);
    expect(h.raft.acks).to.have.length(2);

    // 10 ms after the last report: reported again.
    await h.runFor(5);
    h.stream.tell({ type: 'heartbeatNow', round: 1 });
    await h.runFor(0);
    expect(ackView(h).slice(2)).to.deep.equal([{ matchIndex: 0, round: 1, sentAtMs: t0 + 30 }]);

    // 20 appends' worth pushed at once, all answered within the same instant: every answer that
    // moves the match is reported, each with its own match.
    await h.runFor(5);
    const t = h.clock.now();
    push(h, 41, 60);
    await h.runUntil(() => h.raft.replicated().includes(60), 1_000, 'follower at 60');
    expect(h.clock.now()).to.equal(t);
    const appendsAnswered = appendsOf(h).filter((a) => a.req.entries.length > 0).length;
    expect(appendsAnswered).to.equal(5); // 4 entries each
    expect(ackView(h).slice(3)).to.deep.equal([44, 48, 52, 56, 60].map((m) => ({ matchIndex: m, round: 1, sentAtMs: t })));
    expect(h.raft.replicated()).to.deep.equal([44, 48, 52, 56, 60]);
    expect(h.follower.violations).to.deep.equal([]);
  });

  it('throttling counts send time, not answer time: late answers to requests sent together are one report', async () => {
    // The election heartbeat is answered 15 ms late, the next ones 30, 45, 60 and 75 ms late.
    let n = 0;
    h = new StreamHarness({ followerLast: 40, script: (req) => (isHeartbeat(req) ? { kind: 'delay', ms: 15 * ++n } : { kind: 'reply' }) });
    const t0 = await leadFrom41(h);
    await h.runFor(20);
    const t = h.clock.now();
    for (let i = 0; i < 4; i++) h.stream.tell({ type: 'heartbeatNow', round: 2 });
    await h.runFor(0);
    expect(n).to.equal(5);
    // Until t + 76 (t0 + 96), before the timer's next heartbeat at t0 + 100: every answer is in,
    // spread over 45 ms of answer time, but all sent at t: one report.
    await h.runFor(76);
    expect(h.raft.acks.map((a) => ({ round: a.round, sentAtMs: a.sentAtMs, atMs: a.atMs }))).to.deep.equal([
      { round: 0, sentAtMs: t0, atMs: t0 + 15 },
      { round: 2, sentAtMs: t, atMs: t + 30 },
    ]);
  });
});
