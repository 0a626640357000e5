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
const SNAPSHOT_FORMAT = 2;
/** About how much of a snapshot one yielded piece holds (UTF-16 units of JSON, ~1 MiB for ASCII). */
const SNAPSHOT_CHUNK_CHARS = 1 << 20;
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

  /**
   * The whole map and the applied index (seed 002's snapshot), as JSON lines: a header
   * `{"format":2,"applied":N,"keys":K}`, then one `[key, value]` line per key, yielded about 1 MiB
   * at a time. One JSON string of the whole map would stop at V8's string limit (~512 MiB), which a
   * few hundred 1 MiB values reach; then every replica would fail at the same snapshot.
   */
  async *snapshot(): AsyncIterable<Uint8Array> {
    yield enc.encode(JSON.stringify({ format: SNAPSHOT_FORMAT, applied: this.applied, keys: this.data.size }) + '\n');
    let lines: string[] = [];
    let size = 0;
    for (const entry of this.data) {
      const line = JSON.stringify(entry);
      lines.push(line);
      size += line.length;
      if (size >= SNAPSHOT_CHUNK_CHARS) { yield enc.encode(lines.join('\n') + '\n'); lines = []; size = 0; }
    }
    if (lines.length > 0) yield enc.encode(lines.join('\n') + '\n');
  }

  /** Replaces the map with a snapshot's, built aside and swapped in whole; anything unexpected throws. */
  async restore(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const text = new TextDecoder('utf-8', { fatal: true }); // streamed: a character may straddle two chunks
    const next = new Map<string, string>();
    let header: { format?: unknown; applied?: unknown; keys?: unknown; data?: unknown } | null = null;
    let rest = '';
    const line = (l: string): void => {
      if (header !== null) {
        const kv = JSON.parse(l) as unknown;
        if (!Array.isArray(kv) || kv.length !== 2 || typeof kv[0] !== 'string' || typeof kv[1] !== 'string') throw new Error('KV snapshot line is not a [key, value] pair');
        next.set(kv[0], kv[1]);
        return;
      }
      const h0 = JSON.parse(l) as { format?: unknown; applied?: unknown; keys?: unknown; data?: unknown } | null;
      if (h0 === null || typeof h0 !== 'object') throw new Error('KV snapshot header is not an object');
      if (Array.isArray(h0.data)) { // format 1 (before JSON lines): the whole map in this one line
        for (const [k, v] of h0.data as [string, string][]) next.set(k, v);
        header = { format: SNAPSHOT_FORMAT, applied: h0.applied, keys: next.size };
      } else if (h0.format !== SNAPSHOT_FORMAT) {
        throw new Error(`KV snapshot format ${String(h0.format)}; this build reads ${SNAPSHOT_FORMAT}`);
      } else {
        header = h0;
      }
    };
    for await (const chunk of data) {
      const scanned = rest.length; // no newline before this: search only the new text
      rest += text.decode(chunk, { stream: true });
      let from = 0;
      for (let nl = rest.indexOf('\n', scanned); nl >= 0; nl = rest.indexOf('\n', from)) { line(rest.slice(from, nl)); from = nl + 1; }
      rest = rest.slice(from);
    }
    rest += text.decode();
    if (rest !== '') line(rest); // format 1 had no final newline
    const h = header as { applied?: unknown; keys?: unknown } | null;
    if (h === null) throw new Error('KV snapshot is empty');
    if (h.applied !== meta.lastIncludedIndex) throw new Error(`KV snapshot holds index ${String(h.applied)}, its meta says ${meta.lastIncludedIndex}`);
    if (h.keys !== next.size) throw new Error(`KV snapshot holds ${next.size} keys, its header says ${String(h.keys)}`);
    this.data.clear();
    for (const [k, v] of next) this.data.set(k, v);
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
