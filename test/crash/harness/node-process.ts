/**
 * The entry of one node process of the crash harness (forked by cluster.ts with
 * `-r ts-node/register/transpile-only` and `serialization: 'advanced'`). It runs an ActorSystem
 * and ONE RaftNode on local placement, with the storage the parent asks for in the node's data
 * dir, the applied-list state machine, and the IPC network (ipc-network.ts). It serves the
 * parent's requests (RPCs from other nodes, client writes, metrics, queries, stop) until the
 * parent stops it, kills it, or goes away (then it exits at once: no orphans).
 */
import { ActorSystem } from '../../../runtime/system';
import type { ActorSpec } from '../../../runtime/actor';
import { serializeError } from '../../../runtime/errors';
import { RaftNode } from '../../../actors/node';
import { fileStorageSpec, FileStorageStats } from '../../../storage/file-storage';
import { raftActorId, UnreachableError, type InboundRpc } from '../../../network/network';
import { AppliedListMachine } from './applied-list';
import { IpcLink, IpcNetworkEndpoint } from './ipc-network';
import type { ChildToParent, ParentToChild, StartArgs } from './protocol';

if (typeof process.send !== 'function') {
  process.stderr.write('node-process.ts must be started with child_process.fork (it needs an IPC channel)\n');
  process.exit(2);
}

function post(m: ChildToParent, then?: () => void): void {
  if (!process.connected) { then?.(); return; }
  // With a callback, a send on a channel that is closing reports to it instead of throwing.
  process.send!(m, undefined, {}, () => then?.());
}

const link = new IpcLink((m) => post(m));
let system: ActorSystem | null = null;
let node: RaftNode | null = null;
let self = 0;
let stopping = false;
let storageStats: FileStorageStats | null = null;

function storageSpec(args: StartArgs): ActorSpec | undefined {
  if (args.storage === 'memory') return undefined; // MemoryStorage: everything is lost with the process
  storageStats = FileStorageStats.create();
  return fileStorageSpec({ dir: args.dir, segmentBytes: args.segmentBytes, stats: storageStats.buffer });
}

async function start(args: StartArgs): Promise<void> {
  self = args.id;
  system = ActorSystem.create({ seed: args.seed });
  node = await RaftNode.start({
    system, id: args.id, placement: 'local', config: args.config,
    network: { factory: () => new IpcNetworkEndpoint(link) },
    stateMachine: { factory: () => new AppliedListMachine() },
    storage: storageSpec(args),
    onFailed: (cause) => post({ t: 'failed', err: serializeError(cause) }),
  });
  if (args.initMembers) await node.initWithConfig(args.initMembers);
}

function answer(reqId: number, p: Promise<unknown>): void {
  p.then(
    (value) => post({ t: 'res', reqId, value }),
    (err: unknown) => post({ t: 'res', reqId, err: serializeError(err) }),
  );
}

async function stop(): Promise<void> {
  stopping = true;
  link.close();
  if (node) await node.stop();
  if (system) await system.shutdown();
}

process.on('message', (raw: unknown) => {
  const m = raw as ParentToChild;
  switch (m.t) {
    case 'start':
      start(m.args).then(
        () => post({ t: 'ready', pid: process.pid }),
        (err: unknown) => post({ t: 'startFailed', err: serializeError(err) }, () => process.exit(1)),
      );
      return;
    case 'rpcIn': {
      if (!system || !node || stopping) {
        post({ t: 'rpcRes', reqId: m.reqId, err: serializeError(new UnreachableError(self, 'node not running')) });
        return;
      }
      const inbound: InboundRpc = { type: 'rpc', bytes: m.bytes };
      system.ref<InboundRpc>(raftActorId(self)).ask<Uint8Array>(inbound, m.timeoutMs).then(
        (bytes) => post({ t: 'rpcRes', reqId: m.reqId, bytes }),
        (err: unknown) => post({ t: 'rpcRes', reqId: m.reqId, err: serializeError(err) }),
      );
      return;
    }
    case 'rpcRes':
      link.answered(m.reqId, m.bytes, m.err);
      return;
    case 'write':
      answer(m.reqId, node ? node.clientWrite(m.payload, { responseMode: 'committed', timeoutMs: m.timeoutMs }) : Promise.reject(new Error('not started')));
      return;
    case 'metrics':
      answer(m.reqId, node ? node.currentMetrics() : Promise.reject(new Error('not started')));
      return;
    case 'query':
      answer(m.reqId, node ? node.query(m.q) : Promise.reject(new Error('not started')));
      return;
    case 'storageStats':
      answer(m.reqId, Promise.resolve(storageStats ? storageStats.read() : null));
      return;
    case 'stop':
      stop().then(
        () => post({ t: 'res', reqId: m.reqId, value: 'stopped' }, () => process.exit(0)),
        (err: unknown) => post({ t: 'res', reqId: m.reqId, err: serializeError(err) }, () => process.exit(1)),
      );
      return;
    default:
      process.stderr.write(`node-process: unknown message ${JSON.stringify(raw)}\n`);
  }
});

// The parent went away (or closed the channel): nothing can reach this node any more.
process.on('disconnect', () => process.exit(0));
