/**
 * Links from this thread to the others, one MessagePort each, with per-turn batching: envelopes
 * for one thread accumulate during the current turn and leave in a single postMessage from a
 * microtask, so N tells in one turn cost one structured clone call and one wake-up of the peer.
 */
import type { MessagePort } from 'node:worker_threads';
import { type Envelope } from './envelope';

/** Most envelopes in one postMessage; a larger turn is split so no batch grows without bound. */
export const MAX_BATCH_ENVELOPES = 8192;

/** What the transport calls back into (the thread runtime). */
export interface TransportHost {
  /** An envelope arrived from thread `from`. */
  inbound(env: Envelope): void;
  /** `env` could not be sent (e.g. its message is not cloneable). */
  undeliverable(env: Envelope, error: Error): void;
  /** The peer closed its end (thread exit or stop). */
  linkClosed(thread: string): void;
}

/** Counters of one link, for stats and tests. */
export interface LinkStats {
  batchesSent: number;
  envelopesSent: number;
  batchesReceived: number;
  envelopesReceived: number;
}

class Link implements LinkStats {
  out: Envelope[] = [];
  batchesSent = 0;
  envelopesSent = 0;
  batchesReceived = 0;
  envelopesReceived = 0;
  constructor(
    readonly thread: string,
    readonly port: MessagePort,
  ) {}
}

/**
 * One thread's links. @example transport.attach('w1', port); transport.send('w1', env);
 */
export class Transport {
  private readonly links = new Map<string, Link>();
  private dirty: Link[] = [];
  private flushQueued = false;
  private readonly flushFn = (): void => this.flush();

  constructor(private readonly host: TransportHost) {}

  /** Starts using `port` to reach `thread` (replacing any older link). */
  attach(thread: string, port: MessagePort): void {
    this.detach(thread);
    const link = new Link(thread, port);
    this.links.set(thread, link);
    port.on('message', (batch: Envelope[]) => {
      link.batchesReceived++;
      link.envelopesReceived += batch.length;
      for (let i = 0; i < batch.length; i++) this.host.inbound(batch[i]);
    });
    port.on('close', () => {
      if (this.links.get(thread) !== link) return;
      this.links.delete(thread);
      this.host.linkClosed(thread);
    });
  }

  /** Closes the link to `thread`; envelopes still queued for it are dropped. */
  detach(thread: string): void {
    const link = this.links.get(thread);
    if (link === undefined) return;
    this.links.delete(thread);
    link.out = [];
    link.port.close();
  }

  has(thread: string): boolean {
    return this.links.has(thread);
  }

  /** Queues `env` for `thread`; false when there is no link to it. */
  send(thread: string, env: Envelope): boolean {
    const link = this.links.get(thread);
    if (link === undefined) return false;
    if (link.out.length === 0) {
      this.dirty.push(link);
      if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(this.flushFn);
      }
    }
    link.out.push(env);
    if (link.out.length >= MAX_BATCH_ENVELOPES) this.post(link);
    return true;
  }

  /** Posts every queued batch now. Runs by itself at the end of each turn. */
  flush(): void {
    this.flushQueued = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const link of dirty) if (link.out.length > 0) this.post(link);
  }

  stats(): Record<string, LinkStats> {
    const out: Record<string, LinkStats> = {};
    for (const [thread, l] of this.links) {
      out[thread] = { batchesSent: l.batchesSent, envelopesSent: l.envelopesSent, batchesReceived: l.batchesReceived, envelopesReceived: l.envelopesReceived };
    }
    return out;
  }

  /** Closes every link. */
  close(): void {
    for (const thread of [...this.links.keys()]) this.detach(thread);
    this.dirty = [];
  }

  private post(link: Link): void {
    const batch = link.out;
    link.out = [];
    try {
      link.port.postMessage(batch);
      link.batchesSent++;
      link.envelopesSent += batch.length;
    } catch {
      // One uncloneable message must not sink its batch: send the rest one by one.
      this.postEach(link, batch);
    }
  }

  private postEach(link: Link, batch: Envelope[]): void {
    for (const env of batch) {
      try {
        link.port.postMessage([env]);
        link.batchesSent++;
        link.envelopesSent++;
      } catch (e) {
        this.host.undeliverable(env, e as Error);
      }
    }
  }
}
