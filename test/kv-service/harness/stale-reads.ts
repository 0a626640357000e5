/**
 * A direct, cheap check for lost acknowledged writes, beside the linearizability checker: the
 * checker proves a history linearizable quickly, but proving one illegal can exhaust its budget
 * (writes with unknown outcome multiply the orders it must rule out), and then it says only
 * "unknown". This check says exactly which observation contradicts which acknowledged write.
 *
 * Written values are unique, so every observed value names the one write that wrote it. An
 * observation is an ok read of value V, or a cas that swapped (it saw its `expected`). It is
 * stale when some acknowledged write A of the same key began after V's write had returned and
 * returned before the observation began: A must be ordered between the two, and only V's write
 * writes V. Such a history is never linearizable, so this check never raises a false alarm; it
 * also flags values that no write with an ok or unknown outcome wrote.
 *
 * @example
 * const problems = findStaleObservations(history.records); // [] when none
 */
import type { Recorded } from './history';

/** The value a write record writes, or null for a read. */
function writtenValue(r: Recorded): string | null {
  return r.input.op === 'get' ? null : r.input.value;
}

function acknowledged(r: Recorded): boolean {
  if (r.outcome !== 'ok') return false;
  return r.input.op === 'put' || (r.input.op === 'cas' && r.output === true);
}

/** What an ok record observed of its key: a read's value, a swapped cas's expected value. */
function observed(r: Recorded): string | null {
  if (r.outcome !== 'ok') return null;
  if (r.input.op === 'get') return r.output as string;
  if (r.input.op === 'cas' && r.output === true) return r.input.expected;
  return null;
}

function describe(r: Recorded): string {
  const what = r.input.op === 'get' ? `get -> ${JSON.stringify(r.output)}` :
    r.input.op === 'cas' ? `cas ${JSON.stringify(r.input.expected)} -> ${JSON.stringify(r.input.value)} (${r.outcome === 'ok' ? String(r.output) : r.outcome})` :
      `${r.input.op} ${JSON.stringify(r.input.value)} (${r.outcome})`;
  return `[${r.call}..${r.ret ?? '-'}] c${r.client}@n${r.node} ${what}${r.detail ? ` ${r.detail}` : ''}`;
}

/** Every stale or unexplained observation, one line each (at most `max`). */
export function findStaleObservations(records: readonly Recorded[], max = 20): string[] {
  if (records.some((r) => r.input.op === 'append')) throw new RangeError('findStaleObservations needs unique whole values: get, put and cas only');
  const out: string[] = [];
  const byKey = new Map<string, Recorded[]>();
  for (const r of records) {
    const list = byKey.get(r.input.key);
    if (list) list.push(r); else byKey.set(r.input.key, [r]);
  }
  for (const [key, recs] of byKey) {
    const writerOf = new Map<string, Recorded>();
    for (const r of recs) {
      const v = writtenValue(r);
      if (v !== null) writerOf.set(v, r);
    }
    const acks = recs.filter(acknowledged);
    for (const r of recs) {
      const v = observed(r);
      if (v === null) continue;
      // '' is the missing key: "written" by the initial state, which returned before anything began.
      const writer = v === '' ? null : writerOf.get(v);
      if (writer !== null && (writer === undefined || writer.outcome === 'fail')) {
        out.push(`key ${key}: ${describe(r)} observed a value ${writer ? `only a failed write wrote: ${describe(writer)}` : 'no write wrote'}`);
      } else {
        // A write with unknown outcome may take effect at any time after its call: no bound.
        const writtenBy = writer === null || writer === undefined ? 0 : writer.outcome === 'ok' ? writer.ret! : Infinity;
        const between = acks.find((a) => a !== writer && a.call > writtenBy && a.ret !== null && a.ret < r.call);
        if (between) {
          out.push(`key ${key}: ${describe(r)} is stale: the acknowledged ${describe(between)} began after ` +
            `${writer ? describe(writer) : 'the initial (missing) state'} and returned before the observation began`);
        }
      }
      if (out.length >= max) return out;
    }
  }
  return out;
}
