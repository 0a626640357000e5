/**
 * The Raft protocol as a pure state machine (DESIGN.md section 1; etcd's Step, openraft's engine).
 * `step` takes one input, common term rules run first, then the role's own step. Effects leave only
 * as commands, drained by `takeCommands`. No awaits, no clock, no Math.random: time comes in `tick`
 * inputs and chance from the RandomSource, so a run replays exactly.
 */
import { planAppend } from './append';
import { Campaign, electionDeadline } from './campaign';
import type { RaftConfig } from './config';
import {
  changesVoters, finalMembership, jointMembership, newVoters, planConfigChange, uniformMembership,
  type ConfigChangeOutcome, type ConfigChangePhase, type ConfigChangeRequest, type ConfigTarget,
} from './config-change';
import {
  ConfigChangeAbortedError, ConfigChangeInProgressError, ForwardToLeaderError, InvariantViolation, LeaderTransferError,
  LeaderTransferInProgressError, NodeNotLeaderError, NotAllowedError,
} from './errors';
import { HardStateSaves } from './hard-state';
import type { Command, CoreStatus, InitialState, Input, ProposeResult, RandomSource, ReadMode, TransferOutcome } from './io';
import { ReadQueue } from './read-index';
import { initialMembership, isKnown, isVoter, replicationTargets, sameNodes, voters } from './membership';
import { ReplyGate, type RpcResponse } from './replies';
import { ReplicatedLog } from './replicated-log';
import { ProgressTracker } from './tracker';
import {
  snapshotMetaOf,
  type AppendEntriesRequest, type AppendEntriesResponse, type Entry, type InstallSnapshotRequest, type InstallSnapshotResponse, type LogIndex,
  type Membership, type NodeId, type RaftRole, type SnapshotMeta, type Term, type TimeoutNowRequest, type VoteRequest, type VoteResponse,
} from './types';

export interface RaftCoreOptions {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly random: RandomSource;
  readonly initial: InitialState;
  /** The time at construction; the first election deadline is drawn from it. */
  readonly nowMs: number;
}

/** The inputs that are RPC traffic, and so go through the term rules of paper 5.1. */
type Message = Extract<Input, { type: 'appendEntries' | 'vote' | 'voteResponse' | 'installSnapshot' | 'timeoutNow' }>;

/** Catch-up of new voters lasts at most this many catchUpTimeoutMs in all (see catchUpDeadline). */
export const CATCH_UP_CAP_FACTOR = 10;

/** The leader's config change in progress (phases: see config-change.ts). */
interface ActiveChange {
  readonly id: number;
  phase: ConfigChangePhase;
  readonly target: ConfigTarget;
  /** New voters, replicated to as non-voters until each is at line rate. */
  readonly syncing: readonly NodeId[];
  /** New voters not yet at line rate, each with the time of its last replication progress. */
  readonly awaiting: Map<NodeId, number>;
  /** Each syncing node must hold at least this: the commit index when catch-up began. */
  floor: LogIndex;
  /** When catch-up began; it is abandoned CATCH_UP_CAP_FACTOR x catchUpTimeoutMs later in any case. */
  catchUpStartMs: number;
  /** The config entry appended for the joint or uniform phase. */
  configIndex: LogIndex;
}

/** A leadership transfer of ours (thesis 3.10), from `transferLeadership` until it settles. */
interface Transfer {
  readonly id: number;
  readonly to: NodeId;
  readonly deadlineMs: number;
  /** TimeoutNow went out: the target was caught up. */
  timeoutNowSent: boolean;
}

/**
 * @example
 * const core = new RaftCore({ id: nodeId(1), config: buildConfig(), random, nowMs: 0,
 *   initial: { hardState: { currentTerm: term(0), votedFor: null }, entries: [], lastApplied: logIndex(0) } });
 * core.initWithConfig([nodeId(1)]);
 * for (const cmd of core.takeCommands()) execute(cmd); // saveHardState, then feed hardStatePersisted back
 */
export class RaftCore {
  private readonly id: NodeId;
  private readonly config: RaftConfig;
  private readonly random: RandomSource;
  private nowMs: number;

  private role: RaftRole;
  private currentTerm: Term;
  private votedFor: NodeId | null;
  private currentLeader: NodeId | null = null;
  private electionDeadlineMs: number | null = null;

  private readonly log: ReplicatedLog;
  private readonly replies = new ReplyGate();

  private readonly saves = new HardStateSaves();
  /** Set while Candidate. */
  private campaign: Campaign | null = null;
  /** Set while a Follower asks for pre-votes (thesis 9.6): its term is unchanged until a quorum says yes. */
  private preCampaign: Campaign | null = null;
  /**
   * When we last heard from a leader of our term (AppendEntries, InstallSnapshot). With
   * checkQuorum, no vote is granted and no candidate's term adopted within electionTimeoutMinMs of
   * it: the lease a leader's lease reads rely on. A restarted node assumes it heard one at start.
   */
  private leaderContactMs = -Infinity;
  /** Leader: when check-quorum next looks at who answered. */
  private checkQuorumAtMs: number | null = null;
  /** Leader: TimeoutNow was sent this term, so another node may be elected despite leases; none is trusted again. */
  private leaseVoid = false;
  private transfer: Transfer | null = null;
  private readonly reads = new ReadQueue();
  private preVoteRounds = 0;
  private electionsStarted = 0;
  private quorumLossStepDowns = 0;
  /** Set while Leader: the match index of each peer in this term. */
  private leadership: ProgressTracker | null = null;
  /** Set while Leader and a config change is under way. */
  private change: ActiveChange | null = null;
  private nextChangeId = 1;
  private commands: Command[] = [];

  constructor(opts: RaftCoreOptions) {
    const { hardState, entries, lastApplied } = opts.initial;
    this.id = opts.id;
    this.config = opts.config;
    this.random = opts.random;
    this.nowMs = opts.nowMs;
    this.currentTerm = hardState.currentTerm;
    this.votedFor = hardState.votedFor;
    this.log = new ReplicatedLog(this.id, entries, lastApplied, opts.initial.snapshot ?? null, opts.initial.firstIndex);
    const snapshot = opts.initial.snapshot ?? null;
    if (snapshot !== null && this.log.startFit.reset) {
      this.log.resetIssued();
      this.emit({ type: 'resetLog', snapshotIndex: snapshot.lastIncludedIndex });
    }
    if (snapshot !== null && this.log.startFit.restore) this.emit({ type: 'restoreSnapshot', meta: snapshot });
    if (this.log.lastTerm > this.currentTerm) {
      // The log's last entry reached the disk but the hard state of its term did not (a torn write,
      // or a storage that keeps them in separate files). We were in that term; no vote of ours in it
      // was durable, so none was ever sent: take the term, with no vote, and save it.
      this.currentTerm = this.log.lastTerm;
      this.votedFor = null;
      this.saves.markDirty();
      this.flushHardState();
    }
    const passive = this.log.lastIndex === 0 || !this.isActiveVoter();
    this.role = passive ? 'NonVoter' : 'Follower';
    if (!passive) this.electionDeadlineMs = this.randomDeadline();
    // Before a restart we may have answered a leader whose lease counts on our silence for
    // electionTimeoutMinMs: keep it, as if that leader had just been heard.
    if (this.log.lastIndex > 0) this.leaderContactMs = this.nowMs;
  }

  // ---- public API ----

  step(input: Input): void {
    switch (input.type) {
      case 'tick': this.onTick(input.nowMs); break;
      case 'appendEntries': case 'vote': case 'voteResponse': case 'installSnapshot': case 'timeoutNow': this.stepMessage(input); break;
      case 'snapshotChunkStored': this.onSnapshotChunkStored(input.reqId, input.req); break;
      case 'snapshotCreated': this.onSnapshotCreated(input.meta); break;
      case 'replicated': this.onReplicated(input.peer, input.leaderTerm, input.matchIndex, input.round, input.sentAtMs); break;
      case 'higherTerm': if (input.term > this.currentTerm) this.becomeFollower(input.term, null); break;
      case 'logPersisted': this.onLogPersisted(input.index); break;
      case 'hardStatePersisted': this.onHardStatePersisted(input.seq); break;
      case 'applied': this.onApplied(input.index); break;
      default: throw new InvariantViolation(`unknown input ${(input as { type: string }).type}`);
    }
    this.flushHardState();
  }

  /** Drains the commands emitted since the last call, in emission order. */
  takeCommands(): Command[] {
    const out = this.commands;
    this.commands = [];
    return out;
  }

  /** Appends normal entries in the current term. Leader only; others throw ForwardToLeaderError. */
  propose(payloads: readonly Uint8Array[]): ProposeResult {
    if (this.role !== 'Leader') throw new ForwardToLeaderError(this.currentLeader);
    if (this.transfer !== null) throw new LeaderTransferInProgressError(this.transfer.to);
    if (payloads.length === 0) throw new RangeError('propose: no payloads');
    const first = this.log.lastIndex + 1;
    const entries: Entry[] = payloads.map((payload, k) => ({ index: (first + k) as LogIndex, term: this.currentTerm, kind: 'normal', payload }));
    this.appendAsLeader(entries);
    return { firstIndex: first as LogIndex, lastIndex: this.log.lastIndex, term: this.currentTerm };
  }

  /**
   * Appends a blank entry of the current term (a read through the log waits for it to be applied).
   * Leader only, like propose.
   */
  proposeBlank(): ProposeResult {
    if (this.role !== 'Leader') throw new ForwardToLeaderError(this.currentLeader);
    if (this.transfer !== null) throw new LeaderTransferInProgressError(this.transfer.to);
    const index = (this.log.lastIndex + 1) as LogIndex;
    this.appendAsLeader([{ index, term: this.currentTerm, kind: 'blank' }]);
    return { firstIndex: index, lastIndex: index, term: this.currentTerm };
  }

  /**
   * Forms a cluster (seeds 000, 004): a pristine NonVoter takes `members` as its config in memory and
   * campaigns at once. Every node of the new cluster calls it, in parallel if it likes.
   */
  initWithConfig(members: readonly NodeId[]): void {
    if (this.role !== 'NonVoter') throw new NotAllowedError(`node is ${this.role}, not a pristine NonVoter: the cluster has already formed`);
    if (this.log.lastIndex !== 0) throw new NotAllowedError(`log is at index ${this.log.lastIndex}, not 0: the cluster has already formed`);
    this.log.setBaseMembership(initialMembership(this.id, members));
    // No pre-vote: nobody has a log or a leader yet, so there is no one to disrupt.
    this.startCampaign(false);
    this.flushHardState();
  }

  /**
   * Starts a membership change (seed 004's ProposeConfigChange; paper 6) and returns its id; a
   * `configChangeSettled` command with that id reports the end. Leader only.
   *
   * Throws NodeNotLeaderError (with the leader known, if any); ConfigChangeInProgressError while a
   * change or a joint config is unfinished; NoopConfigChangeError when nothing would change;
   * InoperableConfigError when the result could not make progress (see planConfigChange).
   */
  proposeConfigChange(req: ConfigChangeRequest): number {
    if (this.role !== 'Leader') throw new NodeNotLeaderError(this.currentLeader);
    if (this.transfer !== null) throw new LeaderTransferInProgressError(this.transfer.to);
    if (this.change !== null) throw new ConfigChangeInProgressError(`change ${this.change.id} is in its ${this.change.phase} phase`);
    const m = this.membership;
    if (m.membersAfterConsensus !== null) throw new ConfigChangeInProgressError(`the joint config at index ${this.log.membershipIndex} is not finished yet`);
    // A leader outside its latest config is finishing a change that removes it, and steps down once
    // that config commits: it must not start another.
    if (!isVoter(m, this.id)) throw new ConfigChangeInProgressError(`this leader is leaving: the config at index ${this.log.membershipIndex} removes it and is not committed yet`);
    // The latest config may be uncommitted (a new leader's inheritance): it is ours to commit, so
    // planning on it is safe; the change waits for it to commit before appending anything.
    const target = planConfigChange(m, req);
    const c: ActiveChange = {
      id: this.nextChangeId++, phase: 'waiting', target, syncing: newVoters(m, target), awaiting: new Map(),
      floor: 0 as LogIndex, catchUpStartMs: 0, configIndex: 0 as LogIndex,
    };
    this.change = c;
    this.advanceConfigChange();
    return c.id;
  }

  /**
   * Starts a linearizable read (thesis 6.4); a `readsReady` command carrying `id` answers it once
   * it may be served from the state machine, or `readsFailed` if leadership is lost first. Leader
   * only (ForwardToLeaderError otherwise). 'index': confirmed by a quorum round, batched with other
   * reads. 'lease': served at once while the leader's lease is valid (needs checkQuorum), else as
   * 'index'.
   */
  read(id: number, mode: ReadMode = 'index'): void {
    if (this.role !== 'Leader') throw new ForwardToLeaderError(this.currentLeader);
    if (mode !== 'index' && mode !== 'lease') throw new RangeError(`read mode must be 'index' or 'lease', got ${String(mode)}`);
    if (mode === 'lease') {
      if (!this.config.checkQuorum) throw new NotAllowedError('lease reads need checkQuorum on every node (followers must refuse votes while a lease holds)');
      if (this.leaseUntilMs() !== null) {
        this.reads.addConfirmed(id, this.log.commitIndex);
        this.emitReadyReads();
        return;
      }
    }
    // Until an entry of our term commits, our commit index may be behind the cluster's (thesis 6.4 step 1).
    if (this.log.termAt(this.log.commitIndex) !== this.currentTerm) {
      this.reads.addWaitingCommit(id);
      return;
    }
    this.reads.add(id);
    this.startReadRound();
  }

  /**
   * Hands leadership to `to` (thesis 3.10): no writes are taken meanwhile; once `to` holds our whole
   * log it gets TimeoutNow and campaigns at once. A `transferSettled` command with `id` reports the
   * end: ok once `to` is known to lead, else a LeaderTransferError ('timeout' after `timeoutMs`,
   * 'superseded', 'leadership-lost'). Throws NodeNotLeaderError, or LeaderTransferError
   * ('not-a-voter', 'in-progress') at once.
   */
  transferLeadership(id: number, to: NodeId, timeoutMs: number): void {
    if (this.role !== 'Leader') throw new NodeNotLeaderError(this.currentLeader);
    if (this.transfer !== null) throw new LeaderTransferError('in-progress', to, false, `a transfer to node ${this.transfer.to} is under way`);
    if (to === this.id) {
      this.emit({ type: 'transferSettled', id, outcome: { ok: true, leader: this.id } });
      return;
    }
    const m = this.membership;
    const finalVoters = m.membersAfterConsensus ?? m.members;
    if (!finalVoters.includes(to)) throw new LeaderTransferError('not-a-voter', to, false, `node ${to} is not a voter of the latest config ${JSON.stringify(finalVoters)}`);
    if (!(timeoutMs > 0)) throw new RangeError(`transfer timeoutMs must be > 0, got ${timeoutMs}`);
    this.transfer = { id, to, deadlineMs: this.nowMs + timeoutMs, timeoutNowSent: false };
    this.maybeSendTimeoutNow();
  }

  /**
   * Starts an election now (the manual trigger): a pre-vote round first when preVote is on, so with
   * a healthy leader (whose followers hold its lease) it changes nothing; use transferLeadership to
   * move leadership. With preVote off it is a real election: even if the others refuse their votes
   * (check-quorum's lease), our higher term answers the leader's next heartbeat and deposes it.
   * NotAllowedError on a leader or a non-voter.
   */
  electNow(): void {
    if (this.role === 'Leader') throw new NotAllowedError('this node is already the leader');
    if (this.role === 'NonVoter') throw new NotAllowedError('a non-voter does not campaign');
    if (!this.config.preVote && this.inLeaderLease()) {
      // Our own vote would break the lease we answered for (see startPreVote); with pre-vote the
      // round simply does not count it.
      throw new NotAllowedError(`node ${this.currentLeader ?? 'unknown'} was heard as leader within electionTimeoutMinMs and its lease may be serving reads: use transferLeadership, or wait`);
    }
    this.campaignOnTimeout();
    this.flushHardState();
  }

  status(): CoreStatus {
    const c = this.change;
    return {
      id: this.id, role: this.role, currentTerm: this.currentTerm, votedFor: this.votedFor,
      currentLeader: this.currentLeader, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm,
      durableIndex: this.log.durableIndex, commitIndex: this.log.commitIndex, lastApplied: this.log.lastApplied,
      membership: this.membership, membershipIndex: this.log.membershipIndex,
      configChange: c === null ? null : { phase: c.phase, target: c.target, awaiting: [...c.awaiting.keys()] },
      snapshotIndex: this.log.snapshotIndex, snapshotTerm: this.log.snapshotTerm,
      transferTarget: this.transfer?.to ?? null, leaseUntilMs: this.leaseUntilMs(),
      preVoteRounds: this.preVoteRounds, electionsStarted: this.electionsStarted, readIndexRounds: this.reads.currentRound,
      quorumLossStepDowns: this.quorumLossStepDowns,
    };
  }

  /**
   * What a snapshot of the state machine through `index` (applied here) must say about the log: the
   * term at that index and the config in force there. Null when the index is not in our log (it is
   * below our snapshot, or not applied yet).
   */
  snapshotPoint(index: LogIndex): { readonly term: Term; readonly membership: Membership; readonly membershipIndex: LogIndex } | null {
    if (index < 1 || index > this.log.lastApplied || index < this.log.purgedThrough) return null;
    const term = this.log.termAt(index);
    if (term === null) return null;
    const m = this.log.membershipAt(index);
    return { term, membership: m.membership, membershipIndex: m.index };
  }

  /**
   * When the next tick is needed: the election deadline of a Follower or Candidate, or the catch-up
   * deadline of a leader's config change; null otherwise.
   */
  nextDeadlineMs(): number | null {
    let at = Infinity;
    if (this.role === 'Follower' || this.role === 'Candidate') at = this.electionDeadlineMs ?? Infinity;
    if (this.role === 'Leader') {
      if (this.change?.phase === 'catchingUp') at = this.catchUpDeadline(this.change);
      if (this.checkQuorumAtMs !== null) at = Math.min(at, this.checkQuorumAtMs);
    }
    if (this.transfer !== null) at = Math.min(at, this.transfer.deadlineMs);
    return at === Infinity ? null : at;
  }

  termAt(index: LogIndex): Term | null {
    return this.log.termAt(index);
  }

  /** Cached entries [from, toExclusive); null when any was evicted (read storage) or is beyond the log. */
  entries(from: LogIndex, toExclusive: LogIndex): Entry[] | null {
    return this.log.entries(from, toExclusive);
  }

  // ---- Step: term rules common to every role (paper 5.1), then the role's step ----

  private stepMessage(msg: Message): void {
    if (msg.type === 'vote' && !isKnown(this.membership, msg.req.candidateId)) {
      // Seed 000's failsafe against removed nodes: refuse, and do not let a stranger move our term.
      // The answer "unknown" sends the candidate to NonVoter, so only a node whose knowledge of the
      // config is worth trusting gives it:
      // - not a pristine node (new, or restarted before the cluster's config reached its disk): it
      //   knows no config at all, and its "unknown" would push every candidate with entries into
      //   NonVoter, leaving no one to elect (found by the simulator);
      // - not a node whose log is behind the candidate's: it may simply not have received the
      //   config that added the candidate, and a lagging voter must not demote a legitimate one
      //   (a node added while this one was partitioned).
      // Both refuse plainly instead.
      const r = msg.req;
      const candidateAhead = r.lastLogTerm > this.log.lastTerm || (r.lastLogTerm === this.log.lastTerm && r.lastLogIndex > this.log.lastIndex);
      this.reply(msg.reqId, this.voteResponse(false, !this.isPristine() && !candidateAhead, r.preVote === true));
      return;
    }
    if (msg.type === 'vote' && msg.req.preVote === true) {
      // Never adopts the term a pre-vote names: that is the point of it.
      this.handlePreVote(msg.reqId, msg.req);
      return;
    }
    if (msg.type === 'vote' && msg.req.transfer !== true && this.inLeaderLease()) {
      // Check-quorum (thesis 4.2.3, 6.2): a leader was heard from within the minimum election
      // timeout, so this candidate is disruptive (partially connected, or back from a partition):
      // refuse without adopting its term. A transfer's candidate was sent by the leader itself.
      this.reply(msg.reqId, this.voteResponse(false, false));
      return;
    }
    const msgTerm = msg.type === 'voteResponse' ? msg.resp.term : msg.req.term;
    if (msgTerm > this.currentTerm) {
      this.becomeFollower(msgTerm, msg.type === 'appendEntries' || msg.type === 'installSnapshot' ? msg.req.leaderId : null);
    } else if (msgTerm < this.currentTerm && msg.type !== 'voteResponse') {
      // A stale request is refused; our term in the answer tells its sender to step down.
      this.reply(msg.reqId, msg.type === 'vote' ? this.voteResponse(false, false)
        : msg.type === 'installSnapshot' ? this.snapshotResponse()
          : msg.type === 'timeoutNow' ? { type: 'timeoutNowResponse', term: this.currentTerm }
            : this.appendResponse(false, 0 as LogIndex));
      return;
    }
    if (msg.type === 'vote') {
      this.handleVoteRequest(msg.reqId, msg.req);
      return;
    }
    if (msg.type === 'timeoutNow') {
      this.handleTimeoutNow(msg.reqId, msg.req);
      return;
    }
    if (msg.type === 'voteResponse' && msg.resp.preVote === true) {
      this.onPreVoteResponse(msg);
      return;
    }
    switch (this.role) {
      case 'Leader': this.stepLeader(msg); break;
      case 'Candidate': this.stepCandidate(msg); break;
      case 'Follower': case 'NonVoter': this.stepFollower(msg); break;
    }
  }

  private stepLeader(msg: Exclude<Message, { type: 'vote' | 'timeoutNow' }>): void {
    if (msg.type === 'installSnapshot') {
      this.reply(msg.reqId, this.snapshotResponse()); // another leader of our term: bad input, as below
      return;
    }
    if (msg.type === 'appendEntries') {
      // Two leaders in one term cannot happen among correct nodes; a message claiming it is bad
      // input (a confused or hostile peer), so it is refused without touching our state rather
      // than taking this node down with it.
      this.reply(msg.reqId, this.appendResponse(false, 0 as LogIndex));
      return;
    }
    // A late vote response: the election is already won.
  }

  private stepCandidate(msg: Exclude<Message, { type: 'vote' | 'timeoutNow' }>): void {
    if (msg.type === 'appendEntries' || msg.type === 'installSnapshot') {
      // Paper 5.2: a leader of our term exists; recognise it.
      this.becomeFollower(this.currentTerm, msg.req.leaderId);
      if (msg.type === 'appendEntries') this.handleAppendEntries(msg.reqId, msg.req);
      else this.handleInstallSnapshot(msg.reqId, msg.req);
      return;
    }
    const { from, resp } = msg;
    if (resp.isCandidateUnknown) {
      // A late "unknown" to an earlier campaign says nothing about this one.
      if (msg.requestTerm !== undefined && msg.requestTerm !== this.currentTerm) return;
      // Seed 000: with entries we were part of a cluster that has dropped us; at index 0 we are
      // still forming one, and the peer will know us once it runs InitWithConfig.
      if (this.log.lastIndex > 0) this.becomeNonVoter();
      return;
    }
    const c = this.campaign;
    if (c === null || !c.votesSent || resp.term !== this.currentTerm) return;
    c.record(from, resp.voteGranted);
    if (c.outcome(this.membership) === 'won') this.becomeLeader();
  }

  private stepFollower(msg: Exclude<Message, { type: 'vote' | 'timeoutNow' }>): void {
    if (msg.type === 'appendEntries') this.handleAppendEntries(msg.reqId, msg.req);
    else if (msg.type === 'installSnapshot') this.handleInstallSnapshot(msg.reqId, msg.req);
  }

  // ---- snapshots (paper 7, seed 002) ----

  /** A chunk from the leader: it goes to storage first; onSnapshotChunkStored answers it. */
  private handleInstallSnapshot(reqId: number, req: InstallSnapshotRequest): void {
    this.heardFromLeader(req.leaderId);
    this.syncVoterRole();
    if (this.role === 'Follower') this.electionDeadlineMs = this.randomDeadline();
    if (req.lastIncludedIndex <= this.log.commitIndex) {
      // We have all it covers, committed: storing it would only replace a newer snapshot of ours
      // with an older one. Answered at once; the leader then goes on from there.
      this.reply(reqId, this.snapshotResponse());
      return;
    }
    this.emit({ type: 'storeSnapshotChunk', reqId, req });
  }

  /**
   * Storage holds the chunk; after the last one, the whole snapshot is durable. Then the log and the
   * state machine move to it: entries after it that match stay, a contradicting log goes.
   */
  private onSnapshotChunkStored(reqId: number, req: InstallSnapshotRequest): void {
    if (req.done) {
      const meta = snapshotMetaOf(req);
      const before = this.membership;
      const fit = this.log.installSnapshot(meta);
      if (fit !== 'stale') {
        if (fit === 'reset') {
          // Held successes naming entries that are gone must not go out as successes.
          this.replies.revokeSuccessesFrom((meta.lastIncludedIndex + 1) as LogIndex, this.appendResponse(false, 0 as LogIndex), this.saves.awaited);
          this.emit({ type: 'resetLog', snapshotIndex: meta.lastIncludedIndex });
        }
        this.emit({ type: 'restoreSnapshot', meta });
        this.emit({ type: 'commit', commitIndex: this.log.commitIndex });
        if (this.membership !== before) this.onMembershipChanged();
        this.emitReadyReads();
      }
    }
    this.reply(reqId, this.snapshotResponse());
  }

  /** Our own snapshot is durable: forget what it covers in memory, and purge storage behind it. */
  private onSnapshotCreated(meta: SnapshotMeta): void {
    if (!this.log.snapshotTaken(meta)) return;
    const through = meta.lastIncludedIndex - this.config.snapshotKeepEntries;
    if (through > 0) this.emit({ type: 'purgeLog', throughIndex: through as LogIndex });
  }

  private snapshotResponse(): InstallSnapshotResponse {
    return { type: 'installSnapshotResponse', term: this.currentTerm };
  }

  // ---- elections (paper 5.2, 5.4.1) ----

  private onTick(nowMs: number): void {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    const deadline = this.nextDeadlineMs();
    if (deadline === null || this.nowMs < deadline) return;
    const t = this.transfer;
    if (t !== null && this.nowMs >= t.deadlineMs) {
      const detail = t.timeoutNowSent ? `node ${t.to} got TimeoutNow but was not seen leading` : `node ${t.to} did not catch up with the log`;
      this.settleTransfer({ ok: false, error: new LeaderTransferError('timeout', t.to, t.timeoutNowSent, `${detail} within the timeout`) });
    }
    if (this.role === 'Leader') {
      if (this.change?.phase === 'catchingUp' && this.nowMs >= this.catchUpDeadline(this.change)) this.abandonCatchUp();
      if (this.checkQuorumAtMs !== null && this.nowMs >= this.checkQuorumAtMs) this.checkQuorum();
      return;
    }
    if ((this.role === 'Follower' || this.role === 'Candidate') && this.electionDeadlineMs !== null && this.nowMs >= this.electionDeadlineMs) this.campaignOnTimeout();
  }

  /**
   * Check-quorum (thesis 6.2): a leader that heard nothing from a quorum for a whole
   * electionTimeoutMaxMs steps down, so a leader cut off with a minority stops taking writes it
   * can never commit, and its clients go looking for the real one.
   */
  private checkQuorum(): void {
    if (this.leadership!.takeQuorumActive(this.membership)) {
      this.checkQuorumAtMs = this.nowMs + this.config.electionTimeoutMaxMs;
      return;
    }
    this.quorumLossStepDowns++;
    this.becomeFollower(this.currentTerm, null);
  }

  /** The election timer fired (or electNow): a pre-vote round first when preVote is on. */
  private campaignOnTimeout(): void {
    if (this.config.preVote) this.startPreVote();
    else this.startCampaign(false);
  }

  /**
   * Pre-vote (thesis 9.6): ask every voter whether it would vote for us in the next term, changing
   * nothing. Only a quorum's yes starts a real election, so a node that cannot win (cut off, or
   * behind) never raises its term and never disrupts the cluster on its return.
   */
  private startPreVote(): void {
    this.role = 'Follower';
    this.campaign = null;
    this.currentLeader = null;
    this.preVoteRounds++;
    // A node that heard a leader within electionTimeoutMinMs refuses every candidate's vote: the
    // leader's lease counts on that. It must not count its own either (electNow inside the lease):
    // with one other voter cut off from the leader it would elect itself while the old leader
    // still serves lease reads (simulator campaign, seeds 164, 221, 397, 537).
    const pc = new Campaign(this.id, 0, false, !this.inLeaderLease());
    pc.votesSent = true;
    this.preCampaign = pc;
    this.electionDeadlineMs = this.randomDeadline();
    if (pc.outcome(this.membership) === 'won') {
      this.startCampaign(false);
      return;
    }
    const req: VoteRequest = {
      type: 'vote', term: (this.currentTerm + 1) as Term, candidateId: this.id, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm, preVote: true,
    };
    for (const to of voters(this.membership)) if (to !== this.id) this.emit({ type: 'sendVote', to, req });
  }

  /** Grants a pre-vote when a real vote in the named term could be granted: the voter's own term and vote do not move. */
  private handlePreVote(reqId: number, req: VoteRequest): void {
    const grant = !this.isPristine() && req.term > this.currentTerm && this.logUpToDate(req) && (req.transfer === true || !this.inLeaderLease());
    this.reply(reqId, this.voteResponse(grant, false, true));
  }

  private onPreVoteResponse(msg: Extract<Message, { type: 'voteResponse' }>): void {
    const pc = this.preCampaign;
    if (pc === null || this.role !== 'Follower') return;
    if (msg.requestTerm !== undefined && msg.requestTerm !== this.currentTerm + 1) return;
    if (msg.resp.isCandidateUnknown) {
      if (this.log.lastIndex > 0) this.becomeNonVoter();
      return;
    }
    pc.record(msg.from, msg.resp.voteGranted);
    const outcome = pc.outcome(this.membership);
    if (outcome === 'won') this.startCampaign(false);
    else if (outcome === 'lost') this.preCampaign = null;
  }

  /** With checkQuorum: a leader of ours was heard within the minimum election timeout (or we lead). */
  private inLeaderLease(): boolean {
    if (!this.config.checkQuorum) return false;
    return this.role === 'Leader' || this.nowMs < this.leaderContactMs + this.config.electionTimeoutMinMs;
  }

  /** TimeoutNow from our leader (thesis 3.10): campaign at once, skipping pre-vote, with votes that override leases. */
  private handleTimeoutNow(reqId: number, req: TimeoutNowRequest): void {
    this.reply(reqId, { type: 'timeoutNowResponse', term: this.currentTerm });
    if (this.role !== 'Follower' || !this.isActiveVoter() || this.log.lastIndex === 0) return;
    if (this.currentLeader !== null && this.currentLeader !== req.leaderId) return;
    this.startCampaign(true);
  }

  private startCampaign(transfer: boolean): void {
    this.role = 'Candidate';
    this.electionsStarted++;
    this.currentTerm = (this.currentTerm + 1) as Term;
    this.votedFor = this.id;
    this.currentLeader = null;
    this.preCampaign = null;
    this.campaign = new Campaign(this.id, this.saves.markDirty(), transfer);
    // A fresh random timeout per election is what breaks split votes.
    this.electionDeadlineMs = this.randomDeadline();
  }

  /** Seed 002 rule 1: votes are asked for only once our own vote is durable. */
  private maybeSendVotes(): void {
    const c = this.campaign;
    if (this.role !== 'Candidate' || c === null || c.votesSent || !this.saves.isDurable(c.seq)) return;
    c.votesSent = true;
    if (c.outcome(this.membership) === 'won') {
      this.becomeLeader();
      return;
    }
    const req: VoteRequest = {
      type: 'vote', term: this.currentTerm, candidateId: this.id, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm,
      ...(c.transfer ? { transfer: true } : {}),
    };
    for (const to of voters(this.membership)) if (to !== this.id) this.emit({ type: 'sendVote', to, req });
  }

  /** Paper 5.4.1: only a candidate whose log is at least as up-to-date as ours gets our vote. */
  private logUpToDate(req: VoteRequest): boolean {
    return req.lastLogTerm > this.log.lastTerm || (req.lastLogTerm === this.log.lastTerm && req.lastLogIndex >= this.log.lastIndex);
  }

  private handleVoteRequest(reqId: number, req: VoteRequest): void {
    const upToDate = this.logUpToDate(req);
    // A NonVoter with a log votes too, on term and log alone, as every server does in the paper: the
    // candidate counts only the voters of its own config, so the vote is safe, and it may be needed.
    // A node that missed the configs adding it (cut off right after catch-up) still believes it is
    // outside the cluster; refusing would leave a cluster that needs its vote with no leader, ever
    // (found by the membership integration tests). Candidates ask non-voters of their config nothing.
    const grant = !this.isPristine() && (this.votedFor === null || this.votedFor === req.candidateId) && upToDate;
    if (grant) {
      if (this.votedFor !== req.candidateId) {
        this.votedFor = req.candidateId;
        this.saves.markDirty();
      }
      if (this.role !== 'NonVoter') this.electionDeadlineMs = this.randomDeadline();
    }
    this.reply(reqId, this.voteResponse(grant, false));
  }

  // ---- role changes ----

  /** Leaves Leader/Candidate (or adopts a higher term); a NonVoter or non-voter stays passive. */
  private becomeFollower(newTerm: Term, leaderId: NodeId | null): void {
    if (this.role === 'Leader') this.stopLeading();
    if (newTerm > this.currentTerm) {
      this.currentTerm = newTerm;
      this.votedFor = null;
      this.saves.markDirty();
    }
    this.campaign = null;
    this.preCampaign = null;
    this.currentLeader = leaderId;
    const passive = this.role === 'NonVoter' || !this.isActiveVoter();
    this.role = passive ? 'NonVoter' : 'Follower';
    this.electionDeadlineMs = passive ? null : this.randomDeadline();
  }

  /** A NonVoter that has never held a config: no log, no InitWithConfig. */
  private isPristine(): boolean {
    return this.role === 'NonVoter' && this.log.lastIndex === 0;
  }

  private becomeNonVoter(): void {
    if (this.role === 'Leader') this.stopLeading();
    // Out of the cluster altogether (removed, or told "unknown"), not a learner the config keeps:
    // no leader will replicate to us again, so what we were waiting to learn we never will.
    if (this.role !== 'NonVoter' && !this.membership.nonVoters.includes(this.id)) this.emit({ type: 'leftCluster' });
    this.role = 'NonVoter';
    this.campaign = null;
    this.preCampaign = null;
    this.currentLeader = null;
    this.electionDeadlineMs = null;
  }

  private becomeLeader(): void {
    this.role = 'Leader';
    this.currentLeader = this.id;
    this.campaign = null;
    this.electionDeadlineMs = null;
    this.change = null;
    this.leaseVoid = false;
    // A transfer of an earlier term of ours whose target never won: we lead again, so it failed.
    const t = this.transfer;
    if (t !== null) this.settleTransfer({ ok: false, error: new LeaderTransferError('superseded', t.to, t.timeoutNowSent, `node ${this.id} was elected again in term ${this.currentTerm}`) });
    this.checkQuorumAtMs = this.config.checkQuorum ? this.nowMs + this.config.electionTimeoutMaxMs : null;
    const targets = this.leaderTargets();
    this.leadership = new ProgressTracker(this.id, targets);
    this.emit({
      type: 'startReplication', term: this.currentTerm, targets, nextIndex: (this.log.lastIndex + 1) as LogIndex,
      commitIndex: this.log.commitIndex, round: this.reads.currentRound,
    });
    const index = (this.log.lastIndex + 1) as LogIndex;
    // Seed 000: at index 0 the first entry records the config we were elected under; otherwise a
    // blank entry of our term lets earlier entries commit (paper 5.4.2, 8).
    this.appendAsLeader([index === 1
      ? { index, term: this.currentTerm, kind: 'config', membership: this.membership }
      : { index, term: this.currentTerm, kind: 'blank' }]);
  }

  private stopLeading(): void {
    const c = this.change;
    if (c !== null) {
      this.change = null;
      const inLog = c.phase === 'joint' || c.phase === 'uniform';
      this.settleChange(c, { ok: false, error: new ConfigChangeAbortedError('leadership-lost', inLog, `node ${this.id} stopped leading in term ${this.currentTerm} during the ${c.phase} phase`) });
    }
    const t = this.transfer;
    if (t !== null && !t.timeoutNowSent) {
      this.settleTransfer({ ok: false, error: new LeaderTransferError('leadership-lost', t.to, false, `node ${this.id} stopped leading in term ${this.currentTerm} before node ${t.to} caught up`) });
    }
    const failed = this.reads.failUnconfirmed();
    if (failed.length > 0) this.emit({ type: 'readsFailed', ids: failed, error: new ForwardToLeaderError(null) });
    this.leadership = null;
    this.checkQuorumAtMs = null;
    // We know of no leader now; nobody's lease is ours to keep.
    this.leaderContactMs = -Infinity;
    this.emit({ type: 'stopReplication' });
  }

  /** A config entry was appended or truncated away: the node's part in the cluster may have changed. */
  private onMembershipChanged(): void {
    if (this.leadership !== null) {
      this.retarget();
      return;
    }
    this.syncVoterRole();
  }

  /**
   * The one place a node that is not leading moves between Follower and NonVoter, as its config
   * (and what it knows to be committed) says: see isActiveVoter. Run when a config entry is
   * appended or cut, when the commit index moves, and when a leader's AppendEntries arrives (a
   * voter that an "unknown" answer sent to NonVoter while a leader still replicates to it: the
   * answer was wrong or stale, and the leader's traffic proves it).
   */
  private syncVoterRole(): void {
    const voter = this.isActiveVoter();
    if (this.role === 'Follower' && !voter) this.becomeNonVoter();
    else if (this.role === 'NonVoter' && voter && this.log.lastIndex > 0) {
      this.role = 'Follower';
      this.electionDeadlineMs = this.randomDeadline();
    }
  }

  // ---- replication (paper 5.3, 5.4.2) ----

  private handleAppendEntries(reqId: number, req: AppendEntriesRequest): void {
    this.heardFromLeader(req.leaderId);
    this.syncVoterRole();
    if (this.role === 'Follower') this.electionDeadlineMs = this.randomDeadline();
    const plan = planAppend(this.log, req);
    if (plan.kind === 'mismatch') {
      this.reply(reqId, this.appendResponse(false, 0 as LogIndex, plan.conflict));
      return;
    }
    if (plan.newEntries.length > 0) {
      if (plan.truncateFrom !== null) {
        // Held successes that named the entries being replaced must not go out as successes.
        this.replies.revokeSuccessesFrom(plan.truncateFrom, this.appendResponse(false, 0 as LogIndex), this.saves.awaited);
      }
      this.appendLocal(plan.newEntries, plan.truncateFrom);
    }
    this.commitTo(Math.min(req.leaderCommit, plan.lastNewIndex) as LogIndex);
    // Seed 002 rule 3: success only once every entry the request names is durable.
    this.reply(reqId, this.appendResponse(true, plan.lastNewIndex), plan.lastNewIndex);
  }

  private appendAsLeader(entries: readonly Entry[]): void {
    this.appendLocal(entries, null);
    this.emit({ type: 'replicate', entries });
  }

  private appendLocal(entries: readonly Entry[], truncateFrom: LogIndex | null): void {
    // A term adopted in this step goes to storage before the entries of that term: storage writes
    // in order, so a crash can never leave entries of a term the hard state has not reached
    // (simulator seed 84: a torn write kept the entries and lost the term).
    this.flushHardState();
    const membershipChanged = this.log.write(entries, truncateFrom);
    this.emit({ type: 'appendLog', entries, truncateFrom });
    if (membershipChanged) this.onMembershipChanged();
  }

  private onReplicated(peer: NodeId, leaderTerm: Term, matchIndex: LogIndex, round?: number, sentAtMs?: number): void {
    const lead = this.leadership;
    if (lead === null || leaderTerm !== this.currentTerm || peer === this.id) return;
    if (matchIndex > this.log.lastIndex) throw new InvariantViolation(`peer ${peer} matches ${matchIndex}, beyond our last index ${this.log.lastIndex}`);
    if (round !== undefined && sentAtMs !== undefined) {
      lead.recordAck(peer, round, sentAtMs);
      this.checkReadRound();
    }
    if (!lead.recordMatch(peer, matchIndex)) return;
    if (this.transfer?.to === peer) this.maybeSendTimeoutNow();
    const c = this.change;
    if (c?.phase === 'catchingUp' && c.awaiting.has(peer)) {
      if (this.caughtUp(c, matchIndex)) c.awaiting.delete(peer);
      else c.awaiting.set(peer, this.nowMs);
    }
    this.maybeCommitAsLeader();
  }

  /**
   * Figure 2's leader commit rule with Figure 8's restriction: the largest N held by a quorum whose
   * term is ours. The leader counts itself only through what is durable on its own disk (seed 002).
   */
  private maybeCommitAsLeader(): void {
    if (this.leadership === null) return;
    const n = this.leadership.quorumIndex(this.membership, this.log.durableIndex);
    if (this.log.termAt(n) === this.currentTerm) this.commitTo(n);
    this.advanceConfigChange();
  }

  // ---- membership changes (paper 6; phases in config-change.ts) ----

  /**
   * Moves the leader's membership along: finishes a committed joint config (ours or inherited),
   * settles our change once its final config commits, begins catch-up, appends the joint config once
   * every new voter is at line rate, and steps down once a committed config leaves us out.
   */
  private advanceConfigChange(): void {
    if (this.role !== 'Leader') return;
    const commit = this.log.commitIndex;
    // Nothing is appended before an entry of our own term has committed (the 2015 single-server
    // bug): until then an uncommitted config of an earlier leader may still be in play.
    if (this.log.termAt(commit) !== this.currentTerm) return;
    const m = this.membership;
    const mIndex = this.log.membershipIndex;
    if (mIndex > commit) return;
    const c = this.change;
    if (m.membersAfterConsensus !== null) {
      // A new leader whose log ends in a joint config commits it with its first entry, then ends it.
      const index = this.appendConfig(finalMembership(m));
      if (c !== null) { c.phase = 'uniform'; c.configIndex = index; }
      return;
    }
    if (c !== null) {
      if (c.phase === 'uniform' && c.configIndex === mIndex) {
        this.change = null;
        this.settleChange(c, { ok: true, index: mIndex, membership: m });
      } else if (c.phase === 'waiting') {
        this.beginCatchUp(c);
      }
      if (this.change === c && c.phase === 'catchingUp' && c.awaiting.size === 0) {
        c.phase = changesVoters(m, c.target) ? 'joint' : 'uniform';
        c.configIndex = this.appendConfig(c.phase === 'joint' ? jointMembership(m, c.target) : uniformMembership(c.target));
        return;
      }
    }
    // Seed 000: a leader that is not in the committed config steps down to NonVoter once its final config is committed.
    if (!isVoter(m, this.id)) this.becomeNonVoter();
  }

  private beginCatchUp(c: ActiveChange): void {
    c.phase = 'catchingUp';
    c.floor = this.log.commitIndex;
    c.catchUpStartMs = this.nowMs;
    const lead = this.leadership!;
    for (const id of c.syncing) if (!this.caughtUp(c, lead.matchOf(id))) c.awaiting.set(id, this.nowMs);
    this.retarget();
  }

  /** Line rate: holds everything committed when catch-up began, and is within the lag threshold of our last index. */
  private caughtUp(c: ActiveChange, match: LogIndex): boolean {
    return match >= c.floor && match + this.config.replicationLagThreshold >= this.log.lastIndex;
  }

  /**
   * Catch-up ends when any awaited node has made no progress for catchUpTimeoutMs (each node has its
   * own clock: one node's progress must not hide another's death), and in any case
   * CATCH_UP_CAP_FACTOR x catchUpTimeoutMs after it began (a node that progresses but never reaches
   * line rate, because writes outpace it, must not hold up every later change).
   */
  private catchUpDeadline(c: ActiveChange): number {
    let at = c.catchUpStartMs + CATCH_UP_CAP_FACTOR * this.config.catchUpTimeoutMs;
    for (const last of c.awaiting.values()) at = Math.min(at, last + this.config.catchUpTimeoutMs);
    return at;
  }

  /** The catch-up deadline passed: give up; nothing of the change is in the log. */
  private abandonCatchUp(): void {
    const c = this.change;
    if (c === null || c.phase !== 'catchingUp') return;
    this.change = null;
    this.retarget();
    const timeout = this.config.catchUpTimeoutMs;
    const stalled = [...c.awaiting].filter(([, last]) => this.nowMs >= last + timeout).map(([id]) => id);
    const detail = stalled.length > 0
      ? `node(s) ${stalled.join(', ')} made no replication progress for ${timeout} ms`
      : `node(s) ${[...c.awaiting.keys()].join(', ')} did not reach line rate within ${CATCH_UP_CAP_FACTOR * timeout} ms`;
    this.settleChange(c, { ok: false, error: new ConfigChangeAbortedError('catch-up-timeout', false, detail) });
  }

  private appendConfig(membership: Membership): LogIndex {
    const index = (this.log.lastIndex + 1) as LogIndex;
    this.appendAsLeader([{ index, term: this.currentTerm, kind: 'config', membership }]);
    return index;
  }

  /** Who a leader replicates to: the config's voters and non-voters, plus new voters being caught up. */
  private leaderTargets(): NodeId[] {
    const base = replicationTargets(this.membership, this.id);
    const c = this.change;
    if (c === null || c.phase !== 'catchingUp') return base;
    return [...base, ...c.syncing.filter((id) => id !== this.id && !base.includes(id))];
  }

  /** Starts streams to new targets and stops those to nodes no longer replicated to, at once. */
  private retarget(): void {
    const lead = this.leadership;
    if (lead === null) return;
    const targets = this.leaderTargets();
    if (sameNodes(targets, lead.targets)) return;
    lead.targets = targets;
    this.emit({ type: 'replicationTargets', targets });
  }

  private settleChange(c: ActiveChange, outcome: ConfigChangeOutcome): void {
    this.emit({ type: 'configChangeSettled', id: c.id, outcome });
  }

  private commitTo(n: LogIndex): void {
    if (!this.log.commitTo(n)) return;
    this.emit({ type: 'commit', commitIndex: n });
    if (this.leadership !== null && this.log.termAt(n) === this.currentTerm) {
      this.reads.termCommitted();
      this.startReadRound();
    }
    this.maybeApply();
    // A follower kept active by an uncommitted config that removes it (isActiveVoter) is out once it commits.
    this.syncVoterRole();
  }

  /**
   * Whether this node takes part in elections: it is a voter of its latest config or, while that
   * config removes it and is not known to be committed, a voter of the joint config before it. The
   * second case is a node being removed (the final config after a joint one) that must still be
   * able to finish the change: a leader deposed after appending the final config that removes it
   * may hold the only copy of that config, be the only node others' election rules accept, and
   * be needed for a majority of the old voters. Passive, it left the cluster with no leader, ever
   * (found by the simulator's membership nemesis). Active, it campaigns among the new config's
   * voters, commits the final config and steps down, as seed 000 describes.
   */
  private isActiveVoter(): boolean {
    if (isVoter(this.membership, this.id)) return true;
    const before = this.log.previousMembership;
    return this.log.membershipIndex > this.log.commitIndex && before.membersAfterConsensus !== null && isVoter(before, this.id);
  }

  /** Hands committed, durable entries to the state machine in order, each once. */
  private maybeApply(): void {
    for (const entries of this.log.takeApplyBatches(this.config.maxApplyBatchEntries)) this.emit({ type: 'apply', entries });
  }

  // ---- storage and state machine completions ----

  private onLogPersisted(index: LogIndex): void {
    if (!this.log.persisted(index)) return;
    this.releaseReplies();
    this.maybeCommitAsLeader();
    this.maybeApply();
  }

  private onHardStatePersisted(seq: number): void {
    if (!this.saves.acked(seq)) return;
    this.releaseReplies();
    this.maybeSendVotes();
  }

  private onApplied(index: LogIndex): void {
    this.log.applied(index);
    this.emitReadyReads();
  }

  // ---- reads, leases, leader transfer (thesis 6.4, 3.10) ----

  /** Starts a confirmation round for the queued reads unless one is in flight. */
  private startReadRound(): void {
    const r = this.reads.startRound(this.log.commitIndex);
    if (r === null) return;
    this.emit({ type: 'heartbeatRound', round: r.round });
    this.checkReadRound(); // a single voter confirms alone
  }

  private checkReadRound(): void {
    const lead = this.leadership;
    const r = this.reads.roundInFlight;
    if (lead === null || r === null || !lead.roundConfirmed(this.membership, r.round)) return;
    this.reads.confirm();
    this.startReadRound();
    this.emitReadyReads();
  }

  private emitReadyReads(): void {
    for (const b of this.reads.takeReady(this.log.lastApplied)) this.emit({ type: 'readsReady', ids: b.ids, readIndex: b.readIndex });
  }

  /**
   * Until when the leader may serve reads from its lease: a quorum answered a request sent at S,
   * so each of them refuses votes until at least S + electionTimeoutMinMs on its own clock; less
   * the drift margin, that holds on ours. Null when there is no valid lease: not leading, no
   * checkQuorum, nothing of our term committed yet, a transfer under way or TimeoutNow sent.
   */
  private leaseUntilMs(): number | null {
    const lead = this.leadership;
    if (lead === null || !this.config.checkQuorum || this.leaseVoid || this.transfer !== null) return null;
    if (this.log.termAt(this.log.commitIndex) !== this.currentTerm) return null;
    const until = lead.quorumAckSentAtMs(this.membership, this.nowMs) + this.config.electionTimeoutMinMs - this.config.leaseClockDriftMarginMs;
    return this.nowMs < until ? until : null;
  }

  /** Sends TimeoutNow once the transfer's target holds our whole log. */
  private maybeSendTimeoutNow(): void {
    const t = this.transfer;
    const lead = this.leadership;
    if (t === null || t.timeoutNowSent || lead === null) return;
    if (lead.matchOf(t.to) < this.log.lastIndex) return;
    t.timeoutNowSent = true;
    this.leaseVoid = true;
    this.emit({ type: 'sendTimeoutNow', to: t.to, req: { type: 'timeoutNow', term: this.currentTerm, leaderId: this.id } });
  }

  private settleTransfer(outcome: TransferOutcome): void {
    const t = this.transfer;
    if (t === null) return;
    this.transfer = null;
    this.emit({ type: 'transferSettled', id: t.id, outcome });
  }

  /** A leader of our term spoke (AppendEntries, InstallSnapshot): its lease runs from now; a transfer of ours learns who won. */
  private heardFromLeader(leaderId: NodeId): void {
    this.currentLeader = leaderId;
    this.leaderContactMs = this.nowMs;
    this.preCampaign = null;
    const t = this.transfer;
    if (t !== null) {
      if (leaderId === t.to) this.settleTransfer({ ok: true, leader: leaderId });
      else this.settleTransfer({ ok: false, error: new LeaderTransferError('superseded', t.to, t.timeoutNowSent, `node ${leaderId} became leader instead`) });
    }
  }

  // ---- plumbing ----

  private get membership(): Membership {
    return this.log.membership;
  }

  private randomDeadline(): number {
    return electionDeadline(this.nowMs, this.config, this.random);
  }

  /** Emits the one save of this step's hard-state changes, if there were any. */
  private flushHardState(): void {
    const seq = this.saves.takeUnsaved();
    if (seq !== null) this.emit({ type: 'saveHardState', hardState: { currentTerm: this.currentTerm, votedFor: this.votedFor }, seq });
  }

  /** Sends now, or holds the reply until the hard state as of now (and `needIndex`) is durable. */
  private reply(reqId: number, resp: RpcResponse, needIndex: LogIndex = 0 as LogIndex): void {
    const ready = this.replies.offer(reqId, resp, this.saves.awaited, needIndex, this.saves.durable, this.log.durableIndex);
    for (const r of ready) this.emit({ type: 'reply', reqId: r.reqId, resp: r.resp });
  }

  private releaseReplies(): void {
    for (const r of this.replies.release(this.saves.durable, this.log.durableIndex)) this.emit({ type: 'reply', reqId: r.reqId, resp: r.resp });
  }

  private voteResponse(voteGranted: boolean, isCandidateUnknown: boolean, preVote = false): VoteResponse {
    const resp: VoteResponse = { type: 'voteResponse', term: this.currentTerm, voteGranted, isCandidateUnknown };
    return preVote ? { ...resp, preVote: true } : resp;
  }

  private appendResponse(success: boolean, matchIndex: LogIndex, conflict: AppendEntriesResponse['conflict'] = null): AppendEntriesResponse {
    return { type: 'appendEntriesResponse', term: this.currentTerm, success, matchIndex, conflict };
  }

  private emit(cmd: Command): void {
    this.commands.push(cmd);
  }
}
