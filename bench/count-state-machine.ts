/** The benchmark's state machine: counts entries and bytes, so the figures measure Raft, not the application. */
import type { StateMachine } from '../actors/apply/state-machine';
import type { Entry, LogIndex } from '../actors/raft/core/types';

export class CountStateMachine implements StateMachine {
  private applied = 0 as LogIndex;
  private bytes = 0;
  lastApplied(): LogIndex { return this.applied; }
  apply(entries: readonly Entry[]): undefined[] {
    for (const e of entries) { if (e.kind === 'normal') this.bytes += e.payload.length; this.applied = e.index; }
    return new Array(entries.length).fill(undefined);
  }
  query(): unknown { return { applied: this.applied, bytes: this.bytes }; }
}

export function createCount(): CountStateMachine { return new CountStateMachine(); }
export const COUNT_MODULE = __filename;
