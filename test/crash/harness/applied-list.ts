/**
 * The crash tests' state machine: an append-only list of the client write ids it applied, in
 * order. A payload is the id as UTF-8 text (e.g. `c3-17`). It starts empty on every process start
 * (lastApplied 0), so a restarted node re-applies its committed log from index 1, and its list is
 * the whole committed history again: the lists of all nodes must end up identical.
 */
import type { StateMachine } from '../../../actors/apply/state-machine';
import type { Entry, LogIndex } from '../../../actors/raft/core/types';

const dec = new TextDecoder();

export const encodeId = (id: string): Uint8Array => new TextEncoder().encode(id);
export const decodeId = (payload: Uint8Array): string => dec.decode(payload);

/** What `{ q: 'applied' }` answers. */
export interface AppliedList {
  /** The ids in the order applied. */
  readonly ids: readonly string[];
  /** The log index of each id (same order). */
  readonly indexes: readonly number[];
  readonly lastApplied: number;
}

export class AppliedListMachine implements StateMachine {
  private readonly ids: string[] = [];
  private readonly indexes: number[] = [];
  private applied = 0 as LogIndex;

  lastApplied(): LogIndex { return 0 as LogIndex; }

  apply(entries: readonly Entry[]): undefined[] {
    for (const e of entries) {
      if (e.index !== this.applied + 1) throw new Error(`applied-list: entry ${e.index} after ${this.applied}: not consecutive`);
      if (e.kind === 'normal') { this.ids.push(decodeId(e.payload)); this.indexes.push(e.index); }
      this.applied = e.index;
    }
    return new Array<undefined>(entries.length).fill(undefined);
  }

  query(q: { readonly q: 'applied' }): AppliedList {
    if (q?.q !== 'applied') throw new TypeError(`unknown query ${JSON.stringify(q)}`);
    return { ids: [...this.ids], indexes: [...this.indexes], lastApplied: this.applied };
  }
}
