/**
 * A key-value state machine: the demo's application. Commands are JSON (get, put, append,
 * compare-and-set, delete); each result is what the client that wrote the command receives.
 */
import { createHash } from 'node:crypto';
import type { StateMachine } from '../../actors/apply/state-machine';
import type { Entry, LogIndex, SnapshotMeta } from '../../actors/raft/core/types';

export type KvCommand =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'append'; readonly key: string; readonly value: string }
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string }
  | { readonly op: 'delete'; readonly key: string };

export type KvResult =
  | { readonly ok: true; readonly value: string | null }
  | { readonly ok: false; readonly error: string; readonly value?: string | null };

/** Local reads of one replica, for inspection (not linearizable). */
export type KvQuery = { readonly q: 'get'; readonly key: string } | { readonly q: 'digest' } | { readonly q: 'size' };

const enc = new TextEncoder();
const dec = new TextDecoder();

export const encodeKv = (c: KvCommand): Uint8Array => enc.encode(JSON.stringify(c));

function decodeKv(payload: Uint8Array): KvCommand | null {
  try {
    const c = JSON.parse(dec.decode(payload)) as Record<string, unknown>;
    if (c === null || typeof c !== 'object' || typeof c.key !== 'string') return null;
    const str = (v: unknown) => typeof v === 'string';
    switch (c.op) {
      case 'get': case 'delete': return c as KvCommand;
      case 'put': case 'append': return str(c.value) ? (c as KvCommand) : null;
      case 'cas': return str(c.value) && (c.expected === null || str(c.expected)) ? (c as KvCommand) : null;
      default: return c as unknown as KvCommand; // run() names the unknown op
    }
  } catch {
    return null;
  }
}

export class KvStateMachine implements StateMachine {
  private readonly data = new Map<string, string>();
  private applied = 0 as LogIndex;

  lastApplied(): LogIndex { return this.applied; }

  apply(entries: readonly Entry[]): KvResult[] {
    const out: KvResult[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      out[i] = e.kind === 'normal' ? this.run(decodeKv(e.payload)) : { ok: true, value: null };
      this.applied = e.index;
    }
    return out;
  }

  private run(c: KvCommand | null): KvResult {
    if (c === null) return { ok: false, error: 'malformed command' };
    const cur = this.data.get(c.key) ?? null;
    switch (c.op) {
      case 'get': return { ok: true, value: cur };
      case 'put': this.data.set(c.key, c.value); return { ok: true, value: null };
      case 'append': this.data.set(c.key, (cur ?? '') + c.value); return { ok: true, value: null };
      case 'cas':
        if (cur !== c.expected) return { ok: false, error: 'cas mismatch', value: cur };
        this.data.set(c.key, c.value);
        return { ok: true, value: null };
      case 'delete': this.data.delete(c.key); return { ok: true, value: cur };
      default: return { ok: false, error: `unknown op ${String((c as { op?: unknown }).op)}` };
    }
  }

  /** The whole map and the applied index, as JSON (seed 002's snapshot). */
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ applied: this.applied, data: [...this.data] }));
  }

  /** Replaces the map with a snapshot's. */
  async restore(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of data) parts.push(c);
    const parsed = JSON.parse(dec.decode(Buffer.concat(parts))) as { applied: number; data: [string, string][] };
    if (parsed.applied !== meta.lastIncludedIndex) throw new Error(`KV snapshot holds index ${parsed.applied}, its meta says ${meta.lastIncludedIndex}`);
    this.data.clear();
    for (const [k, v] of parsed.data) this.data.set(k, v);
    this.applied = meta.lastIncludedIndex;
  }

  query(q: KvQuery): unknown {
    switch (q.q) {
      case 'get': return this.data.get(q.key) ?? null;
      case 'size': return this.data.size;
      case 'digest': {
        const h = createHash('sha256');
        // JSON framing: no choice of key or value can make two different maps hash alike.
        for (const k of [...this.data.keys()].sort()) h.update(JSON.stringify([k, this.data.get(k)])).update('\n');
        return { appliedIndex: this.applied, keys: this.data.size, sha256: h.digest('hex') };
      }
      default: throw new TypeError(`unknown query ${JSON.stringify(q)}`);
    }
  }
}

/** Module entry for the Apply actor: `{ module: KV_MODULE, export: 'createKv', args: {} }`. */
export function createKv(): KvStateMachine { return new KvStateMachine(); }
export const KV_MODULE = __filename;
