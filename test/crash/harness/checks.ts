/**
 * The crash tests' assertions over a finished run: the applied lists of every node against the
 * clients' record (load.ts), and the durable logs read offline against the acknowledgements.
 * Failures name the first offending ids and nodes instead of dumping whole lists.
 */
import type { Entry } from '../../../actors/raft/core/types';
import { decodeId, type AppliedList } from './applied-list';
import type { DurableLog } from './durable';
import type { Ack, Load } from './load';

/** What the checks need from a run's record (a Load, or a hand-made one in the checks' own tests). */
export type Outcomes = Pick<Load, 'acked' | 'refused' | 'unknown'>;

function fail(msg: string): never { throw new Error(msg); }

const first = <T>(xs: Iterable<T>, n = 5): T[] => { const out: T[] = []; for (const x of xs) { if (out.length >= n) break; out.push(x); } return out; };

/**
 * Every node applied the same sequence; in it every acknowledged id appears exactly once, at the
 * index it was acknowledged with; a refused id never; an id with an unknown outcome at most once;
 * and nothing nobody wrote.
 */
export function checkApplied(load: Outcomes, lists: ReadonlyMap<number, AppliedList>): { applied: number; unknownApplied: number } {
  const nodes = [...lists.keys()];
  const ref = lists.get(nodes[0])!;
  for (const n of nodes.slice(1)) {
    const l = lists.get(n)!;
    if (l.lastApplied !== ref.lastApplied || l.ids.length !== ref.ids.length) {
      fail(`node ${n} applied ${l.ids.length} ids up to index ${l.lastApplied}, node ${nodes[0]} ${ref.ids.length} up to ${ref.lastApplied}`);
    }
    for (let i = 0; i < ref.ids.length; i++) {
      if (l.ids[i] !== ref.ids[i] || l.indexes[i] !== ref.indexes[i]) {
        fail(`applied sequences differ at position ${i}: node ${nodes[0]} has ${ref.ids[i]}@${ref.indexes[i]}, node ${n} has ${l.ids[i]}@${l.indexes[i]}`);
      }
    }
  }
  for (const [n, l] of lists) {
    const count = new Map<string, number>();
    const at = new Map<string, number>();
    l.ids.forEach((id, i) => { count.set(id, (count.get(id) ?? 0) + 1); at.set(id, l.indexes[i]); });
    const twice = [...count].filter(([, c]) => c > 1);
    if (twice.length > 0) fail(`node ${n} applied ${twice.length} ids more than once, e.g. ${JSON.stringify(first(twice))}`);
    const missing = [...load.acked.keys()].filter((id) => !count.has(id));
    if (missing.length > 0) {
      fail(`node ${n} lacks ${missing.length} of ${load.acked.size} acknowledged writes, e.g. ${JSON.stringify(first(missing).map((id) => [id, load.acked.get(id)]))}`);
    }
    const moved = [...load.acked].filter(([id, a]) => at.get(id) !== a.index);
    if (moved.length > 0) fail(`node ${n} applied ${moved.length} acknowledged ids at another index than acknowledged, e.g. ${JSON.stringify(first(moved).map(([id, a]) => [id, a.index, at.get(id)]))}`);
    const refused = [...load.refused].filter((id) => count.has(id));
    if (refused.length > 0) fail(`node ${n} applied ${refused.length} writes that were refused (ForwardToLeader / ProposalDropped), e.g. ${JSON.stringify(first(refused))}`);
    const stray = [...count.keys()].filter((id) => !load.acked.has(id) && !load.unknown.has(id));
    if (stray.length > 0) fail(`node ${n} applied ${stray.length} ids no client has an outcome for, e.g. ${JSON.stringify(first(stray))}`);
  }
  const appliedIds = new Set(ref.ids);
  const unknownApplied = [...load.unknown.keys()].filter((id) => appliedIds.has(id)).length;
  return { applied: ref.ids.length, unknownApplied };
}

const describe = (e: Entry): string => (e.kind === 'normal' ? `normal:${decodeId(e.payload)}` : e.kind === 'config' ? `config:${JSON.stringify(e.membership)}` : 'blank');

/**
 * Reads of the nodes' durable state (offline, after the processes stopped): each acknowledged id's
 * entry is in the logs of at least `quorum` nodes, at its acknowledged index; no log holds an id
 * twice; logs are consecutive from index 1; a node's durable term is not below its last entry's;
 * and two logs holding an entry of the same term at an index hold the same entry (Log Matching).
 * Returns how many acknowledged ids each count of nodes holds.
 */
export function checkDurable(acked: ReadonlyMap<string, Ack>, durable: ReadonlyMap<number, DurableLog>, quorum: number): Record<number, number> {
  const logs = new Map<number, readonly Entry[]>([...durable].map(([n, d]) => [n, d.entries]));
  for (const [n, d] of durable) {
    const last = d.entries[d.entries.length - 1];
    if (last && last.term > d.hardState.currentTerm) fail(`node ${n}'s durable term ${d.hardState.currentTerm} is below its last entry's term ${last.term} (index ${last.index})`);
  }
  const nodes = [...logs.keys()];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const a = logs.get(nodes[i])!;
      const b = logs.get(nodes[j])!;
      for (let k = 0; k < Math.min(a.length, b.length); k++) {
        if (a[k].term === b[k].term && describe(a[k]) !== describe(b[k])) {
          fail(`Log Matching broken at index ${a[k].index}, term ${a[k].term}: node ${nodes[i]} holds ${describe(a[k])}, node ${nodes[j]} ${describe(b[k])}`);
        }
      }
    }
  }
  const idAt = new Map<number, Map<number, string>>();
  for (const [n, entries] of logs) {
    const byIndex = new Map<number, string>();
    const seen = new Set<string>();
    let prev = 0;
    for (const e of entries) {
      if (e.index !== prev + 1) fail(`node ${n}'s durable log jumps from index ${prev} to ${e.index}`);
      prev = e.index;
      if (e.kind !== 'normal') continue;
      const id = decodeId(e.payload);
      if (seen.has(id)) fail(`node ${n}'s durable log holds ${id} twice`);
      seen.add(id);
      byIndex.set(e.index, id);
    }
    idAt.set(n, byIndex);
  }
  const holders: Record<number, number> = {};
  const short: string[] = [];
  for (const [id, a] of acked) {
    const on = [...idAt].filter(([, m]) => m.get(a.index) === id).map(([n]) => n);
    holders[on.length] = (holders[on.length] ?? 0) + 1;
    if (on.length < quorum) short.push(`${id}@${a.index} (acked by node ${a.node} in term ${a.term}) on nodes [${on.join(',')}]`);
  }
  if (short.length > 0) {
    fail(`${short.length} acknowledged writes are durable on fewer than ${quorum} nodes, e.g. ${first(short, 8).join('; ')}; logs end at ${JSON.stringify([...logs].map(([n, es]) => [n, es.length === 0 ? 0 : es[es.length - 1].index]))}`);
  }
  return holders;
}
