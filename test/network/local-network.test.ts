/**
 * LocalNetwork's fault table (network/local-network.ts): registration, isolate/restore, one-way
 * link drops, healAll, the MAX_LOCAL_NODES bound and unknown nodes. The endpoint actor is not
 * exercised here (it needs the runtime); only the class that tests drive.
 */
import { expect } from 'chai';
import type { NodeId } from '../../actors/raft/core/types';
import { LocalNetwork, MAX_LOCAL_NODES } from '../../network/local-network';

const id = (n: number): NodeId => n as NodeId;

/** Every ordered pair (a -> b, a !== b) among `nodes` whose link is down, as "a>b" strings. */
function downLinks(net: LocalNetwork, nodes: readonly number[]): string[] {
  const out: string[] = [];
  for (const a of nodes) for (const b of nodes) if (a !== b && !net.isLinkUp(id(a), id(b))) out.push(`${a}>${b}`);
  return out;
}

function networkOf(...nodes: number[]): LocalNetwork {
  const net = new LocalNetwork();
  for (const n of nodes) net.register(id(n));
  return net;
}

describe('LocalNetwork', () => {
  describe('registration', () => {
    it('links between registered nodes start up, in both directions', () => {
      const net = networkOf(1, 2, 3);
      expect(downLinks(net, [1, 2, 3])).to.deep.equal([]);
    });

    it('a link involving an unregistered node is down', () => {
      const net = networkOf(1, 2);
      expect(net.isLinkUp(id(1), id(9))).to.equal(false);
      expect(net.isLinkUp(id(9), id(1))).to.equal(false);
      expect(net.isLinkUp(id(8), id(9))).to.equal(false);
      expect(new LocalNetwork().isLinkUp(id(1), id(2))).to.equal(false);
    });

    it('a node registered later can talk to every earlier one', () => {
      const net = networkOf(1, 2);
      expect(net.isLinkUp(id(1), id(3))).to.equal(false);
      net.register(id(3));
      expect(downLinks(net, [1, 2, 3])).to.deep.equal([]);
    });

    it('register is idempotent and keeps the node\'s links as they are', () => {
      const net = networkOf(1, 2);
      net.dropLink(id(1), id(2));
      net.register(id(1));
      net.register(id(2));
      expect(downLinks(net, [1, 2])).to.deep.equal(['1>2']);
    });

    it(`routes at most MAX_LOCAL_NODES (${MAX_LOCAL_NODES}) nodes and refuses one more with RangeError`, () => {
      const net = new LocalNetwork();
      for (let n = 1; n <= MAX_LOCAL_NODES; n++) net.register(id(n * 10));
      // Re-registering does not use a slot.
      for (let n = 1; n <= MAX_LOCAL_NODES; n++) net.register(id(n * 10));
      expect(() => net.register(id(7))).to.throw(RangeError, `at most ${MAX_LOCAL_NODES} nodes`);
      // The refused node is not half-registered, and the full table still works end to end.
      expect(net.isLinkUp(id(7), id(10))).to.equal(false);
      expect(() => net.dropLink(id(7), id(10))).to.throw(RangeError);
      const first = 10;
      const last = MAX_LOCAL_NODES * 10;
      expect(net.isLinkUp(id(first), id(last))).to.equal(true);
      net.dropLink(id(last), id(first));
      expect(net.isLinkUp(id(last), id(first))).to.equal(false);
      expect(net.isLinkUp(id(first), id(last))).to.equal(true);
      net.isolate(id(last));
      for (let n = 1; n < MAX_LOCAL_NODES; n++) {
        expect(net.isLinkUp(id(n * 10), id(last))).to.equal(false);
        expect(net.isLinkUp(id(last), id(n * 10))).to.equal(false);
      }
      expect(net.isLinkUp(id(first), id(20))).to.equal(true);
      expect(net.isLinkUp(id(last - 10), id(first))).to.equal(true);
    });

    it('endpointSpec registers the node and hands the endpoint the shared table', () => {
      const net = networkOf(1);
      const spec = net.endpointSpec(id(2));
      expect(net.isLinkUp(id(1), id(2))).to.equal(true);
      expect(spec).to.have.property('export', 'createLocalNetworkEndpoint');
      const { module, args } = spec as { module: string; args: { self: number; sab: SharedArrayBuffer } };
      expect(module).to.match(/local-network\.(ts|js)$/);
      expect(args.self).to.equal(2);
      expect(args.sab).to.equal(net.sab);
      expect(net.sab).to.be.instanceOf(SharedArrayBuffer);
      // Asking twice does not register twice.
      net.endpointSpec(id(2));
      net.dropLink(id(2), id(1));
      expect(downLinks(net, [1, 2])).to.deep.equal(['2>1']);
    });

    it('accepts every valid NodeId: an id beyond 31 bits is either refused or routed as itself', () => {
      // NodeId is any safe integer >= 1 (types.ts MAX_SAFE_ID). The fault table must not silently
      // truncate ids: 2^32 + 1 must not become node 1, and 2^31 must be found once registered.
      for (const big of [2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
        const net = networkOf(1, 2);
        let refused = false;
        try { net.register(id(big)); } catch (e) { expect(e).to.be.instanceOf(RangeError); refused = true; }
        if (refused) continue;
        expect(net.isLinkUp(id(big), id(2)), `${big} -> 2 after registering ${big}`).to.equal(true);
        expect(net.isLinkUp(id(2), id(big)), `2 -> ${big}`).to.equal(true);
        net.dropLink(id(big), id(2));
        expect(net.isLinkUp(id(big), id(2))).to.equal(false);
        expect(net.isLinkUp(id(1), id(2)), `dropping ${big} -> 2 must not touch node 1`).to.equal(true);
        // Registering again is idempotent: it does not use up slots.
        for (let i = 0; i < MAX_LOCAL_NODES; i++) net.register(id(big));
        expect(() => net.register(id(3))).to.not.throw();
      }
    });
  });

  describe('isolate and restore', () => {
    it('isolate cuts every link to and from the node and no other link', () => {
      const net = networkOf(1, 2, 3, 4);
      net.isolate(id(2));
      expect(downLinks(net, [1, 2, 3, 4])).to.deep.equal(['1>2', '2>1', '2>3', '2>4', '3>2', '4>2']);
    });

    it('restore brings back every link to and from the node', () => {
      const net = networkOf(1, 2, 3, 4);
      net.isolate(id(2));
      net.restore(id(2));
      expect(downLinks(net, [1, 2, 3, 4])).to.deep.equal([]);
    });

    it('isolate and restore are idempotent', () => {
      const net = networkOf(1, 2, 3);
      net.isolate(id(1));
      net.isolate(id(1));
      expect(downLinks(net, [1, 2, 3])).to.deep.equal(['1>2', '1>3', '2>1', '3>1']);
      net.restore(id(1));
      net.restore(id(1));
      expect(downLinks(net, [1, 2, 3])).to.deep.equal([]);
    });

    it('two isolated nodes cannot reach each other; restoring one reconnects it to everyone', () => {
      const net = networkOf(1, 2, 3);
      net.isolate(id(1));
      net.isolate(id(2));
      expect(downLinks(net, [1, 2, 3])).to.deep.equal(['1>2', '1>3', '2>1', '2>3', '3>1', '3>2']);
      net.restore(id(1));
      // restore(1) brings back 1<->2 as well: it restores every link of node 1.
      expect(downLinks(net, [1, 2, 3])).to.deep.equal(['2>3', '3>2']);
    });

    it('restore of one node leaves a one-way drop between two others in place', () => {
      const net = networkOf(1, 2, 3);
      net.dropLink(id(2), id(3));
      net.isolate(id(1));
      net.restore(id(1));
      expect(downLinks(net, [1, 2, 3])).to.deep.equal(['2>3']);
    });

    it('a majority/minority partition built from link drops, then healed', () => {
      const net = networkOf(1, 2, 3, 4, 5);
      for (const a of [1, 2]) for (const b of [3, 4, 5]) { net.dropLink(id(a), id(b)); net.dropLink(id(b), id(a)); }
      expect(net.isLinkUp(id(1), id(2))).to.equal(true);
      expect(net.isLinkUp(id(3), id(5))).to.equal(true);
      expect(downLinks(net, [1, 2, 3, 4, 5])).to.have.length(12);
      net.healAll();
      expect(downLinks(net, [1, 2, 3, 4, 5])).to.deep.equal([]);
    });
  });

  describe('one-way links', () => {
    it('dropLink cuts only the given direction', () => {
      const net = networkOf(1, 2, 3);
      net.dropLink(id(1), id(2));
      expect(net.isLinkUp(id(1), id(2))).to.equal(false);
      expect(net.isLinkUp(id(2), id(1))).to.equal(true);
      expect(downLinks(net, [1, 2, 3])).to.deep.equal(['1>2']);
    });

    it('restoreLink brings back only the given direction', () => {
      const net = networkOf(1, 2);
      net.dropLink(id(1), id(2));
      net.dropLink(id(2), id(1));
      net.restoreLink(id(2), id(1));
      expect(downLinks(net, [1, 2])).to.deep.equal(['1>2']);
      net.restoreLink(id(1), id(2));
      expect(downLinks(net, [1, 2])).to.deep.equal([]);
    });

    it('healAll restores every link, whatever cut it, and keeps registrations', () => {
      const net = networkOf(1, 2, 3, 4);
      net.isolate(id(4));
      net.dropLink(id(1), id(2));
      net.dropLink(id(3), id(1));
      expect(downLinks(net, [1, 2, 3, 4])).to.have.length(8);
      net.healAll();
      expect(downLinks(net, [1, 2, 3, 4])).to.deep.equal([]);
      net.dropLink(id(4), id(1));
      expect(downLinks(net, [1, 2, 3, 4])).to.deep.equal(['4>1']);
    });
  });

  describe('unknown nodes', () => {
    it('dropLink and restoreLink with an unregistered node throw RangeError naming the link', () => {
      const net = networkOf(1, 2);
      expect(() => net.dropLink(id(1), id(9))).to.throw(RangeError, 'unknown node in link 1 -> 9');
      expect(() => net.dropLink(id(9), id(1))).to.throw(RangeError, 'unknown node in link 9 -> 1');
      expect(() => net.restoreLink(id(1), id(9))).to.throw(RangeError, 'unknown node in link 1 -> 9');
      expect(downLinks(net, [1, 2])).to.deep.equal([]);
    });

    it('isolate and restore of an unregistered node throw RangeError and change nothing', () => {
      const net = networkOf(1, 2, 3);
      net.dropLink(id(2), id(3));
      expect(() => net.isolate(id(9))).to.throw(RangeError, /unknown node/);
      expect(() => net.restore(id(9))).to.throw(RangeError, /unknown node/);
      expect(downLinks(net, [1, 2, 3])).to.deep.equal(['2>3']);
    });
  });

  describe('shared memory', () => {
    it('two LocalNetworks have independent fault tables', () => {
      const a = networkOf(1, 2);
      const b = networkOf(1, 2);
      a.isolate(id(1));
      expect(downLinks(a, [1, 2])).to.have.length(2);
      expect(downLinks(b, [1, 2])).to.deep.equal([]);
      expect(a.sab).to.not.equal(b.sab);
    });

    it('faults are written into the SharedArrayBuffer, the only thing other threads see', () => {
      const net = networkOf(1, 2);
      const snapshot = (): string => Buffer.from(new Uint8Array(net.sab)).toString('hex');
      const before = snapshot();
      net.dropLink(id(1), id(2));
      expect(snapshot()).to.not.equal(before);
      net.healAll();
      expect(snapshot()).to.equal(before);
      net.register(id(3));
      expect(snapshot(), 'registrations live in the shared table too').to.not.equal(before);
    });
  });
});
