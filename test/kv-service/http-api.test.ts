/**
 * The KV service's HTTP API in one process: four RaftNodes on TcpNetwork over loopback (placement
 * 'local'), nodes 1-3 formed through POST /admin/init and node 4 pristine, each behind its own
 * createKvHttpServer on port 0. The API's answers (contract in .scratch/contract.md), forwarding
 * from a follower, the metrics, membership changes through /admin/members, and every kind of bad
 * input answered 4xx with the JSON error shape while the server stays healthy.
 */
import { expect } from 'chai';
import * as http from 'node:http';
import * as net from 'node:net';
import { RaftNode } from '../../actors/node';
import { ActorSystem } from '../../runtime/system';
import { tcpNetworkSpec, TcpNetworkStats, type TcpAddress } from '../../network/tcp-network';
import { KV_MODULE } from '../../examples/kv/kv-state-machine';
import { createKvHttpServer, libraryError } from '../../examples/kv-service/http-api';
import { UnreachableError } from '../../network/network';
import { KvMetrics } from '../../examples/kv-service/metrics';
import { freePorts } from '../../network/free-ports';

const MAX_BODY = 1024;
const IDS = [1, 2, 3, 4];

interface Served { node: RaftNode; server: http.Server; port: number; metrics: KvMetrics }
interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string; json: any }

const agent = new http.Agent({ keepAlive: false });

function request(port: number, method: string, path: string, body?: string | Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${path}: no answer within 20 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Calls `probe` until it returns true (never a fixed sleep as the test's logic: a bounded poll). */
async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function expectError(a: Answer, status: number, error: string): void {
  expect(a.status, a.text).to.equal(status);
  expect(a.headers['content-type']).to.match(/^application\/json/);
  expect(a.json, a.text).to.be.an('object');
  expect(a.json.status).to.equal(status);
  expect(a.json.error).to.equal(error);
  expect(a.json.message).to.be.a('string').and.not.equal('');
}

describe('KV service HTTP API (4 nodes over TcpNetwork in one process)', function () {
  this.timeout(30_000);
  let system: ActorSystem;
  const served = new Map<number, Served>();
  let leader: number;
  const port = (id: number) => served.get(id)!.port;
  const followerOf = () => [1, 2, 3].find((id) => id !== leader)!;
  /**
   * Re-reads the leader where a test depends on who leads (an election under a loaded machine
   * must not fail it): waits until the voters agree on one that says it leads.
   */
  const refreshLeader = async (voters: readonly number[] = [1, 2, 3]) => {
    await eventually('one agreed leader', async () => {
      const s = await Promise.all(voters.map((id) => request(port(id), 'GET', '/status')));
      const l = s[0].json.currentLeader;
      if (l === null || s.some((x) => x.json.currentLeader !== l)) return false;
      if ((await request(port(l), 'GET', '/status')).json.state !== 'Leader') return false;
      leader = l;
      return true;
    });
  };

  before(async function () {
    this.timeout(60_000);
    system = ActorSystem.create();
    const ports = await freePorts(IDS.length);
    const peers: Record<number, TcpAddress> = {};
    IDS.forEach((id, i) => { peers[id] = { host: '127.0.0.1', port: ports[i] }; });
    await Promise.all(IDS.map(async (id) => {
      const tcpStats = TcpNetworkStats.create();
      const node = await RaftNode.start({
        system, id, placement: 'local', forwardToLeader: true,
        stateMachine: { module: KV_MODULE, export: 'createKv', args: {} },
        network: tcpNetworkSpec({ self: id, clusterId: 'http-api-test', listen: peers[id], peers, stats: tcpStats.buffer }),
      });
      const metrics = new KvMetrics({ node, tcpStats, defaultMetrics: false });
      const server = createKvHttpServer(node, { maxBodyBytes: MAX_BODY, metrics, knownIds: IDS, requestTimeoutMs: 10_000, adminTimeoutMs: 20_000 });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      served.set(id, { node, server, metrics, port: (server.address() as net.AddressInfo).port });
    }));
    const inits = await Promise.all([1, 2, 3].map((id) => request(port(id), 'POST', '/admin/init', JSON.stringify({ members: [1, 2, 3] }))));
    for (const a of inits) expect(a.status, a.text).to.equal(200);
    expect(inits[0].json).to.deep.equal({ members: [1, 2, 3] });
    const m = await served.get(1)!.node.waitForMetrics((x) => x.currentLeader !== null, { timeoutMs: 20_000, what: 'a leader' });
    leader = m.currentLeader!;
  });

  after(async function () {
    this.timeout(30_000);
    for (const s of served.values()) {
      s.metrics.close();
      s.server.closeAllConnections();
      await new Promise<void>((resolve) => s.server.close(() => resolve()));
    }
    await Promise.all([...served.values()].map((s) => s.node.stop().catch(() => undefined)));
    await system?.shutdown();
    agent.destroy();
  });

  describe('the key-value routes', () => {
    it('PUT answers the index once applied; GET reads it back linearizably from every node', async () => {
      const put = await request(port(leader), 'PUT', '/kv/greeting', 'hello, world');
      expect(put.status, put.text).to.equal(200);
      expect(put.json.index).to.be.a('number').above(0);
      for (const id of [1, 2, 3]) {
        const get = await request(port(id), 'GET', '/kv/greeting');
        expect(get.status, `node ${id}: ${get.text}`).to.equal(200);
        expect(get.json).to.deep.equal({ key: 'greeting', value: 'hello, world' });
      }
    });

    it('a follower forwards a write to the leader', async () => {
      const f = followerOf();
      const put = await request(port(f), 'PUT', '/kv/forwarded', 'via a follower', { 'content-type': 'application/octet-stream' });
      expect(put.status, put.text).to.equal(200);
      const get = await request(port(leader), 'GET', '/kv/forwarded');
      expect(get.json).to.deep.equal({ key: 'forwarded', value: 'via a follower' });
    });

    it('?stale=true reads the local replica, which catches up', async () => {
      await request(port(leader), 'PUT', '/kv/stale-key', 'v1');
      for (const id of [1, 2, 3]) {
        await eventually(`node ${id} applying stale-key`, async () => {
          const a = await request(port(id), 'GET', '/kv/stale-key?stale=true');
          return a.status === 200 && a.json.value === 'v1';
        });
      }
      const missing = await request(port(followerOf()), 'GET', '/kv/never-written?stale=true');
      expectError(missing, 404, 'NotFound');
    });

    it('a missing key is 404 NotFound', async () => {
      expectError(await request(port(followerOf()), 'GET', '/kv/no-such-key'), 404, 'NotFound');
    });

    it('DELETE answers whether the key existed, and the key is gone', async () => {
      await request(port(leader), 'PUT', '/kv/doomed', 'x');
      const del = await request(port(followerOf()), 'DELETE', '/kv/doomed');
      expect(del.status, del.text).to.equal(200);
      expect(del.json).to.include({ existed: true });
      expect(del.json.index).to.be.a('number');
      const again = await request(port(leader), 'DELETE', '/kv/doomed');
      expect(again.json).to.include({ existed: false });
      expectError(await request(port(leader), 'GET', '/kv/doomed'), 404, 'NotFound');
    });

    it('CAS swaps when the value matches (200) and answers 409 with the current value when not', async () => {
      const create = await request(port(leader), 'POST', '/cas/counter', JSON.stringify({ from: null, to: '1' }));
      expect(create.status, create.text).to.equal(200);
      expect(create.json.index).to.be.a('number');
      const dup = await request(port(followerOf()), 'POST', '/cas/counter', JSON.stringify({ from: null, to: '1' }));
      expectError(dup, 409, 'CasMismatch');
      expect(dup.json.current).to.equal('1');
      const swap = await request(port(followerOf()), 'POST', '/cas/counter', JSON.stringify({ from: '1', to: '2' }));
      expect(swap.status, swap.text).to.equal(200);
      const stale = await request(port(leader), 'POST', '/cas/counter', JSON.stringify({ from: '1', to: '3' }));
      expectError(stale, 409, 'CasMismatch');
      expect(stale.json.current).to.equal('2');
      const absent = await request(port(leader), 'POST', '/cas/not-there', JSON.stringify({ from: 'x', to: 'y' }));
      expectError(absent, 409, 'CasMismatch');
      expect(absent.json.current).to.equal(null);
      expect((await request(port(leader), 'GET', '/kv/counter')).json.value).to.equal('2');
    });

    it('keys are percent-decoded: unicode, slashes and the longest allowed key round-trip', async () => {
      for (const key of ['ключ/with slash', 'x'.repeat(256), 'é'.repeat(128)]) {
        const path = `/kv/${encodeURIComponent(key)}`;
        const put = await request(port(leader), 'PUT', path, 'v');
        expect(put.status, `${key}: ${put.text}`).to.equal(200);
        expect((await request(port(leader), 'GET', path)).json).to.deep.equal({ key, value: 'v' });
      }
    });
  });

  describe('status and metrics', () => {
    it('GET /status is the node\'s RaftMetrics as JSON', async () => {
      await refreshLeader();
      const a = await request(port(leader), 'GET', '/status');
      expect(a.status).to.equal(200);
      expect(a.headers['content-type']).to.match(/^application\/json/);
      expect(a.json).to.include({ id: leader, state: 'Leader', currentLeader: leader });
      expect(a.json.currentTerm).to.be.a('number').above(0);
      expect(a.json.commitIndex).to.be.a('number');
      expect(a.json.membership.members).to.have.members([1, 2, 3]);
      const f = await request(port(followerOf()), 'GET', '/status');
      expect(f.json).to.include({ state: 'Follower', currentLeader: leader });
    });

    it('GET /metrics is Prometheus text with the Raft, transport and HTTP metrics', async () => {
      await refreshLeader();
      await request(port(leader), 'PUT', '/kv/metered', 'x');
      const a = await request(port(leader), 'GET', '/metrics');
      expect(a.status).to.equal(200);
      expect(a.headers['content-type']).to.match(/^text\/plain/);
      for (const name of [
        'actor_raft_term', 'actor_raft_commit_index', 'actor_raft_applied_index', 'actor_raft_last_log_index',
        'actor_raft_current_leader', 'actor_raft_leader_changes_total', 'actor_raft_tcp_connects_total',
        'actor_raft_tcp_connect_failures_total', 'actor_raft_tcp_refused_cluster_total', 'actor_raft_tcp_bad_frames_total',
      ]) expect(a.text).to.match(new RegExp(`^${name} \\d+`, 'm'), name);
      expect(a.text).to.match(/^actor_raft_is_leader 1$/m);
      expect(a.text).to.match(/^actor_raft_rpc_sent_total\{kind="append"\} [1-9]\d*$/m);
      expect(a.text).to.match(/^actor_raft_rpc_received_total\{kind="vote"\} \d+$/m);
      expect(a.text).to.match(/^kv_http_request_duration_seconds_count\{route="\/kv\/:key",method="PUT",status="200"\} [1-9]/m);
      expect(a.text).to.match(/^# TYPE actor_raft_rpc_latency_seconds histogram$/m);

      // The RPC latency histogram converted from per-bucket totals: cumulative, +Inf equals the count.
      const buckets = [...a.text.matchAll(/^actor_raft_rpc_latency_seconds_bucket\{kind="append",le="([^"]+)"\} (\d+)$/gm)].map((x) => [x[1], Number(x[2])] as const);
      expect(buckets.length).to.be.above(2);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i][1]).to.be.at.least(buckets[i - 1][1]);
      expect(buckets[buckets.length - 1][0]).to.equal('+Inf');
      const count = Number(/^actor_raft_rpc_latency_seconds_count\{kind="append"\} (\d+)$/m.exec(a.text)![1]);
      expect(buckets[buckets.length - 1][1]).to.equal(count);
      expect(count).to.be.above(0);
    });
  });

  describe('bad input is answered 4xx with the JSON error shape', () => {
    it('bad keys: empty, too long, a control character, bad percent-encoding', async () => {
      const p = port(followerOf());
      expectError(await request(p, 'GET', '/kv/'), 400, 'BadKey');
      expectError(await request(p, 'PUT', `/kv/${'k'.repeat(257)}`, 'v'), 400, 'BadKey');
      expectError(await request(p, 'PUT', `/kv/${encodeURIComponent('é'.repeat(129))}`, 'v'), 400, 'BadKey');
      expectError(await request(p, 'GET', '/kv/a%01b'), 400, 'BadKey');
      expectError(await request(p, 'DELETE', '/kv/tab%09'), 400, 'BadKey');
      expectError(await request(p, 'GET', '/kv/%E0%A4%A'), 400, 'BadKey');
      expectError(await request(p, 'POST', '/cas/%ZZ', JSON.stringify({ from: null, to: 'x' })), 400, 'BadKey');
      expectError(await request(p, 'GET', '/kv/%FF'), 400, 'BadKey');
    });

    it('bad JSON and wrong JSON shapes', async () => {
      const p = port(leader);
      expectError(await request(p, 'POST', '/cas/k', '{"from": '), 400, 'BadJson');
      expectError(await request(p, 'POST', '/cas/k', ''), 400, 'BadJson');
      expectError(await request(p, 'POST', '/cas/k', '[1,2]'), 400, 'BadJson');
      expectError(await request(p, 'POST', '/cas/k', 'null'), 400, 'BadJson');
      expectError(await request(p, 'POST', '/cas/k', JSON.stringify({ to: 'x' })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/cas/k', JSON.stringify({ from: 1, to: 'x' })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/cas/k', JSON.stringify({ from: null, to: 7 })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/cas/k', JSON.stringify({ from: null, to: 'x', extra: true })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/admin/members', JSON.stringify({ add: 4 })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/admin/init', JSON.stringify({ members: ['1'] })), 400, 'BadRequest');
      expectError(await request(p, 'PUT', '/kv/k', Buffer.from([0x61, 0xff, 0xfe])), 400, 'BadValue');
      expectError(await request(p, 'GET', '/kv/k?stale=maybe'), 400, 'BadRequest');
      expectError(await request(p, 'GET', '/kv/k?consistency=lease'), 400, 'BadRequest');
      expectError(await request(p, 'GET', '/status?x=1'), 400, 'BadRequest');
      // Nothing refused was written.
      expectError(await request(p, 'GET', '/kv/k'), 404, 'NotFound');
    });

    it('a body over the limit is 413 (announced or streamed), and the server stays healthy', async () => {
      const p = port(followerOf());
      const announced = await request(p, 'PUT', '/kv/big', Buffer.alloc(MAX_BODY + 1, 0x61));
      expectError(announced, 413, 'PayloadTooLarge');
      expect(announced.json.limit).to.equal(MAX_BODY);
      // Chunked, no Content-Length: refused once the count passes the limit.
      const streamed = await request(p, 'POST', '/cas/big', Buffer.alloc(16 * MAX_BODY, 0x62), { 'transfer-encoding': 'chunked' });
      expectError(streamed, 413, 'PayloadTooLarge');
      const exact = await request(p, 'PUT', '/kv/big', Buffer.alloc(MAX_BODY, 0x63));
      expect(exact.status, exact.text).to.equal(200);
      expect((await request(p, 'GET', '/status')).status).to.equal(200);
      expect((await request(p, 'GET', '/kv/big')).json.value).to.equal('c'.repeat(MAX_BODY));
    });

    it('an unknown route is 404 and a wrong method 405 with Allow', async () => {
      const p = port(leader);
      expectError(await request(p, 'GET', '/nope'), 404, 'UnknownRoute');
      expectError(await request(p, 'GET', '/kv'), 404, 'UnknownRoute');
      expectError(await request(p, 'GET', '/'), 404, 'UnknownRoute');
      const post = await request(p, 'POST', '/kv/a', 'x');
      expectError(post, 405, 'MethodNotAllowed');
      expect(post.headers.allow).to.equal('GET, PUT, DELETE');
      expectError(await request(p, 'GET', '/cas/a'), 405, 'MethodNotAllowed');
      expectError(await request(p, 'DELETE', '/status'), 405, 'MethodNotAllowed');
      expectError(await request(p, 'GET', '/admin/init'), 405, 'MethodNotAllowed');
      expectError(await request(p, 'PUT', '/metrics', 'x'), 405, 'MethodNotAllowed');
    });

    it('a malformed HTTP request is 400 and does not disturb the server', async () => {
      const p = port(leader);
      const answer = await new Promise<string>((resolve, reject) => {
        const s = net.connect(p, '127.0.0.1', () => s.write('THIS IS NOT HTTP\r\n\r\n'));
        let got = '';
        s.setEncoding('utf8');
        s.on('data', (c: string) => { got += c; });
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
      expect(answer).to.match(/^HTTP\/1\.1 400 /);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).to.include({ status: 400, error: 'BadRequest' });
      expect((await request(p, 'GET', '/status')).status).to.equal(200);
    });
  });

  describe('admin', () => {
    it('refuses misuse: init of a formed node (409), unknown ids, empty lists, a non-leader', async () => {
      await refreshLeader();
      const p = port(leader);
      expectError(await request(p, 'POST', '/admin/init', JSON.stringify({ members: [1, 2, 3] })), 409, 'NotAllowed');
      expectError(await request(p, 'POST', '/admin/init', JSON.stringify({ members: [] })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/admin/init', JSON.stringify({ members: [1, 2, 9] })), 400, 'UnknownNode');
      expectError(await request(p, 'POST', '/admin/init', JSON.stringify({ members: [1, 1] })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/admin/members', JSON.stringify({ add: [9] })), 400, 'UnknownNode');
      expectError(await request(p, 'POST', '/admin/members', JSON.stringify({})), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/admin/members', JSON.stringify({ add: [], remove: [] })), 400, 'BadRequest');
      expectError(await request(p, 'POST', '/admin/members', JSON.stringify({ add: [0] })), 400, 'BadRequest');
      const onFollower = await request(port(followerOf()), 'POST', '/admin/members', JSON.stringify({ add: [4] }));
      expectError(onFollower, 503, 'NodeNotLeader');
      expect(onFollower.json.leaderId).to.equal(leader);
    });

    it('adds a fourth node, then removes one, through /admin/members', async () => {
      await refreshLeader();
      const add = await request(port(leader), 'POST', '/admin/members', JSON.stringify({ add: [4] }));
      expect(add.status, add.text).to.equal(200);
      expect(add.json.index).to.be.a('number');
      expect(add.json.membership.members).to.have.members([1, 2, 3, 4]);
      // Node 4 caught up and serves reads (forwarded to the leader, answered from its replica).
      const r = await request(port(4), 'GET', '/kv/greeting');
      expect(r.json).to.deep.equal({ key: 'greeting', value: 'hello, world' });

      await refreshLeader([1, 2, 3, 4]);
      const gone = followerOf();
      const remove = await request(port(leader), 'POST', '/admin/members', JSON.stringify({ remove: [gone] }));
      expect(remove.status, remove.text).to.equal(200);
      const rest = [1, 2, 3, 4].filter((id) => id !== gone);
      expect(remove.json.membership.members).to.have.members(rest);
      const again = await request(port(leader), 'POST', '/admin/members', JSON.stringify({ remove: [gone] }));
      expectError(again, 409, 'Noop');
      await eventually('node 4 seeing the shrunk config', async () => {
        const s = await request(port(4), 'GET', '/status');
        return s.json.membership.members.length === 3 && !s.json.membership.members.includes(gone);
      });
      const put = await request(port(4), 'PUT', '/kv/after-change', 'ok');
      expect(put.status, put.text).to.equal(200);
    });
  });
});

describe('KV service: library errors as HTTP answers', () => {
  it('an UnreachableError whose request never left is a 503 with outcome not-applied; one that may have arrived is unknown', () => {
    const notSent = libraryError(new UnreachableError(2, 'connection refused', { notSent: true }), 'write', 10_000);
    expect(notSent.status).to.equal(503);
    expect(notSent.error).to.equal('Unavailable');
    expect(notSent.extra).to.include({ outcome: 'not-applied', cause: 'Unreachable' });
    expect(notSent.message).to.match(/nothing was applied, retry$/);
    const maybe = libraryError(new UnreachableError(2, 'connection closed: reset'), 'write', 10_000);
    expect(maybe.status).to.equal(503);
    expect(maybe.extra).to.include({ outcome: 'unknown', cause: 'Unreachable' });
    expect(maybe.message).to.match(/may or may not have been applied$/);
    const read = libraryError(new UnreachableError(2, 'connection refused', { notSent: true }), 'read', 10_000);
    expect(read.extra).to.not.have.property('outcome');
  });
});
