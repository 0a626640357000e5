/**
 * Forwarded client requests (issue 7) arriving at a node's Raft actor as raw `rpc` bytes, as the
 * network actor delivers them from another node: malformed ones are refused with
 * MalformedMessageError and change nothing; well-formed ones are answered by the leader (a write
 * with its index, and for responseMode 'applied' the state machine's result; a read with a read
 * index), and by a follower with ForwardToLeader naming the leader, never forwarded a second time.
 *
 * The tests of one describe share one 3-node cluster whose nodes forward, and run in order.
 */
import { expect } from 'chai';
import { deserialize } from 'node:v8';
import type { LocalCluster } from '../../actors/local-cluster';
import {
  decodeClientResponse, encodeClientRequest, MAX_PAYLOAD_BYTES, type ClientRequest, type ClientResponse,
} from '../../actors/raft/codec';
import { MalformedMessageError } from '../../actors/raft/core/errors';
import type { NodeId } from '../../actors/raft/core/types';
import { encodeKv } from '../../examples/kv/kv-state-machine';
import { raftActorId } from '../../network/network';
import { PLACEMENTS, rejectsWith, startKvCluster } from './helpers';

type Ok = Extract<ClientResponse, { type: 'clientOk' }>;
type Err = Extract<ClientResponse, { type: 'clientError' }>;

const put = (key: string, value: string) => encodeKv({ op: 'put', key, value });

/** A forwarded write / read as another node of the cluster would send it. */
const fwdWrite = (from: number, payload: Uint8Array, responseMode: 'committed' | 'applied' = 'committed'): ClientRequest =>
  ({ type: 'forwardWrite', from: from as NodeId, payload, responseMode });
const fwdRead = (from: number): ClientRequest => ({ type: 'forwardRead', from: from as NodeId });

/** The same bytes with the u32 at `at` replaced. */
function withU32(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const b = bytes.slice();
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v);
  return b;
}

for (const placement of PLACEMENTS) {
  describe(`t96 forwarded client requests at the Raft actor (${placement})`, function () {
    this.timeout(60_000);
    let cluster: LocalCluster;
    // Wide election timeouts: these tests assert that role, term and leader do not change.
    before(async () => {
      cluster = await startKvCluster({
        size: 3, placement, forwardToLeader: true,
        config: { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000, heartbeatIntervalMs: 100 },
      });
    });
    after(async () => { await cluster?.shutdown(); });

    const rpc = (id: number, bytes: unknown) => cluster.system.ref<{ type: 'rpc'; bytes: unknown }>(raftActorId(id)).ask<Uint8Array>({ type: 'rpc', bytes }, 10_000);
    const answer = async (id: number, req: ClientRequest): Promise<ClientResponse> => decodeClientResponse(await rpc(id, encodeClientRequest(req)));

    /** Every node's role, term, leader and last log index: what bad input must not change. */
    const view = async () => Promise.all(cluster.all().map(async (n) => {
      const m = await n.currentMetrics();
      return { id: m.id, state: m.state, term: m.currentTerm, leader: m.currentLeader, lastLogIndex: m.lastLogIndex };
    }));

    /** A write through the leader, applied on every node, and every node's supervisor running. */
    const stillCommits = async (key: string) => {
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const res = await cluster.node(leader).clientWrite(put(key, 'ok'), { responseMode: 'applied', timeoutMs: 15_000 });
      expect(res.result).to.deep.equal({ ok: true, value: null });
      await cluster.waitForApplied(res.index, { timeoutMs: 15_000 });
      for (const n of cluster.all()) expect(await n.query({ q: 'get', key }), `node ${n.id}`).to.equal('ok');
      for (const n of cluster.all()) expect(n.state, `node ${n.id} supervisor`).to.equal('running');
    };

    it('malformed forwardWrite / forwardRead bytes are refused with MalformedMessageError by every node, appending nothing', async () => {
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const from = cluster.ids.find((id) => id !== leader)!;
      // Settle: no write in flight, every node at the same last index.
      await stillCommits('before-malformed');
      const before = await view();
      const write = encodeClientRequest(fwdWrite(from, put('malformed', 'forged'), 'applied'));
      const read = encodeClientRequest(fwdRead(from));
      const bad: Array<[string, Uint8Array, RegExp]> = [];
      // Truncated at every length that still has the type byte (what isClientRequest routes).
      for (let n = 1; n < write.length; n++) bad.push([`forwardWrite cut to ${n} of ${write.length}`, write.slice(0, n), /truncated/]);
      for (let n = 1; n < read.length; n++) bad.push([`forwardRead cut to ${n} of ${read.length}`, read.slice(0, n), /truncated/]);
      const tail = (b: Uint8Array) => { const o = new Uint8Array(b.length + 1); o.set(b); return o; };
      bad.push(['forwardWrite with a trailing byte', tail(write), /1 trailing bytes/]);
      bad.push(['forwardRead with a trailing byte', tail(read), /1 trailing bytes/]);
      // Bad from ids: 0, and 2^53 and above (high half 0x200000).
      bad.push(['forwardWrite from node 0', encodeClientRequest(fwdWrite(0, put('malformed', 'forged'))), /from must be >= 1/]);
      bad.push(['forwardRead from node 0', encodeClientRequest(fwdRead(0)), /from must be >= 1/]);
      bad.push(['forwardWrite from node 2^53', withU32(write, 1, 0x20_0000), /from exceeds 2\^53/]);
      bad.push(['forwardRead from node 2^64 - 1', withU32(withU32(read, 1, 0xffff_ffff), 5, 0xffff_ffff), /from exceeds 2\^53/]);
      // A payload length field above MAX_PAYLOAD_BYTES, or longer than the bytes that follow.
      bad.push(['forwardWrite claiming MAX_PAYLOAD_BYTES + 1', withU32(write, 10, MAX_PAYLOAD_BYTES + 1), /exceeds/]);
      bad.push(['forwardWrite claiming 4 GiB', withU32(write, 10, 0xffff_ffff), /exceeds/]);
      bad.push(['forwardWrite claiming more than is there', withU32(write, 10, write.length), /truncated: payload/]);
      // A responseMode byte other than 0 or 1.
      const mode = write.slice(); mode[9] = 2;
      bad.push(['forwardWrite with responseMode byte 2', mode, /responseMode must be 0 or 1/]);

      for (const id of cluster.ids) {
        for (const [what, bytes, re] of bad) {
          const err = await rejectsWith(rpc(id, bytes), MalformedMessageError, `node ${id}: ${what}`);
          expect(err.message, `node ${id}: ${what}`).to.match(re);
        }
      }
      expect(await view(), 'role, term, leader and logs unchanged').to.deep.equal(before);
      for (const n of cluster.all()) expect(await n.query({ q: 'get', key: 'malformed' }), `node ${n.id}`).to.equal(null);
      await stillCommits('after-malformed');
    });

    it('a forwardWrite or forwardRead reaching a follower is answered with ForwardToLeader naming the leader, not forwarded again', async () => {
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const followers = cluster.ids.filter((id) => id !== leader);
      await stillCommits('before-follower');
      const before = await view();
      for (const f of followers) {
        const sender = followers.find((id) => id !== f)!;
        for (const mode of ['committed', 'applied'] as const) {
          const w = await answer(f, fwdWrite(sender, put(`via-${f}`, mode), mode));
          expect(w.type, `node ${f}, ${mode} write`).to.equal('clientError');
          const e = w as Err;
          expect(e.code).to.equal('ForwardToLeader');
          expect(e.leaderId, `node ${f} names the leader`).to.equal(leader);
          expect(e.message).to.match(new RegExp(`forward to node ${leader}\\b`));
        }
        const r = await answer(f, fwdRead(sender));
        expect(r).to.include({ type: 'clientError', code: 'ForwardToLeader', leaderId: leader });
      }
      // Not forwarded: the leader appended nothing, no node applied the writes.
      expect(await view()).to.deep.equal(before);
      for (const n of cluster.all()) {
        for (const f of followers) expect(await n.query({ q: 'get', key: `via-${f}` }), `node ${n.id}, key via-${f}`).to.equal(null);
      }
      for (const n of cluster.all()) expect(n.state, `node ${n.id} supervisor`).to.equal('running');
    });

    it('a forwardRead reaching the leader is answered clientOk with a read index at or above the commit of a write made before', async () => {
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const from = cluster.ids.find((id) => id !== leader)!;
      const res = await cluster.node(leader).clientWrite(put('read-me', 'v1'));
      const term = (await cluster.node(leader).currentMetrics()).currentTerm;
      const r = await answer(leader, fwdRead(from));
      expect(r.type, JSON.stringify(r)).to.equal('clientOk');
      const ok = r as Ok;
      expect(ok.index).to.be.at.least(res.index);
      expect(ok.term).to.equal(term);
      expect(ok).to.not.have.property('result');
      // The read index is committed on the leader.
      const m = await cluster.node(leader).currentMetrics();
      expect(m.commitIndex).to.be.at.least(ok.index);
      // A follower applied through the read index sees the write.
      await cluster.waitForApplied(ok.index, { among: [from], timeoutMs: 15_000 });
      expect(await cluster.node(from).query({ q: 'get', key: 'read-me' })).to.equal('v1');
    });

    it('a forwardWrite reaching the leader is applied and answered with its index; with responseMode applied, with the state machine\'s result', async () => {
      const leader = await cluster.waitForLeader({ timeoutMs: 15_000 });
      const from = cluster.ids.find((id) => id !== leader)!;
      const m0 = await cluster.node(leader).currentMetrics();

      const c = await answer(leader, fwdWrite(from, put('fw', 'one')));
      expect(c.type, JSON.stringify(c)).to.equal('clientOk');
      const committed = c as Ok;
      expect(committed.index).to.be.above(m0.lastLogIndex);
      expect(committed.term).to.equal(m0.currentTerm);
      expect(committed, 'a committed write carries no result').to.not.have.property('result');
      expect((await cluster.node(leader).currentMetrics()).commitIndex).to.be.at.least(committed.index);
      await cluster.waitForApplied(committed.index, { timeoutMs: 15_000 });
      for (const n of cluster.all()) expect(await n.query({ q: 'get', key: 'fw' }), `node ${n.id}`).to.equal('one');

      // 'applied': the result crosses as v8 bytes. A delete answers the value it removed.
      const a = await answer(leader, fwdWrite(from, encodeKv({ op: 'delete', key: 'fw' }), 'applied'));
      expect(a.type, JSON.stringify(a)).to.equal('clientOk');
      const applied = a as Ok;
      expect(applied.index).to.equal(committed.index + 1);
      expect(applied.result).to.be.instanceOf(Uint8Array);
      expect(deserialize(applied.result!)).to.deep.equal({ ok: true, value: 'one' });
      expect((await cluster.node(leader).currentMetrics()).lastApplied).to.be.at.least(applied.index);
      expect(await cluster.node(leader).query({ q: 'get', key: 'fw' })).to.equal(null);

      // A put answers { ok: true, value: null }, the same result a local applied write gets.
      const p = await answer(leader, fwdWrite(from, put('fw', 'two'), 'applied')) as Ok;
      expect(p.index).to.equal(applied.index + 1);
      const local = await cluster.node(leader).clientWrite(put('fw-local', 'two'), { responseMode: 'applied' });
      expect(deserialize(p.result!)).to.deep.equal(local.result).and.to.deep.equal({ ok: true, value: null });

      // An empty payload is a command like any other: committed, and answered with the KV's own result.
      const e = await answer(leader, fwdWrite(from, new Uint8Array(0), 'applied'));
      expect(e.type, JSON.stringify(e)).to.equal('clientOk');
      expect(deserialize((e as Ok).result!)).to.deep.equal({ ok: false, error: 'malformed command' });

      // Every forwarded write reached every node, in order, once.
      const last = (e as Ok).index;
      await cluster.waitForApplied(last, { timeoutMs: 15_000 });
      for (const n of cluster.all()) {
        expect(await n.query({ q: 'get', key: 'fw' }), `node ${n.id}`).to.equal('two');
        expect((await n.currentMetrics()).lastApplied, `node ${n.id}`).to.be.at.least(last);
      }
      await stillCommits('after-forwarded-writes');
    });
  });
}
