/**
 * The Forwarder (actors/raft/forwarder.ts) on the virtual clock, with a scripted network: when a
 * forwarded client request goes out, to whom, and how it ends. The Raft actor's mailbox hops
 * (answered, deadlineDue) are direct calls here, so every step is explicit and deterministic.
 */
import { expect } from 'chai';
import { encodeClientResponse, decodeClientRequest, type ClientRequest, type ClientResponse } from '../../actors/raft/codec';
import '../../actors/errors-registry';
import { ForwardToLeaderError, LeaderTransferInProgressError, NotAMemberError } from '../../actors/raft/core/errors';
import type { NodeId, RaftRole, Term } from '../../actors/raft/core/types';
import { Forwarder, forwardMarginMs, RESEND_BACKOFF_MS } from '../../actors/raft/forwarder';
import { AskTimeoutError, reviveError, serializeError } from '../../runtime/errors';
import { VirtualClock } from '../../runtime/clock';
import { UnreachableError } from '../../network/network';

interface Sent { readonly to: NodeId; readonly req: ClientRequest; readonly timeoutMs: number; resolve(b: Uint8Array): void; reject(e: Error): void }

/** Lets the promise callbacks of settled sends run (they call `answered`, as the actor's mailbox would). */
const flush = () => new Promise<void>((r) => setImmediate(r));

function harness(start: { leader: number | null; term: number }) {
  const clock = new VirtualClock();
  const status = { currentLeader: start.leader as NodeId | null, role: 'Follower' as RaftRole, currentTerm: start.term as Term, outOfCluster: false };
  const sent: Sent[] = [];
  const outcomes: Array<{ ok: ClientResponse } | { err: Error }> = [];
  const fwd: Forwarder = new Forwarder({
    self: 1 as NodeId,
    clock,
    status: () => ({ ...status }),
    send: (to, rpc, timeoutMs) => new Promise<Uint8Array>((resolve, reject) => { sent.push({ to, req: decodeClientRequest(rpc), timeoutMs, resolve, reject }); }),
    handleAsLeader: () => { throw new Error('not the leader in these tests'); },
    answered: (id, bytes, error) => fwd.onAnswer(id, bytes, error),
    deadlineDue: () => fwd.expire(),
  });
  const write = (timeoutMs: number) => fwd.forward(
    { type: 'forwardWrite', from: 1 as NodeId, payload: new Uint8Array([7]), responseMode: 'committed' },
    (ok) => outcomes.push({ ok }), (err) => outcomes.push({ err }), fwd.deadline(timeoutMs));
  const newLeader = (leader: number | null, term: number) => { status.currentLeader = leader as NodeId | null; status.currentTerm = term as Term; fwd.dispatch(); };
  const leave = () => { status.currentLeader = null; status.role = 'NonVoter'; status.outOfCluster = true; fwd.dispatch(); };
  return { clock, sent, outcomes, write, newLeader, leave, fwd };
}

const ok = (index: number): Uint8Array => encodeClientResponse({ type: 'clientOk', index: index as never, term: 2 as never });
const downErr = (target: number) => new UnreachableError(target, 'connection refused', { notSent: true });
const refused = (code: string, leaderId: number | null, props: Record<string, unknown> = {}): Uint8Array =>
  encodeClientResponse({ type: 'clientError', code, message: `refused: ${code}`, leaderId: leaderId as NodeId | null, props });

describe('Forwarder', () => {
  it('gives a request up a margin before its client\'s timeout: a tenth, but at least min(1 s, half)', () => {
    expect(forwardMarginMs(100)).to.equal(50);
    expect(forwardMarginMs(600)).to.equal(300);
    expect(forwardMarginMs(3_000)).to.equal(1_000);
    expect(forwardMarginMs(10_000)).to.equal(1_000);
    expect(forwardMarginMs(30_000)).to.equal(3_000);
    const h = harness({ leader: null, term: 1 });
    expect(h.fwd.deadline(600)).to.equal(300);
    expect(h.fwd.deadline(undefined)).to.equal(27_000); // RaftNode's default 30 s
  });

  it('a request waiting for a leader is answered ForwardToLeaderError(null) at its deadline, even when a longer one was waiting first', () => {
    const h = harness({ leader: null, term: 1 });
    h.write(30_000); // deadline 27 000
    h.write(600); // deadline 300: must not wait for the first one's timer
    h.clock.advance(299);
    expect(h.outcomes).to.have.length(0);
    h.clock.advance(1);
    expect(h.outcomes).to.have.length(1);
    const { err } = h.outcomes[0] as { err: Error };
    expect(err).to.be.instanceOf(ForwardToLeaderError);
    expect((err as ForwardToLeaderError).leaderId).to.equal(null);
    expect(h.sent).to.have.length(0);
  });

  it('a send that never left (leader down) waits and goes to the next leader as soon as one is known, once', async () => {
    const h = harness({ leader: 2, term: 3 });
    h.write(10_000);
    expect(h.sent.map((s) => s.to)).to.deep.equal([2]);
    h.sent[0].reject(downErr(2));
    await flush();
    expect(h.outcomes, 'not failed: it waits for another leader').to.have.length(0);
    h.clock.advance(10); // inside the backoff: no resend to the same leader in the same term
    expect(h.sent).to.have.length(1);
    h.newLeader(null, 4); // an election: no leader known yet
    expect(h.sent).to.have.length(1);
    h.newLeader(3, 4);
    expect(h.sent.map((s) => s.to)).to.deep.equal([2, 3]);
    expect(h.sent[1].req).to.deep.equal(h.sent[0].req);
    expect(h.sent[1].timeoutMs).to.equal(9_000 - 10);
    h.sent[1].resolve(ok(17));
    await flush();
    expect(h.outcomes).to.deep.equal([{ ok: { type: 'clientOk', index: 17, term: 2 } }]);
    h.clock.advance(20_000);
    expect(h.sent, 'nothing more is sent').to.have.length(2);
    expect(h.outcomes).to.have.length(1);
  });

  it('the same leader in a new term is tried at once; in the same term after a backoff that doubles to its cap', async () => {
    const h = harness({ leader: 2, term: 3 });
    h.write(30_000);
    const fail = async (i: number) => { h.sent[i].reject(downErr(2)); await flush(); };
    await fail(0);
    h.newLeader(2, 4); // re-elected: a new term is a new chance
    expect(h.sent).to.have.length(2);
    await fail(1);
    const gaps: number[] = [];
    let last = h.clock.now();
    for (let i = 2; i < 9; i++) {
      while (h.sent.length === i) h.clock.advance(1);
      gaps.push(h.clock.now() - last);
      last = h.clock.now();
      await fail(i);
    }
    expect(gaps).to.deep.equal([50, 100, 200, 400, 800, 1000, 1000]);
    expect(RESEND_BACKOFF_MS).to.deep.equal({ initial: 50, max: 1_000 });
    expect(h.sent.every((s) => s.to === 2)).to.equal(true);
    expect(h.outcomes).to.have.length(0);
  });

  it('at its deadline a request whose leader stayed unreachable is answered with that UnreachableError (not sent)', async () => {
    const h = harness({ leader: 2, term: 3 });
    h.write(3_000); // deadline 2 000
    for (;;) {
      const n = h.sent.length;
      h.sent[n - 1].reject(downErr(2));
      await flush();
      while (h.sent.length === n && h.outcomes.length === 0) h.clock.advance(5);
      if (h.outcomes.length > 0) break;
    }
    expect(h.clock.now()).to.equal(2_000);
    const { err } = h.outcomes[0] as { err: Error };
    expect(err).to.be.instanceOf(UnreachableError);
    expect((err as UnreachableError).notSent).to.equal(true);
    expect((err as UnreachableError).target).to.equal(2);
    expect(h.sent.length).to.be.within(5, 12);
  });

  it('a send that may have been delivered fails the request at once: a resend could apply a write twice', async () => {
    for (const error of [new UnreachableError(2, 'connection closed: reset'), new AskTimeoutError('n2/raft via tcp', 500)]) {
      const h = harness({ leader: 2, term: 3 });
      h.write(10_000);
      h.sent[0].reject(error);
      await flush();
      expect(h.outcomes).to.deep.equal([{ err: error }]);
      h.newLeader(3, 4);
      h.clock.advance(20_000);
      expect(h.sent, `${error.name}: never resent`).to.have.length(1);
    }
  });

  it('a leader that answers "not the leader" with no leader known, or "transferring", took nothing: the request waits for the next leader', async () => {
    const h = harness({ leader: 2, term: 3 });
    h.write(10_000);
    h.sent[0].resolve(refused('ForwardToLeader', null));
    await flush();
    expect(h.outcomes).to.have.length(0);
    h.newLeader(3, 4);
    expect(h.sent.map((s) => s.to)).to.deep.equal([2, 3]);
    h.sent[1].resolve(refused('LeaderTransferInProgress', 3, { target: 2 }));
    await flush();
    expect(h.outcomes).to.have.length(0);
    h.newLeader(2, 5); // the transfer went through
    expect(h.sent.map((s) => s.to)).to.deep.equal([2, 3, 2]);
    h.sent[2].resolve(ok(40));
    await flush();
    expect(h.outcomes).to.deep.equal([{ ok: { type: 'clientOk', index: 40, term: 2 } }]);
  });

  it('at its deadline such a request is answered with the typed error of its last refusal', async () => {
    const h = harness({ leader: 2, term: 3 });
    h.write(1_000); // deadline 500
    while (h.outcomes.length === 0) {
      const n = h.sent.length;
      h.sent[n - 1].resolve(refused('LeaderTransferInProgress', 2, { target: 3 }));
      await flush();
      while (h.sent.length === n && h.outcomes.length === 0) h.clock.advance(5);
    }
    expect(h.clock.now()).to.equal(500);
    const { err } = h.outcomes[0] as { err: Error };
    expect(err).to.be.instanceOf(LeaderTransferInProgressError);
    expect((err as LeaderTransferInProgressError).target).to.equal(3);
  });

  it('redirects are followed, three sends in all; other refusals are answered at once', async () => {
    const h = harness({ leader: 2, term: 3 });
    h.write(10_000);
    h.sent[0].resolve(refused('ForwardToLeader', 3));
    await flush();
    h.sent[1].resolve(refused('ForwardToLeader', 4));
    await flush();
    h.sent[2].resolve(refused('ForwardToLeader', 5));
    await flush();
    expect(h.sent.map((s) => s.to)).to.deep.equal([2, 3, 4]);
    expect(h.outcomes).to.deep.equal([{ ok: { type: 'clientError', code: 'ForwardToLeader', message: 'refused: ForwardToLeader', leaderId: 5, props: {} } }]);

    const g = harness({ leader: 2, term: 3 });
    g.write(10_000);
    g.sent[0].resolve(refused('ProposalDropped', 2, { index: 9 }));
    await flush();
    expect(g.outcomes).to.have.length(1);
    expect((g.outcomes[0] as { ok: ClientResponse }).ok).to.include({ type: 'clientError', code: 'ProposalDropped' });
    g.newLeader(3, 4);
    expect(g.sent).to.have.length(1);
  });

  it('out of the cluster, what waits and what comes later is answered NotAMemberError at once, and nothing is sent', () => {
    const h = harness({ leader: null, term: 3 });
    h.write(10_000);
    h.write(10_000);
    expect(h.outcomes).to.have.length(0);
    h.leave();
    expect(h.outcomes).to.have.length(2);
    h.write(10_000);
    expect(h.outcomes).to.have.length(3);
    for (const o of h.outcomes) {
      const { err } = o as { err: Error };
      expect(err).to.be.instanceOf(NotAMemberError);
      expect((err as NotAMemberError).nodeId).to.equal(1);
    }
    expect(h.sent).to.have.length(0);
  });

  it('UnreachableError is "maybe sent" unless the transport says otherwise, and says so in its message', () => {
    const maybe = new UnreachableError(2, 'connection closed');
    expect(maybe.notSent).to.equal(false);
    expect(maybe.message).to.equal('node 2 unreachable: connection closed');
    const not = downErr(2);
    expect(not.notSent).to.equal(true);
    expect(not.message).to.equal('node 2 unreachable: connection refused (not sent)');
  });

  it('UnreachableError (notSent) and NotAMemberError keep their class and fields across a thread', () => {
    const cross = <E extends Error>(e: E): E => reviveError(structuredClone(serializeError(e))) as E;
    for (const notSent of [true, false]) {
      const e = cross(new UnreachableError(4, 'link down', { notSent }));
      expect(e).to.be.instanceOf(UnreachableError);
      expect([e.target, e.reason, e.notSent]).to.deep.equal([4, 'link down', notSent]);
    }
    const m = cross(new NotAMemberError(5));
    expect(m).to.be.instanceOf(NotAMemberError);
    expect(m.nodeId).to.equal(5);
    expect(m.code).to.equal('NotAMember');
  });
});
