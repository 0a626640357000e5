/**
 * The follower's side of RaftNodeOptions.forwardToLeader: client requests that reach a node that
 * is not the leader go to the leader through the network actor, and its answer comes back to the
 * client. Owned by the Raft actor, on its thread; everything it does to the outside world goes
 * through the hooks it is given, so it holds no reference to the actor.
 *
 * - A request waits while no leader is known, and goes out as soon as one is.
 * - Each carries its client's deadline: one still waiting then is answered ForwardToLeaderError
 *   (nothing appended); one on its way is bounded by the time left.
 * - A node that is asked but no longer leads answers "not the leader", naming the leader it knows:
 *   the request follows that name, MAX_FORWARD_HOPS sends in all.
 * - A request that certainly was not taken is not the client's failure: a send the network knows
 *   never left this node (UnreachableError with notSent: the leader we believe in is down or cut
 *   off), or an answer that appended nothing and names no one else to try (ForwardToLeader with no
 *   leader: it stepped down or was removed; LeaderTransferInProgress: it is handing over). The
 *   request waits again, and goes out as soon as another leader (or the same one in a new term) is
 *   known, or again to the same one after a backoff. So a write sent during a failover is carried
 *   to the new leader instead of failing at once. At its deadline it is answered with the last
 *   such error (nothing appended).
 * - A node out of the cluster (its config no longer lists it) will never learn a leader: what
 *   waits on it, and what comes later, is answered NotAMemberError at once (nothing appended).
 */
import type { Clock, TimerId } from '../../runtime/actor';
import { reviveError } from '../../runtime/errors';
import { decodeClientResponse, encodeClientRequest, type ClientRequest, type ClientResponse } from './codec';
import { ForwardToLeaderError, NotAMemberError } from './core/errors';
import type { NodeId, RaftRole, Term } from './core/types';
import { UnreachableError } from '../../network/network';

/** Most sends a forwarded request makes (the first, then redirects) before its error goes to the client. */
export const MAX_FORWARD_HOPS = 3;

/** First and longest wait before a request whose send was not sent goes to the same leader again. */
export const RESEND_BACKOFF_MS = { initial: 50, max: 1_000 } as const;

/** How long a request waits when its client gave no timeout (RaftNode's default). */
const DEFAULT_CLIENT_TIMEOUT_MS = 30_000;

export interface ForwarderHooks {
  readonly self: NodeId;
  readonly clock: Clock;
  /** Who we believe leads, our own role and term, and whether we are out of the cluster (see outOfCluster in raft-actor). */
  status(): { readonly currentLeader: NodeId | null; readonly role: RaftRole; readonly currentTerm: Term; readonly outOfCluster: boolean };
  /** Sends the encoded request to `to` through the network actor; resolves with the encoded answer. */
  send(to: NodeId, rpc: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** We lead now: handle the request as the leader does a forwarded one. */
  handleAsLeader(req: ClientRequest, settle: (resp: ClientResponse) => void): void;
  /**
   * Asks the owner to call back in its own turn, through its mailbox (messages, never closures):
   * `onAnswer(id, bytes, error)` for the answer of a send, `expire()` when a deadline may have passed.
   */
  answered(id: number, bytes: Uint8Array | null, error: Error | null): void;
  deadlineDue(): void;
}

interface Forward {
  readonly req: ClientRequest;
  readonly settle: (resp: ClientResponse) => void;
  readonly reject: (err: Error) => void;
  hops: number;
  /** Where to send it next: the leader a redirect named; else whoever we believe leads. */
  target: NodeId | null;
  /** When its client stops waiting (our clock). */
  readonly deadlineMs: number;
  /** Where its last send went. */
  sentTo: NodeId | null;
  /** Its last send was certainly not taken (`error` says why): not to that leader in that term again before `at`. */
  resend: { readonly leader: NodeId; readonly term: Term; readonly at: number; readonly backoffMs: number; readonly error: Error } | null;
}

/** How long before a client's timeout `t` its forwarded request is given up: see Forwarder.deadline. */
export function forwardMarginMs(t: number): number {
  return Math.max(0.1 * t, Math.min(1_000, t / 2));
}

/**
 * @example
 * const fwd = new Forwarder(hooks);
 * fwd.forward({ type: 'forwardRead', from: self }, (resp) => ..., (err) => ..., fwd.deadline(timeoutMs));
 * // after every step of the core: fwd.dispatch() (a leader may have become known)
 */
export class Forwarder {
  private readonly inFlight = new Map<number, Forward>();
  private nextId = 1;
  private waiting: Forward[] = [];
  private timer: TimerId | null = null;
  private timerAt = 0;

  constructor(private readonly hooks: ForwarderHooks) {}

  get hasWaiting(): boolean { return this.waiting.length > 0; }

  /**
   * When a forwarded request of a client waiting `timeoutMs` is given up, on our clock: before the
   * client's own timeout, so the client hears why (no leader) rather than a bare timeout. The margin
   * is what the answer may need to get back: the client's timer started before this actor saw the
   * request, and a loaded machine delays both threads. A tenth of the timeout (60 ms of a 600 ms
   * one) lost that race in CI, so the margin is at least min(1 s, half the timeout).
   */
  deadline(timeoutMs: number | undefined): number {
    const t = typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : DEFAULT_CLIENT_TIMEOUT_MS;
    return this.hooks.clock.now() + t - forwardMarginMs(t);
  }

  forward(req: ClientRequest, settle: (resp: ClientResponse) => void, reject: (err: Error) => void, deadlineMs: number): void {
    this.route([{ req, settle, reject, hops: MAX_FORWARD_HOPS, deadlineMs, target: null, sentTo: null, resend: null }]);
  }

  /** The waiting requests go where they can now (after every step of the owner: a leader may have become known). */
  dispatch(): void {
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    this.route(batch);
  }

  /**
   * Sends each request to the leader (the one a redirect named, else the one we know); as leader
   * ourselves, handles it here. Those with nowhere to go yet wait, and the timer is set to wake by
   * their deadline or the end of their backoff. Each request costs O(1): a burst of requests that
   * arrive while no leader is known does not rescan the ones already waiting.
   */
  private route(batch: readonly Forward[]): void {
    const s = this.hooks.status();
    const now = this.hooks.clock.now();
    if (s.outOfCluster) {
      const err = new NotAMemberError(this.hooks.self);
      for (const f of batch) f.reject(err);
      return;
    }
    const wait = (f: Forward): void => {
      this.waiting.push(f);
      this.wakeBy(f.resend === null ? f.deadlineMs : Math.min(f.deadlineMs, f.resend.at));
    };
    for (const f of batch) {
      const to = f.target ?? s.currentLeader;
      f.target = null;
      if (to === null) { wait(f); continue; }
      const r = f.resend;
      if (r !== null && to === r.leader && s.currentTerm === r.term && now < r.at) { wait(f); continue; }
      if (to === this.hooks.self) {
        if (s.role === 'Leader') this.hooks.handleAsLeader(f.req, f.settle);
        else wait(f); // named by an answer, but not (or no longer) leading: wait for the real leader
        continue;
      }
      const timeoutMs = Math.floor(f.deadlineMs - now);
      if (timeoutMs <= 0) { f.reject(r?.error ?? new ForwardToLeaderError(to)); continue; }
      const id = this.nextId++;
      this.inFlight.set(id, f);
      f.sentTo = to;
      this.hooks.send(to, encodeClientRequest(f.req), timeoutMs).then(
        (bytes) => this.hooks.answered(id, bytes, null),
        (error: Error) => this.hooks.answered(id, null, error),
      );
    }
  }

  /** The owner stops: every request still here gets `err`. */
  rejectAll(err: Error): void {
    if (this.timer !== null) this.hooks.clock.clearTimeout(this.timer);
    this.timer = null;
    for (const f of [...this.inFlight.values(), ...this.waiting]) f.reject(err);
    this.inFlight.clear();
    this.waiting = [];
  }

  /** The answer to send `id` (through the owner's mailbox): settle, or follow a redirect. */
  onAnswer(id: number, bytes: Uint8Array | null, error: Error | null): void {
    const f = this.inFlight.get(id);
    if (f === undefined) return;
    this.inFlight.delete(id);
    const inTime = this.hooks.clock.now() < f.deadlineMs;
    if (bytes === null) {
      if (error instanceof UnreachableError && error.notSent && inTime) {
        this.waitToResend(f, error.target as NodeId, error);
        return;
      }
      f.reject(error ?? new Error('forwarded request failed'));
      return;
    }
    let resp: ClientResponse;
    try { resp = decodeClientResponse(bytes); } catch (err) { f.reject(err as Error); return; }
    if (resp.type === 'clientError' && resp.code === 'ForwardToLeader' && f.hops > 1 && resp.leaderId !== null && resp.leaderId !== this.hooks.self) {
      f.hops--;
      f.target = resp.leaderId;
      this.route([f]);
      return;
    }
    if (resp.type === 'clientError' && inTime && f.sentTo !== null && notTakenNoOneNamed(resp, this.hooks.self)) {
      this.waitToResend(f, f.sentTo, clientError(resp));
      return;
    }
    f.settle(resp);
  }

  /**
   * Requests that waited past their client's deadline are answered, so none waits forever: with
   * the error of their last send if it was not taken (the leader was down, stepped down, or was
   * handing over), else ForwardToLeaderError (no leader known). Those whose resend backoff is over
   * go out again.
   */
  expire(): void {
    this.timer = null;
    const now = this.hooks.clock.now();
    const live: Forward[] = [];
    for (const f of this.waiting) {
      if (f.deadlineMs <= now) f.reject(f.resend?.error ?? new ForwardToLeaderError(null));
      else live.push(f);
    }
    this.waiting = [];
    this.route(live);
  }

  /**
   * `f` was certainly not taken by `leader`: it waits for another leader, or for its backoff to end.
   * The backoff doubles while the same leader of the same term keeps not taking it, and starts over
   * for another.
   */
  private waitToResend(f: Forward, leader: NodeId, error: Error): void {
    const term = this.hooks.status().currentTerm;
    const prev = f.resend;
    const backoffMs = prev !== null && prev.leader === leader && prev.term === term ? Math.min(RESEND_BACKOFF_MS.max, 2 * prev.backoffMs) : RESEND_BACKOFF_MS.initial;
    f.resend = { leader, term, at: this.hooks.clock.now() + backoffMs, backoffMs, error };
    this.route([f]); // a new leader may be known already
  }

  /** The timer wakes by `at`: one set for later (a request with a shorter timeout came after) is replaced. */
  private wakeBy(at: number): void {
    if (this.timer !== null) {
      if (this.timerAt <= at) return;
      this.hooks.clock.clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = this.hooks.clock.setTimeout(() => this.hooks.deadlineDue(), Math.max(0, at - this.hooks.clock.now()));
  }
}

/**
 * An answer that appended nothing and names no other node to try: "not the leader" with no leader
 * known (or naming us), or "handing leadership over". Waiting for the next leader is the way on.
 */
function notTakenNoOneNamed(resp: Extract<ClientResponse, { type: 'clientError' }>, self: NodeId): boolean {
  if (resp.code === 'ForwardToLeader') return resp.leaderId === null || resp.leaderId === self;
  return resp.code === 'LeaderTransferInProgress';
}

/** The typed error a leader's clientError answer stands for, rebuilt from its code and fields. */
export function clientError(resp: Extract<ClientResponse, { type: 'clientError' }>): Error {
  if (resp.code === 'ForwardToLeader') return new ForwardToLeaderError(resp.leaderId);
  return reviveError({ name: resp.code, message: resp.message, code: resp.code, props: { ...resp.props, leaderId: resp.leaderId } });
}
