/**
 * ReplicationStream: one actor per follower, on the leader. It keeps a window of AppendEntries in
 * flight (pipelining: it sends the next batch before the previous one is answered), sends
 * heartbeats on its own timer so they never wait behind a large append (async-raft #103), and
 * tells the Raft actor how far the follower has durably matched.
 *
 * Line-rate mode: the Raft actor pushes new entries to the stream as they are appended and the
 * stream sends them from its buffer. Lagging mode: when the follower is further behind than the
 * buffer holds (it was partitioned, or its log had to be repaired), the stream reads the entries
 * it needs from storage, then returns to line rate once it reaches the buffer.
 *
 * Snapshot mode (paper 7): when the follower needs entries the leader has purged behind a snapshot
 * (storage answers `getEntries` with LogPurgedError), the stream sends it the current snapshot
 * instead, as InstallSnapshot chunks of at most `snapshotMaxChunkBytes`, one in flight at a time.
 * No appends go out meanwhile; heartbeats do (anchored at the match, they never conflict). Once the
 * last chunk is acknowledged the follower matches at the snapshot's last included index, and the
 * stream goes back to appends from the entry after it.
 *
 * Acknowledgements: every answer in the leader's term (success or refusal) shows the follower
 * accepted this leader after the request left. The stream tags each request with the latest
 * heartbeat round the Raft actor asked for, and reports answers (round, send time) with its
 * `replicated` reports: read-index rounds, the lease and check-quorum are counted from them. A
 * `heartbeatNow` sends a heartbeat at once, tagged with the new round.
 *
 * The stream is idle until the Raft actor tells it to lead, and goes idle again when told, or when
 * a response carries a higher term.
 */
import type { Logger } from 'pino';
import type { Actor, ActorContext, ActorRef, TimerId } from '../../runtime/actor';
import { decodeEntries, decodeResponse, encodeRequest } from '../raft/codec';
import { MalformedMessageError } from '../raft/core/errors';
import type { RaftConfig } from '../raft/core/config';
import type { AppendEntriesRequest, Entry, InstallSnapshotRequest, LogIndex, NodeId, SnapshotMeta, Term } from '../raft/core/types';
import type { NetworkMsg } from '../../network/network';
import type { StorageMsg } from '../../storage/storage';

/** Where a stream starts leading from (the Raft actor's view when it became leader). */
export interface LeadParams {
  readonly term: Term;
  /** First index to send: the leader's last index + 1 at election. */
  readonly nextIndex: LogIndex;
  readonly commitIndex: LogIndex;
  /** The leader's last index now: entries above nextIndex - 1 that were never pushed are read from storage. */
  readonly lastLogIndex: LogIndex;
  /** The heartbeat round to tag requests with (see `heartbeatNow`); 0 when none was asked for. */
  readonly round?: number;
}

export type StreamMsg =
  | { readonly type: 'lead'; readonly params: LeadParams }
  | { readonly type: 'idle' }
  /** New entries appended by the leader (consecutive, following the previous push). */
  | { readonly type: 'entries'; readonly entries: readonly Entry[] }
  | { readonly type: 'commit'; readonly commitIndex: LogIndex }
  | { readonly type: 'heartbeat' }
  /** Send a heartbeat now and tag every request from now on with `round` (read-index confirmation). */
  | { readonly type: 'heartbeatNow'; readonly round: number }
  | { readonly type: 'response'; readonly epoch: number; readonly seq: number; readonly bytes: Uint8Array | null; readonly error: string | null }
  /** `purged`: storage refused with LogPurgedError (the entries are behind a snapshot). */
  | { readonly type: 'fetched'; readonly epoch: number; readonly bytes: Uint8Array | null; readonly purged?: boolean }
  // Snapshot mode: each answer carries the transfer's epoch and the token of the one step it answers.
  | { readonly type: 'snapshotFound'; readonly epoch: number; readonly token: number; readonly meta: SnapshotMeta | null; readonly error: string | null }
  | { readonly type: 'snapshotRead'; readonly epoch: number; readonly token: number; readonly data: Uint8Array | null; readonly gone: boolean; readonly error: string | null }
  | { readonly type: 'snapshotResponse'; readonly epoch: number; readonly token: number; readonly bytes: Uint8Array | null; readonly error: string | null }
  | { readonly type: 'snapshotResume'; readonly epoch: number; readonly token: number };

/** What a stream tells the Raft actor. */
export type StreamReport =
  /**
   * Progress of `peer`, and (with `round`, `sentAtMs`) an answer in `leaderTerm` to a request that
   * left at `sentAtMs` tagged with heartbeat round `round`.
   */
  | { readonly type: 'replicated'; readonly peer: NodeId; readonly leaderTerm: Term; readonly matchIndex: LogIndex; readonly round?: number; readonly sentAtMs?: number }
  | { readonly type: 'higherTerm'; readonly term: Term }
  /** Asked by a (re)started stream: answer LeadParams when leading, else null. */
  | { readonly type: 'streamStart'; readonly peer: NodeId };

export interface StreamArgs {
  readonly self: number;
  readonly target: number;
  readonly config: RaftConfig;
  readonly raftActorId: string;
  readonly networkActorId: string;
  readonly storageActorId: string;
}

interface InFlight { readonly prevIndex: LogIndex; readonly lastIndex: LogIndex; readonly lastTerm: Term; readonly heartbeat: boolean; readonly sentAtMs: number; readonly round: number }

/**
 * Answers that bring no new round or match are reported at most this often (ms of send time):
 * enough for the lease and check-quorum, without one Raft actor message per append answered.
 */
const ACK_REPORT_EVERY_MS = 10;

/**
 * A snapshot transfer under way. Exactly one step is outstanding at any time (finding the
 * snapshot, reading a chunk, sending it, or the pause before a restart), and its answer must carry
 * `token`: anything else is stale and ignored.
 */
interface SnapshotTransfer {
  /** `this.epoch` when the transfer began (lead/idle end the transfer; their epoch bump guards late answers). */
  readonly epoch: number;
  token: number;
  /** The snapshot being sent; null until storage names it. */
  meta: SnapshotMeta | null;
  /** Where the chunk being read or sent starts. */
  offset: number;
  /** The chunk in flight: where it ends, whether it is the last, and when it left. */
  sending: { readonly end: number; readonly done: boolean; readonly sentAtMs: number } | null;
  /**
   * A chunk still unanswered this long after it left, while a later heartbeat was answered, is
   * presumed lost (see chunkPresumedLost). Doubles at every such restart of this transfer, so a
   * follower whose disk is merely slow is not restarted forever.
   */
  lostAfterMs: number;
  /** When the current snapshot's transfer began (restarts included), for the log. */
  startedAtMs: number;
  chunks: number;
  restarts: number;
  retryTimer: TimerId | null;
}

/** Errors cross threads as plain errors unless their class is registered: recognise them by name or code. */
function isStorageError(err: unknown, name: string, code: string): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { name?: unknown; code?: unknown };
  return e.name === name || e.code === code;
}
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class ReplicationStream implements Actor<StreamMsg> {
  private term: Term | null = null;
  private commitIndex = 0 as LogIndex;
  /** Next index to send (advanced optimistically as batches go out). */
  private nextIndex = 1 as LogIndex;
  private matchIndex = 0 as LogIndex;
  private matchTerm = 0 as Term;
  /** Entries [bufferStart, bufferStart + buffer.length), consecutive. */
  private buffer: Entry[] = [];
  private bufferStart = 1 as LogIndex;
  /** Highest index the leader has told us about. */
  private leaderLast = 0 as LogIndex;
  /** Responses from an older epoch are ignored (the window was reset). */
  private epoch = 0;
  private seq = 0;
  private readonly inflight = new Map<number, InFlight>();
  private fetching = false;
  /** Set while in snapshot mode: no appends go out until it ends. */
  private snap: SnapshotTransfer | null = null;
  /**
   * Until the follower's log is known to match ours in this term (a first success), one append at a
   * time (etcd's probe state): with a window, a later request's "log too short" answer could arrive
   * before the probe's and send the stream forward again, so repair of a divergent log kept
   * starting over (simulator, 6.824 Figure 8 unreliable, seed 15).
   */
  private probing = true;
  private pausedUntilMs = 0;
  private lastSentMs = -Infinity;
  private heartbeatTimer: TimerId | null = null;
  private heartbeatGeneration = 0;
  /** The heartbeat round requests are tagged with, and the latest acknowledgement reported. */
  private round = 0;
  private reportedRound = 0;
  private reportedSentAtMs = -Infinity;
  private ctx!: ActorContext;
  /** Node, target and the term being led, on every line. */
  private log!: Logger;
  private raft!: ActorRef<StreamReport>;
  private network!: ActorRef<NetworkMsg>;
  private storage!: ActorRef<StorageMsg>;
  private readonly rpcTimeoutMs: number;
  /**
   * An InstallSnapshot chunk is answered once the follower has written it durably, and the last one
   * once the whole snapshot is durable there and installed in its log (the state machine restore
   * follows): far slower than an append. Timing it
   * out like an append would restart a large transfer forever. Heartbeats go on meanwhile, so a
   * long wait costs no leadership, only time when a chunk is really lost.
   */
  private readonly snapshotRpcTimeoutMs: number;
  private readonly maxBufferedEntries: number;

  constructor(private readonly args: StreamArgs) {
    this.rpcTimeoutMs = Math.max(1000, 4 * args.config.electionTimeoutMaxMs);
    this.snapshotRpcTimeoutMs = Math.max(10_000, this.rpcTimeoutMs);
    this.maxBufferedEntries = Math.max(args.config.replicationLagThreshold, args.config.maxPayloadEntries * args.config.maxInflightAppends);
  }

  async started(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    // Replies are addressed by actor id, so a restarted stream could receive its predecessor's:
    // a random starting epoch keeps their tags from matching ours.
    this.epoch = ctx.random.nextInt(0, 0x7fff_ffff);
    this.log = ctx.logger.child({ node: this.args.self, target: this.args.target, term: null });
    this.raft = ctx.ref(this.args.raftActorId);
    this.network = ctx.ref(this.args.networkActorId);
    this.storage = ctx.ref(this.args.storageActorId);
    // A restarted stream asks where to resume; a fresh one gets 'lead' from the Raft actor.
    const params = await this.raft.ask<LeadParams | null>({ type: 'streamStart', peer: this.args.target as NodeId });
    if (params && this.term === null) this.lead(params);
  }

  stopped(): void { this.stopHeartbeats(); }

  receive(msg: StreamMsg): void {
    switch (msg.type) {
      case 'lead': return this.lead(msg.params);
      case 'idle': return this.idle();
      case 'entries': return this.onEntries(msg.entries);
      case 'commit':
        if (msg.commitIndex > this.commitIndex) this.commitIndex = msg.commitIndex;
        return this.pump();
      case 'heartbeat': return this.onHeartbeatTimer();
      case 'heartbeatNow':
        if (msg.round > this.round) this.round = msg.round;
        return this.sendHeartbeat();
      case 'response': return this.onResponse(msg.epoch, msg.seq, msg.bytes, msg.error);
      case 'fetched': return this.onFetched(msg.epoch, msg.bytes, msg.purged === true);
      case 'snapshotFound': return this.onSnapshotFound(msg.epoch, msg.token, msg.meta, msg.error);
      case 'snapshotRead': return this.onSnapshotRead(msg.epoch, msg.token, msg.data, msg.gone, msg.error);
      case 'snapshotResponse': return this.onSnapshotResponse(msg.epoch, msg.token, msg.bytes, msg.error);
      case 'snapshotResume': return this.onSnapshotResume(msg.epoch, msg.token);
      default: {
        const never: never = msg;
        throw new TypeError(`unknown stream message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }

  private lead(p: LeadParams): void {
    this.term = p.term;
    this.log = this.ctx.logger.child({ node: this.args.self, target: this.args.target, term: p.term });
    this.commitIndex = p.commitIndex;
    this.nextIndex = p.nextIndex;
    this.leaderLast = p.lastLogIndex;
    this.matchIndex = 0 as LogIndex;
    this.matchTerm = 0 as Term;
    this.round = Math.max(this.round, p.round ?? 0);
    this.reportedRound = 0;
    this.reportedSentAtMs = -Infinity;
    this.buffer = [];
    this.bufferStart = p.nextIndex;
    this.abandonSnapshot('new term');
    this.resetWindow();
    this.probing = true;
    this.pausedUntilMs = 0;
    this.startHeartbeats();
    this.sendHeartbeat(); // assert leadership at once (paper 5.2: "upon election: send initial empty AppendEntries")
    this.pump();
  }

  private idle(): void {
    this.abandonSnapshot('stream idle');
    this.term = null;
    this.buffer = [];
    this.resetWindow();
    this.stopHeartbeats();
  }

  private resetWindow(): void {
    this.epoch++;
    this.inflight.clear();
    this.fetching = false;
  }

  private onEntries(entries: readonly Entry[]): void {
    if (this.term === null || entries.length === 0) return;
    const first = entries[0].index;
    if (first !== this.bufferStart + this.buffer.length) {
      // Not contiguous with what we hold (should not happen on one thread; be safe): restart the buffer here.
      this.buffer = [];
      this.bufferStart = first;
    }
    for (const e of entries) this.buffer.push(e);
    this.leaderLast = entries[entries.length - 1].index;
    this.trimBuffer();
    this.pump();
  }

  /** Drops what no request can need any more, and bounds the buffer (a far-behind follower goes lagging). */
  private trimBuffer(): void {
    const keepFrom = Math.max(this.bufferStart, Math.min(this.matchIndex, this.nextIndex - 1), this.bufferStart + this.buffer.length - this.maxBufferedEntries);
    const drop = keepFrom - this.bufferStart;
    if (drop > 0) {
      this.buffer.splice(0, drop);
      this.bufferStart = keepFrom as LogIndex;
    }
  }

  private entryAt(index: number): Entry | undefined {
    const i = index - this.bufferStart;
    return i >= 0 && i < this.buffer.length ? this.buffer[i] : undefined;
  }

  private termAt(index: number): Term | null {
    if (index === 0) return 0 as Term;
    if (index === this.matchIndex) return this.matchTerm;
    const e = this.entryAt(index);
    return e ? e.term : null;
  }

  /** Sends as many batches as the window allows. */
  private pump(): void {
    if (this.term === null || this.fetching || this.snap !== null || this.ctx.clock.now() < this.pausedUntilMs) return;
    const { maxInflightAppends, maxPayloadEntries } = this.args.config;
    const window = this.probing ? 1 : maxInflightAppends;
    while (this.countAppends() < window && this.nextIndex <= this.leaderLast) {
      const prevIndex = this.nextIndex - 1;
      const prevTerm = this.termAt(prevIndex);
      if (prevTerm === null || this.entryAt(this.nextIndex) === undefined) {
        // Read from prevIndex when its term is unknown, else from nextIndex: a known prevTerm may be
        // the match's, and the match may be a snapshot's last index, purged from the log (reading
        // it would answer LogPurgedError and send the snapshot again).
        this.fetch(prevTerm !== null ? this.nextIndex : Math.max(1, prevIndex));
        return;
      }
      const from = this.nextIndex - this.bufferStart;
      const to = Math.min(this.buffer.length, from + maxPayloadEntries);
      const entries = this.buffer.slice(from, to);
      this.send({
        type: 'appendEntries', term: this.term, leaderId: this.args.self as NodeId,
        prevLogIndex: prevIndex as LogIndex, prevLogTerm: prevTerm, entries, leaderCommit: this.commitIndex,
      }, false);
      this.nextIndex = (entries[entries.length - 1].index + 1) as LogIndex;
    }
  }

  private countAppends(): number {
    let n = 0;
    for (const f of this.inflight.values()) if (!f.heartbeat) n++;
    return n;
  }

  /** Lagging mode: read [from, bufferStart) (or up to the leader's last index) from storage. */
  private fetch(from: number): void {
    this.fetching = true;
    const span = this.args.config.maxPayloadEntries * this.args.config.maxInflightAppends;
    // Read up to the buffer only when the gap is below it; past it, read toward the leader's last index.
    const upTo = this.buffer.length > 0 && from < this.bufferStart ? this.bufferStart : this.leaderLast + 1;
    const toExclusive = Math.min(upTo, from + span) as LogIndex;
    const epoch = this.epoch;
    const self = this.ctx.self as ActorRef<StreamMsg>;
    this.storage.ask<Uint8Array>({ type: 'getEntries', from: from as LogIndex, toExclusive }).then(
      (bytes) => self.tell({ type: 'fetched', epoch, bytes }),
      (err: unknown) => self.tell({ type: 'fetched', epoch, bytes: null, purged: isStorageError(err, 'LogPurgedError', 'LogPurged') }),
    );
  }

  private onFetched(epoch: number, bytes: Uint8Array | null, purged: boolean): void {
    if (epoch !== this.epoch || this.term === null) return;
    this.fetching = false;
    if (purged) return this.startSnapshot();
    const entries = bytes ? decodeEntries(bytes) : [];
    if (entries.length === 0) { this.pausedUntilMs = this.ctx.clock.now() + this.args.config.heartbeatIntervalMs; return; }
    // Append when the fetched range starts where the buffer ends, prepend when it ends where the
    // buffer starts; otherwise it replaces (the overlapped part of) the buffer.
    const end = entries[entries.length - 1].index + 1;
    if (this.buffer.length > 0 && entries[0].index === this.bufferStart + this.buffer.length) {
      for (const e of entries) this.buffer.push(e);
      return this.pump();
    }
    if (this.buffer.length > 0 && end === this.bufferStart) this.buffer = entries.concat(this.buffer);
    else if (this.buffer.length === 0 || end < this.bufferStart) this.buffer = entries;
    else this.buffer = entries.concat(this.buffer.slice(end - this.bufferStart));
    this.bufferStart = entries[0].index;
    this.pump();
  }

  private send(req: AppendEntriesRequest, heartbeat: boolean): void {
    const seq = ++this.seq;
    const epoch = this.epoch;
    const last = req.entries.length > 0 ? req.entries[req.entries.length - 1] : null;
    this.inflight.set(seq, {
      prevIndex: req.prevLogIndex,
      lastIndex: (last ? last.index : req.prevLogIndex) as LogIndex,
      lastTerm: (last ? last.term : req.prevLogTerm) as Term,
      heartbeat,
      sentAtMs: this.ctx.clock.now(),
      round: this.round,
    });
    this.lastSentMs = this.ctx.clock.now();
    const self = this.ctx.self as ActorRef<StreamMsg>;
    this.network.ask<Uint8Array>({ type: 'send', target: this.args.target as NodeId, rpc: encodeRequest(req), timeoutMs: this.rpcTimeoutMs }, this.rpcTimeoutMs + 100).then(
      (bytes) => self.tell({ type: 'response', epoch, seq, bytes, error: null }),
      (err: Error) => self.tell({ type: 'response', epoch, seq, bytes: null, error: err.message }),
    );
  }

  private onResponse(epoch: number, seq: number, bytes: Uint8Array | null, error: string | null): void {
    if (epoch !== this.epoch || this.term === null) return;
    const sent = this.inflight.get(seq);
    if (!sent) return;
    this.inflight.delete(seq);
    if (bytes === null) {
      if (sent.heartbeat) return;
      // Lost or unreachable: resend from the last known match, after a pause so a partition does not spin.
      this.log.debug({ error }, 'append failed; will retry');
      this.rewind(Math.max(this.matchIndex, sent.prevIndex) + 1);
      this.pausedUntilMs = this.ctx.clock.now() + this.args.config.heartbeatIntervalMs;
      return;
    }
    let resp;
    try {
      resp = decodeResponse(bytes);
      if (resp.type !== 'appendEntriesResponse') throw new MalformedMessageError(`expected an AppendEntries response, got ${resp.type}`);
    } catch (err) {
      // Bad bytes from a peer or a transport are a lost response, not a reason to crash.
      this.log.warn({ err: (err as Error).message }, 'dropped a malformed AppendEntries response');
      if (!sent.heartbeat) {
        this.rewind(Math.max(this.matchIndex, sent.prevIndex) + 1);
        this.pausedUntilMs = this.ctx.clock.now() + this.args.config.heartbeatIntervalMs;
      }
      return;
    }
    if (resp.term > this.term) {
      this.raft.tell({ type: 'higherTerm', term: resp.term });
      this.idle();
      return;
    }
    if (resp.success) {
      // A success names our term; anything else answers a request of another term (another instance of this stream).
      if (resp.term !== this.term) return;
      let progressed = false;
      if (resp.matchIndex > this.matchIndex && resp.matchIndex === sent.lastIndex) {
        this.matchIndex = resp.matchIndex;
        this.matchTerm = sent.lastTerm;
        progressed = true;
        this.trimBuffer();
      }
      this.reportAck(sent, progressed);
      if (!sent.heartbeat && resp.matchIndex === sent.lastIndex) this.probing = false;
      if (sent.heartbeat && this.appendPresumedLost(sent.sentAtMs)) {
        // A heartbeat sent after an append came back, and the append did not, long after it should
        // have: it was lost. Resend from the match now rather than after the RPC timeout (simulator,
        // 6.824 Figure 8 unreliable, seeds 27 and 77: commands waited 1.2 s per lost append).
        this.log.debug({ matchIndex: this.matchIndex, nextIndex: this.nextIndex }, 'append presumed lost; resending from the match');
        this.rewind(this.matchIndex + 1);
      }
      if (sent.heartbeat && this.snap !== null && this.chunkPresumedLost(this.snap, sent.sentAtMs)) {
        // The same for a snapshot chunk: without this a dropped chunk held the transfer for the
        // whole chunk timeout (10 s) while the follower answered every heartbeat (simulator seed 33).
        const s = this.snap;
        this.log.debug({ snapshotId: s.meta?.id, offset: s.offset, lostAfterMs: s.lostAfterMs }, 'snapshot chunk presumed lost; restarting the transfer');
        s.sending = null;
        s.lostAfterMs *= 2;
        this.restartLater(s);
      }
      this.pump();
      return;
    }
    // A refusal in our term still says the follower takes us as its leader.
    if (resp.term === this.term) this.reportAck(sent, false);
    if (sent.heartbeat) return;
    // Log mismatch: go back to where the follower says its log diverges (fast backtrack), never
    // below a match and never past the request it answers; then probe one request at a time.
    const hint = resp.conflict ? resp.conflict.index : sent.prevIndex;
    this.rewind(Math.max(this.matchIndex + 1, Math.min(hint, sent.prevIndex)));
    this.probing = true;
    this.pump();
  }

  /**
   * Tells the Raft actor of an answer in our term: always with new progress or a new round, else at
   * most every ACK_REPORT_EVERY_MS of send time (the lease and check-quorum need only fresh ones).
   */
  private reportAck(sent: InFlight, progressed: boolean): void {
    const newRound = sent.round > this.reportedRound;
    const fresher = sent.sentAtMs >= this.reportedSentAtMs + ACK_REPORT_EVERY_MS;
    if (!progressed && !newRound && !fresher) return;
    if (sent.round > this.reportedRound) this.reportedRound = sent.round;
    if (sent.sentAtMs > this.reportedSentAtMs) this.reportedSentAtMs = sent.sentAtMs;
    this.raft.tell({
      type: 'replicated', peer: this.args.target as NodeId, leaderTerm: this.term!, matchIndex: this.matchIndex,
      round: sent.round, sentAtMs: sent.sentAtMs,
    });
  }

  /**
   * True when the chunk in flight left before a heartbeat that has been answered, and more than
   * `lostAfterMs` ago: the follower is there, so the chunk or its answer was lost. A chunk takes
   * longer than an append (the follower writes it durably first), hence its own, growing, margin.
   */
  private chunkPresumedLost(s: SnapshotTransfer, heartbeatSentAtMs: number): boolean {
    const f = s.sending;
    return f !== null && f.sentAtMs < heartbeatSentAtMs && this.ctx.clock.now() - f.sentAtMs > s.lostAfterMs;
  }

  /**
   * True when an append sent before `heartbeatSentAtMs` is still unanswered more than two heartbeat
   * intervals after it left: the heartbeat's answer overtook it, so it was most likely lost.
   */
  private appendPresumedLost(heartbeatSentAtMs: number): boolean {
    const stale = this.ctx.clock.now() - 2 * this.args.config.heartbeatIntervalMs;
    for (const f of this.inflight.values()) {
      if (!f.heartbeat && f.sentAtMs < heartbeatSentAtMs && f.sentAtMs <= stale) return true;
    }
    return false;
  }

  // ---- snapshot mode (paper 7) ----

  /** The follower needs purged entries: stop appending and send it the current snapshot. */
  private startSnapshot(): void {
    if (this.term === null || this.snap !== null) return;
    this.resetWindow(); // appends and heartbeats in flight are of no use to a transfer: their answers are dropped
    this.snap = {
      epoch: this.epoch, token: 0, meta: null, offset: 0, sending: null,
      startedAtMs: this.ctx.clock.now(), chunks: 0, restarts: 0, retryTimer: null, lostAfterMs: 2 * this.args.config.electionTimeoutMaxMs,
    };
    this.log.debug({ nextIndex: this.nextIndex, matchIndex: this.matchIndex }, 'follower needs purged entries; looking up the snapshot');
    this.locateSnapshot();
  }

  /** A token for the transfer's next step: answers to any earlier step no longer match. */
  private nextToken(s: SnapshotTransfer): number { return ++s.token; }

  /** The transfer an answer belongs to, or null when the answer is stale. */
  private current(epoch: number, token: number): SnapshotTransfer | null {
    const s = this.snap;
    return s !== null && this.term !== null && s.epoch === epoch && s.token === token ? s : null;
  }

  private locateSnapshot(): void {
    const s = this.snap!;
    const token = this.nextToken(s);
    const self = this.ctx.self as ActorRef<StreamMsg>;
    this.storage.ask<SnapshotMeta | null>({ type: 'getSnapshot' }).then(
      (meta) => self.tell({ type: 'snapshotFound', epoch: s.epoch, token, meta, error: null }),
      (err: unknown) => self.tell({ type: 'snapshotFound', epoch: s.epoch, token, meta: null, error: errorText(err) }),
    );
  }

  private onSnapshotFound(epoch: number, token: number, meta: SnapshotMeta | null, error: string | null): void {
    const s = this.current(epoch, token);
    if (s === null) return;
    if (meta === null) {
      // Entries were purged, so a snapshot covers them; none found means storage is changing under
      // us (or failed): read the log again after a pause.
      this.log.warn({ error }, 'entries are purged but storage names no snapshot; retrying the log after a pause');
      this.snap = null;
      this.pausedUntilMs = this.ctx.clock.now() + this.args.config.heartbeatIntervalMs;
      return;
    }
    if (s.meta !== null && s.meta.id === meta.id) {
      // Only looked up after storage called this snapshot gone: storage contradicts itself; do not spin.
      this.log.warn({ snapshotId: meta.id }, 'storage names as current a snapshot it called gone; retrying after a pause');
      return this.restartLater(s);
    }
    if (s.meta !== null) this.log.info({ replaced: s.meta.id, snapshotId: meta.id }, 'snapshot replaced during the transfer; starting over with the new one');
    s.meta = meta;
    s.startedAtMs = this.ctx.clock.now();
    s.chunks = 0;
    s.restarts = 0;
    this.log.info({ snapshotId: meta.id, lastIncludedIndex: meta.lastIncludedIndex, lastIncludedTerm: meta.lastIncludedTerm, bytes: meta.byteLength }, 'snapshot transfer started');
    s.offset = 0;
    this.readChunk(s);
  }

  private readChunk(s: SnapshotTransfer): void {
    const meta = s.meta!;
    const token = this.nextToken(s);
    const offset = s.offset;
    const self = this.ctx.self as ActorRef<StreamMsg>;
    this.storage.ask<Uint8Array>({ type: 'readSnapshot', id: meta.id, offset, maxBytes: this.args.config.snapshotMaxChunkBytes }).then(
      (data) => self.tell({ type: 'snapshotRead', epoch: s.epoch, token, data, gone: false, error: null }),
      (err: unknown) => self.tell({ type: 'snapshotRead', epoch: s.epoch, token, data: null, gone: isStorageError(err, 'SnapshotGoneError', 'SnapshotGone'), error: errorText(err) }),
    );
  }

  private onSnapshotRead(epoch: number, token: number, data: Uint8Array | null, gone: boolean, error: string | null): void {
    const s = this.current(epoch, token);
    if (s === null) return;
    const meta = s.meta!;
    if (gone) {
      // A newer snapshot replaced this one (and may have purged more): send that one instead.
      this.log.info({ snapshotId: meta.id }, 'snapshot gone from storage; looking up the current one');
      return this.locateSnapshot();
    }
    const end = data instanceof Uint8Array ? s.offset + data.byteLength : -1;
    if (data === null || !(data instanceof Uint8Array) || data.byteLength > this.args.config.snapshotMaxChunkBytes
      || end > meta.byteLength || (data.byteLength === 0 && s.offset < meta.byteLength)) {
      this.log.warn({ snapshotId: meta.id, offset: s.offset, error: error ?? `unexpected chunk of ${data instanceof Uint8Array ? data.byteLength : 'no'} bytes` }, 'reading the snapshot failed; restarting the transfer after a pause');
      return this.restartLater(s);
    }
    this.sendChunk(s, data, end === meta.byteLength);
  }

  private sendChunk(s: SnapshotTransfer, data: Uint8Array, done: boolean): void {
    const meta = s.meta!;
    const req: InstallSnapshotRequest = {
      type: 'installSnapshot', term: this.term!, leaderId: this.args.self as NodeId,
      lastIncludedIndex: meta.lastIncludedIndex, lastIncludedTerm: meta.lastIncludedTerm,
      offset: s.offset, data, done,
      snapshotId: meta.id, membership: meta.membership, membershipIndex: meta.membershipIndex,
      byteLength: meta.byteLength, checksum: meta.checksum,
    };
    s.sending = { end: s.offset + data.byteLength, done, sentAtMs: this.ctx.clock.now() };
    const token = this.nextToken(s);
    this.log.debug({ snapshotId: meta.id, offset: s.offset, bytes: data.byteLength, done }, 'sending snapshot chunk');
    // Not counted as traffic for the heartbeat timer (lastSentMs): a chunk may take long to cross
    // and to be written, and heartbeats must not wait behind it.
    const self = this.ctx.self as ActorRef<StreamMsg>;
    this.network.ask<Uint8Array>({ type: 'send', target: this.args.target as NodeId, rpc: encodeRequest(req), timeoutMs: this.snapshotRpcTimeoutMs }, this.snapshotRpcTimeoutMs + 100).then(
      (bytes) => self.tell({ type: 'snapshotResponse', epoch: s.epoch, token, bytes, error: null }),
      (err: unknown) => self.tell({ type: 'snapshotResponse', epoch: s.epoch, token, bytes: null, error: errorText(err) }),
    );
  }

  private onSnapshotResponse(epoch: number, token: number, bytes: Uint8Array | null, error: string | null): void {
    const s = this.current(epoch, token);
    if (s === null) return;
    const meta = s.meta!;
    const sending = s.sending!;
    s.sending = null;
    if (bytes === null) {
      this.log.debug({ snapshotId: meta.id, offset: s.offset, error }, 'snapshot chunk failed; restarting the transfer after a pause');
      return this.restartLater(s);
    }
    let resp;
    try {
      resp = decodeResponse(bytes);
      if (resp.type !== 'installSnapshotResponse') throw new MalformedMessageError(`expected an InstallSnapshot response, got ${resp.type}`);
    } catch (err) {
      this.log.warn({ snapshotId: meta.id, err: (err as Error).message }, 'dropped a malformed InstallSnapshot response; restarting the transfer after a pause');
      return this.restartLater(s);
    }
    if (resp.term > this.term!) {
      this.raft.tell({ type: 'higherTerm', term: resp.term });
      this.idle();
      return;
    }
    if (resp.term < this.term!) {
      // A follower answers in our term once it has seen it: this answers something else.
      this.log.warn({ snapshotId: meta.id, responseTerm: resp.term }, 'InstallSnapshot response of an older term; restarting the transfer after a pause');
      return this.restartLater(s);
    }
    s.chunks++;
    if (sending.done) return this.finishSnapshot(s);
    s.offset = sending.end;
    this.readChunk(s);
  }

  /** A lost chunk, a bad answer or a storage failure: send the snapshot again from offset 0 after a heartbeat interval. */
  private restartLater(s: SnapshotTransfer): void {
    s.offset = 0;
    s.restarts++;
    const token = this.nextToken(s);
    const self = this.ctx.self as ActorRef<StreamMsg>;
    s.retryTimer = this.ctx.clock.setTimeout(() => {
      s.retryTimer = null;
      self.tell({ type: 'snapshotResume', epoch: s.epoch, token });
    }, this.args.config.heartbeatIntervalMs);
  }

  private onSnapshotResume(epoch: number, token: number): void {
    const s = this.current(epoch, token);
    if (s === null) return;
    if (s.meta === null) this.locateSnapshot();
    else this.readChunk(s);
  }

  /** The follower holds the snapshot: it matches through its last included index; appends resume after it. */
  private finishSnapshot(s: SnapshotTransfer): void {
    const meta = s.meta!;
    this.snap = null;
    this.log.info({ snapshotId: meta.id, lastIncludedIndex: meta.lastIncludedIndex, bytes: meta.byteLength, chunks: s.chunks, restarts: s.restarts, durationMs: this.ctx.clock.now() - s.startedAtMs }, 'snapshot transfer finished');
    if (meta.lastIncludedIndex > this.matchIndex) {
      this.matchIndex = meta.lastIncludedIndex;
      this.matchTerm = meta.lastIncludedTerm;
      this.raft.tell({ type: 'replicated', peer: this.args.target as NodeId, leaderTerm: this.term!, matchIndex: this.matchIndex });
    }
    this.nextIndex = (this.matchIndex + 1) as LogIndex;
    this.probing = true;
    this.pausedUntilMs = 0;
    this.trimBuffer();
    this.pump();
  }

  /** Leadership changed: drop the transfer (its late answers fail the epoch check). */
  private abandonSnapshot(reason: string): void {
    const s = this.snap;
    if (s === null) return;
    this.snap = null;
    if (s.retryTimer !== null) this.ctx.clock.clearTimeout(s.retryTimer);
    this.log.info({ snapshotId: s.meta?.id ?? null, offset: s.offset, reason }, 'snapshot transfer abandoned');
  }

  private rewind(nextIndex: number): void {
    this.resetWindow();
    this.nextIndex = Math.max(1, nextIndex) as LogIndex;
  }

  private startHeartbeats(): void {
    if (this.heartbeatTimer !== null) return;
    const self = this.ctx.self as ActorRef<StreamMsg>;
    const generation = ++this.heartbeatGeneration;
    // A callback already queued when the timer was cleared must not re-arm it.
    const tick = () => {
      if (generation !== this.heartbeatGeneration) return;
      this.heartbeatTimer = this.ctx.clock.setTimeout(tick, this.args.config.heartbeatIntervalMs);
      self.tell({ type: 'heartbeat' });
    };
    this.heartbeatTimer = this.ctx.clock.setTimeout(tick, this.args.config.heartbeatIntervalMs);
  }

  private stopHeartbeats(): void {
    this.heartbeatGeneration++;
    if (this.heartbeatTimer !== null) this.ctx.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private onHeartbeatTimer(): void {
    if (this.term === null) return;
    if (this.ctx.clock.now() - this.lastSentMs >= this.args.config.heartbeatIntervalMs) this.sendHeartbeat();
    this.pump();
  }

  /** An empty AppendEntries anchored at the last known match: never truncates, never conflicts. */
  private sendHeartbeat(): void {
    if (this.term === null) return;
    this.send({
      type: 'appendEntries', term: this.term, leaderId: this.args.self as NodeId,
      prevLogIndex: this.matchIndex, prevLogTerm: this.matchTerm, entries: [],
      leaderCommit: Math.min(this.commitIndex, this.matchIndex) as LogIndex,
    }, true);
  }
}

export function createReplicationStream(args: StreamArgs): ReplicationStream { return new ReplicationStream(args); }
export const REPLICATION_STREAM_MODULE = __filename;
