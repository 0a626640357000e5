/**
 * The main demo (`npm start`): a replicated key-value store on Raft nodes in one process, each
 * node's actors on worker threads. It forms a 3-node cluster with InitWithConfig on every node,
 * writes keys from concurrent clients, isolates the leader, watches the new election, writes more,
 * heals the network; then, while clients keep writing, grows the cluster to 5 nodes and shrinks it
 * back to 3 by removing the current leader and the first one (ProposeConfigChange, joint
 * consensus), and checks that every member holds the same data.
 *
 *   npm start                 # narrated run
 *   npm start --silent -- --json   # progress on stderr, only a JSON summary on stdout
 *   npm start -- --keys 5000 --clients 64 --placement local
 */
import { parseArgs } from 'node:util';
import { LocalCluster } from '../../actors/local-cluster';
import { createLogger } from '../../runtime/logging';
import { ForwardToLeaderError } from '../../actors/raft/core/errors';
import type { RaftMetrics } from '../../actors/metrics/metrics';
import type { ConfigChange } from '../../actors/node';
import type { ConfigChangeResult } from '../../actors/raft/raft-actor';
import type { NodeId } from '../../actors/raft/core/types';
import { encodeKv, KV_MODULE, type KvQuery } from './kv-state-machine';

const { values: argv } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    keys: { type: 'string', default: '3000' },
    clients: { type: 'string', default: '32' },
    placement: { type: 'string', default: 'worker' },
  },
});
const totalKeys = positiveInt('keys', argv.keys!);
const clients = positiveInt('clients', argv.clients!);
const placement = argv.placement === 'local' ? 'local' : argv.placement === 'worker' ? 'worker' : fail(`--placement must be worker or local, got ${argv.placement}`);
const out = argv.json ? process.stderr : process.stdout;
const say = (line: string) => out.write(`${line}\n`);

function fail(msg: string): never { process.stderr.write(`${msg}\n`); process.exit(2); }
function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) fail(`--${name} must be an integer in 1..1000000, got ${v}`);
  return n;
}

/** Writes keys [from, to) from `clients` concurrent clients, following the leader as it moves. */
async function writeKeys(cluster: LocalCluster, from: number, to: number, label: string, among: () => readonly number[]): Promise<{ ms: number; redirects: number; retries: number }> {
  let next = from;
  let done = 0;
  let redirects = 0;
  let retries = 0;
  let leader: NodeId = await cluster.waitForLeader({ among: among() });
  const started = Date.now();
  const progress = setInterval(() => say(`  ${label}: ${done}/${to - from} written (${Math.round(done / ((Date.now() - started) / 1000))} writes/s), leader n${leader}`), 500);
  const client = async () => {
    while (next < to) {
      const i = next++;
      const payload = encodeKv({ op: 'put', key: `key-${i}`, value: `value-${i}` });
      for (;;) {
        try {
          await cluster.node(leader).clientWrite(payload, { timeoutMs: 3000 });
          done++;
          break;
        } catch (err) {
          // A put is idempotent, so a retry after an unknown outcome is safe here.
          if (err instanceof ForwardToLeaderError && err.leaderId !== null) { leader = err.leaderId; redirects++; }
          else { retries++; leader = await cluster.waitForLeader({ among: among() }); }
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, client));
  } finally {
    clearInterval(progress);
  }
  const ms = Date.now() - started;
  say(`  ${label}: ${done} writes in ${ms} ms (${Math.round(done / (ms / 1000))} writes/s)`);
  return { ms, redirects, retries };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  say(`starting 3 nodes (${placement} placement) and forming the cluster with InitWithConfig on every node`);
  // Raft's own log lines (pino, JSON on stderr) stay below the narration unless RAFT_LOG_LEVEL asks for them.
  const logger = createLogger({ name: 'kv-demo', level: process.env.RAFT_LOG_LEVEL ? undefined : 'warn' });
  const cluster = await LocalCluster.start({ size: 3, placement, logger, stateMachine: { module: KV_MODULE, export: 'createKv', args: {} } });
  try {
    for (const n of cluster.all()) {
      let was = '';
      n.onMetrics((m) => {
        const now = `${m.state}/${m.currentTerm}`;
        if (now !== was && m.state === 'Leader') say(`  n${m.id} became leader in term ${m.currentTerm}`);
        was = now;
      });
    }
    const firstLeader = await cluster.waitForLeader();
    const firstTerm = cluster.node(firstLeader).metrics()!.currentTerm;
    say(`leader: n${firstLeader}, term ${firstTerm}`);

    const half = Math.ceil(totalKeys * 0.4);
    const isolatedEnd = Math.ceil(totalKeys * 0.6);
    const growEnd = Math.ceil(totalKeys * 0.8);
    say(`writing ${half} keys from ${clients} concurrent clients`);
    const phase1 = await writeKeys(cluster, 0, half, 'phase 1', () => cluster.ids);

    say(`isolating the leader n${firstLeader}`);
    cluster.isolate(firstLeader);
    const others = cluster.ids.filter((id) => id !== firstLeader);
    const electionStarted = Date.now();
    const secondLeader = await cluster.waitForLeader({ among: others, notIn: [firstLeader] });
    const electionMs = Date.now() - electionStarted;
    const secondTerm = cluster.node(secondLeader).metrics()!.currentTerm;
    say(`new leader: n${secondLeader}, term ${secondTerm} (elected ${electionMs} ms after the isolation)`);

    say(`writing ${isolatedEnd - half} more keys while n${firstLeader} is cut off`);
    const phase2 = await writeKeys(cluster, half, isolatedEnd, 'phase 2', () => others);

    say(`healing the network: n${firstLeader} rejoins`);
    cluster.restore(firstLeader);
    await cluster.waitForLeader();
    const target = (await cluster.node(secondLeader).currentMetrics()).commitIndex;
    await cluster.waitForApplied(target);
    const rejoined = await cluster.node(firstLeader).currentMetrics();
    say(`n${firstLeader} is now ${rejoined.state} of n${rejoined.currentLeader} in term ${rejoined.currentTerm}`);

    // Membership changes while clients write (docs/MEMBERSHIP.md). New nodes start pristine and
    // join only through the leader's ProposeConfigChange; they are caught up before they vote.
    const watch = (id: number) => cluster.node(id).onMetrics((m: RaftMetrics) => {
      if (m.configChange && m.state === 'Leader') phases.add(`${m.configChange.phase}`);
    });
    const phases = new Set<string>();
    say('growing to 5 nodes while clients write: starting n4 and n5 (pristine NonVoters)');
    let members: readonly number[] = cluster.ids;
    await Promise.all([cluster.addNode(4), cluster.addNode(5)]);
    for (const id of cluster.ids) watch(id);
    const growStarted = Date.now();
    const [phase3, grown] = await Promise.all([
      writeKeys(cluster, isolatedEnd, growEnd, 'phase 3', () => members),
      proposeOnLeader(cluster, { add: [4, 5] }),
    ]);
    const growMs = Date.now() - growStarted;
    members = grown.membership.members;
    say(`  members now ${JSON.stringify(grown.membership.members)} (final config committed at index ${grown.index}, ${growMs} ms)`);

    const leaderNow = await cluster.waitForLeader({ among: members });
    const removed = [...new Set([leaderNow, firstLeader])];
    if (removed.length < 2) removed.push(members.find((id) => !removed.includes(id as NodeId)) as NodeId);
    members = cluster.ids.filter((id) => !removed.includes(id));
    say(`shrinking to 3 while clients write: removing ${removed.map((id) => `n${id}`).join(' and ')} (n${leaderNow} is the leader: it leads until the final config commits, then steps down)`);
    const shrinkStarted = Date.now();
    const [phase4, shrunk] = await Promise.all([
      writeKeys(cluster, growEnd, totalKeys, 'phase 4', () => members),
      proposeOnLeader(cluster, { remove: removed }),
    ]);
    const shrinkMs = Date.now() - shrinkStarted;
    const finalLeader = await cluster.waitForLeader({ among: members });
    const removedStates = await Promise.all(removed.map(async (id) => (await cluster.node(id).waitForMetrics((m) => m.state === 'NonVoter', { timeoutMs: 10_000 })).state));
    say(`  members now ${JSON.stringify(shrunk.membership.members)}, leader n${finalLeader}; removed nodes are ${removedStates.join(', ')} and may be shut down`);
    say(`  leader phases seen: ${[...phases].join(' -> ')}`);
    await cluster.waitForApplied((await cluster.node(finalLeader).currentMetrics()).commitIndex, { among: members });

    // Phase 5: hand leadership to another member (TimeoutNow) and read back through the new leader
    // at each consistency level: read-index (a quorum round), lease (none while it holds), the log.
    const transferTo = members.find((id) => id !== finalLeader)!;
    const transferStarted = Date.now();
    const { leader: newLeader } = await cluster.node(finalLeader).transferLeadership(transferTo);
    const transferMs = Date.now() - transferStarted;
    const lastKey = `key-${totalKeys - 1}`;
    const reads = {
      linearizable: await cluster.node(newLeader).clientRead<string | null>({ q: 'get', key: lastKey } satisfies KvQuery),
      lease: await cluster.node(newLeader).clientRead<string | null>({ q: 'get', key: lastKey } satisfies KvQuery, { consistency: 'lease' }),
      log: await cluster.node(newLeader).clientRead<string | null>({ q: 'get', key: lastKey } satisfies KvQuery, { consistency: 'log' }),
    };
    const readsOk = Object.values(reads).every((v) => v !== null && v === reads.linearizable);
    say(`phase 5: leadership moved n${finalLeader} -> n${newLeader} in ${transferMs} ms; ${lastKey} read back ${readsOk ? 'the same' : 'DIFFERENTLY'} at linearizable, lease and log consistency`);
    await cluster.waitForApplied((await cluster.node(newLeader).currentMetrics()).commitIndex, { among: members });

    const digests = await Promise.all(members.map((id) => cluster.node(id).query<{ appliedIndex: number; keys: number; sha256: string }>({ q: 'digest' } satisfies KvQuery)));
    const same = digests.every((d) => d.sha256 === digests[0].sha256 && d.keys === digests[0].keys);
    const complete = digests.every((d) => d.keys === totalKeys);
    for (const [i, d] of digests.entries()) say(`  n${members[i]}: ${d.keys} keys, applied through ${d.appliedIndex}, sha256 ${d.sha256.slice(0, 16)}…`);
    const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
    const summary = {
      ok: same && complete && readsOk && newLeader === transferTo && removedStates.every((st) => st === 'NonVoter'),
      placement, nodes: 3, clients, keys: totalKeys,
      firstLeader, firstTerm, secondLeader, secondTerm, electionAfterIsolationMs: electionMs,
      phase1: { writes: half, ms: phase1.ms, writesPerSec: rate(half, phase1.ms), redirects: phase1.redirects, retries: phase1.retries },
      phase2: { writes: isolatedEnd - half, ms: phase2.ms, writesPerSec: rate(isolatedEnd - half, phase2.ms), redirects: phase2.redirects, retries: phase2.retries },
      grow: { added: [4, 5], membership: grown.membership, configIndex: grown.index, ms: growMs, writes: growEnd - isolatedEnd, writesPerSec: rate(growEnd - isolatedEnd, phase3.ms), retries: phase3.retries },
      shrink: { removed, membership: shrunk.membership, configIndex: shrunk.index, ms: shrinkMs, writes: totalKeys - growEnd, writesPerSec: rate(totalKeys - growEnd, phase4.ms), retries: phase4.retries + phase4.redirects, finalLeader },
      transfer: { from: finalLeader, to: newLeader, ms: transferMs }, readsAgree: readsOk,
      replicas: digests.map((d, i) => ({ id: members[i], ...d })),
      replicasIdentical: same, allKeysPresent: complete, totalMs: Date.now() - t0,
    };
    say(summary.ok ? `OK: all ${members.length} members hold the same ${totalKeys} keys` : 'FAILED: replicas differ, keys are missing, reads disagree, the transfer went elsewhere, or a removed node did not step aside');
    if (argv.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    process.exitCode = summary.ok ? 0 : 1;
  } finally {
    await cluster.shutdown();
  }
}

/** Proposes a config change on whichever node leads, following redirects. */
async function proposeOnLeader(cluster: LocalCluster, change: ConfigChange): Promise<ConfigChangeResult> {
  for (let attempt = 0; ; attempt++) {
    const leader = await cluster.waitForLeader({ among: cluster.ids.filter((id) => { const m = cluster.node(id).metrics(); return m !== null && m.state !== 'NonVoter'; }) });
    try {
      return await cluster.node(leader).proposeConfigChange(change);
    } catch (err) {
      if (attempt >= 5 || !['NodeNotLeader', 'ConfigChangeAborted'].includes((err as { code?: string }).code ?? '')) throw err;
    }
  }
}

main().catch((err) => { process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`); process.exit(1); });
