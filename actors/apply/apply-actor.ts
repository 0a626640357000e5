/**
 * The Apply actor: applies committed entries to the application's state machine strictly in index
 * order, in batches, off the Raft actor's path, so a slow state machine never delays heartbeats
 * (async-raft #76). It refuses a batch that does not follow the last applied index: applying out of
 * order or twice would silently fork the replicas, so it crashes the node instead.
 */
import type { Actor, ActorContext, ActorRef } from '../../runtime/actor';
import { replyError } from '../../runtime/actor';
import { decodeEntries } from '../raft/codec';
import { InvariantViolation } from '../raft/core/errors';
import type { LogIndex } from '../raft/core/types';
import type { StateMachine, StateMachineSpec } from './state-machine';

export type ApplyMsg =
  /** Committed entries, encoded, the next after the last applied. */
  | { readonly type: 'apply'; readonly entries: Uint8Array }
  /** Answer: the state machine's last applied index. */
  | { readonly type: 'lastApplied' }
  /** Answer: the state machine's answer to a local read (see StateMachine.query). */
  | { readonly type: 'query'; readonly query: unknown };

/** What the Apply actor tells the Raft actor after each batch. */
export interface AppliedMsg {
  readonly type: 'applied';
  readonly index: LogIndex;
  /** Per applied entry, from `firstIndex` on: the state machine's result. */
  readonly firstIndex: LogIndex;
  readonly results: readonly unknown[];
}

export interface ApplyArgs {
  readonly raftActorId: string;
  readonly stateMachine: StateMachineSpec;
}

export class ApplyActor implements Actor<ApplyMsg> {
  private lastApplied: LogIndex | null = null;
  private raft!: ActorRef<AppliedMsg>;

  constructor(private readonly sm: StateMachine, private readonly raftActorId: string) {}

  async started(ctx: ActorContext): Promise<void> {
    this.raft = ctx.ref<AppliedMsg>(this.raftActorId);
    this.lastApplied = await this.sm.lastApplied();
  }

  async receive(msg: ApplyMsg): Promise<unknown> {
    switch (msg.type) {
      case 'lastApplied':
        return this.lastApplied;
      case 'query':
        if (!this.sm.query) return replyError(new TypeError('this state machine does not answer queries'));
        return this.sm.query(msg.query);
      case 'apply': {
        const entries = decodeEntries(msg.entries);
        if (entries.length === 0) return undefined;
        const first = entries[0].index;
        if (first !== (this.lastApplied ?? 0) + 1) {
          throw new InvariantViolation(`apply batch starts at ${first}, but last applied is ${this.lastApplied}`);
        }
        const results = await this.sm.apply(entries);
        if (!Array.isArray(results) || results.length !== entries.length) {
          throw new InvariantViolation(`state machine returned ${Array.isArray(results) ? results.length : typeof results} results for ${entries.length} entries`);
        }
        const last = entries[entries.length - 1].index;
        this.lastApplied = last;
        this.raft.tell({ type: 'applied', index: last, firstIndex: first, results });
        return undefined;
      }
      default: {
        const never: never = msg;
        throw new TypeError(`unknown apply message ${JSON.stringify((never as { type?: unknown }).type)}`);
      }
    }
  }
}

/** Module entry for any placement. The state machine is built on the Apply actor's own thread. */
export function createApplyActor(args: ApplyArgs): ApplyActor {
  const spec = args.stateMachine;
  const sm: StateMachine = 'factory' in spec
    ? spec.factory()
    : (require(spec.module) as Record<string, (a: unknown) => StateMachine>)[spec.export](spec.args);
  return new ApplyActor(sm, args.raftActorId);
}
export const APPLY_ACTOR_MODULE = __filename;
