/**
 * The simulator's command line:
 *
 *   npm run sim -- --seeds 1..200 --nodes 5            a campaign: progress on stderr, JSON summary on stdout
 *   npm run sim -- --seed 17 --nodes 5 --trace t.txt   replay one seed, writing its full trace
 *
 * Options: --seeds a..b | a,b,c; --seed n; --nodes n (5); --members n (initial members; default
 * all nodes, or nodes - seed % 3 with the membership fault); --chaos-ms (4000); --heal-ms (10000);
 * --clients (4); --keys (3); --faults kind,kind (all: packets, partition, one-way, partial,
 * isolate, clog, crash, torn-write, slow-disk, membership, snapshot, cut-link, transfer, elect-now,
 * heartbeat-now); --snapshot-every n (40: a snapshot every n applied entries; 0 off);
 * --sessions on|off (client sessions; default on for odd seeds);
 * --read-levels command,linearizable,lease,log (all by default); --clock-drift d (each node's
 * clock runs at a rate in [1-d, 1+d]; 0); --jobs n (1; worker threads); --out file (also
 * write the summary there); --trace file (single seed only); --quiet (no progress).
 *
 * Exit status: 0 all runs passed; 1 a violation was found; 2 bad arguments; 3 no violation, but
 * some history could not be decided within the checker's budget (not a pass).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FAULT_KINDS, runChaos, type ChaosOptions, type FaultKind, type RunReport } from './chaos';
import { READ_LEVELS, type ReadLevel } from './workload';
import { runCampaign, seedRange, summarize } from './campaign';
import { Simulation } from './simulation';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run sim -- --seeds 1..200 [--nodes 5] [--members 3] [--chaos-ms 4000] [--heal-ms 10000] [--clients 4] [--keys 3] [--faults ${FAULT_KINDS.join(',')}] [--snapshot-every 40] [--sessions on|off] [--read-levels ${READ_LEVELS.join(',')}] [--clock-drift 0] [--jobs 1] [--out summary.json] [--quiet]\n       npm run sim -- --seed 17 [--nodes 5] [--trace trace.txt]\n`);
  process.exit(2);
}

function int(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

export function parseSeeds(spec: string): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(spec);
  if (range) return seedRange(Number(range[1]), Number(range[2]));
  const list = spec.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new RangeError(`--seeds takes a..b or a comma list of non-negative integers, got '${spec}'`);
  return list;
}

/** A text progress bar: redrawn in place on a terminal, one line per 10% otherwise (CI logs). */
function progress(quiet: boolean): (r: RunReport, done: number, total: number) => void {
  const started = Date.now();
  let failed = 0;
  let lastDecile = -1;
  const changes = { proposed: 0, committed: 0, aborted: 0 };
  const snaps = { created: 0, installs: 0 };
  return (r, done, total) => {
    if (r.violation !== null) failed++;
    changes.proposed += r.membership.proposed;
    changes.committed += r.membership.committed;
    changes.aborted += r.membership.aborted;
    snaps.created += r.snapshots.created;
    snaps.installs += r.snapshots.installs;
    if (quiet) return;
    const width = 30;
    const filled = Math.round((done / total) * width);
    const elapsed = (Date.now() - started) / 1000;
    const eta = done === 0 ? 0 : (elapsed / done) * (total - done);
    const membership = changes.proposed === 0 ? '' : `, config changes ${changes.committed} committed/${changes.aborted} aborted/${changes.proposed} proposed`;
    const snapshots = snaps.created === 0 ? '' : `, snapshots ${snaps.created} taken/${snaps.installs} installed`;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} seeds, ${failed} failed${membership}${snapshots}, ${elapsed.toFixed(0)}s elapsed, eta ${eta.toFixed(0)}s`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${done === total ? '\n' : ''}`);
    else if (Math.floor((done / total) * 10) !== lastDecile || done === total) {
      lastDecile = Math.floor((done / total) * 10);
      process.stderr.write(`${line}\n`);
    }
    if (r.violation !== null) process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}seed ${r.seed}: ${r.violation.kind}: ${r.violation.message}\n  replay: ${r.replay}\n`);
  };
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        seeds: { type: 'string' }, seed: { type: 'string' }, nodes: { type: 'string' }, members: { type: 'string' }, 'chaos-ms': { type: 'string' },
        'heal-ms': { type: 'string' }, clients: { type: 'string' }, keys: { type: 'string' }, faults: { type: 'string' },
        'snapshot-every': { type: 'string' }, sessions: { type: 'string' }, 'read-levels': { type: 'string' }, 'clock-drift': { type: 'string' }, jobs: { type: 'string' }, out: { type: 'string' }, trace: { type: 'string' }, quiet: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  if ((args.seeds === undefined) === (args.seed === undefined)) usage('give either --seeds (a campaign) or --seed (one run)');
  if (args.trace !== undefined && args.seed === undefined) usage('--trace needs --seed: it writes one run\'s trace');
  let faults: FaultKind[] | undefined;
  if (args.faults !== undefined) {
    faults = args.faults.split(',').map((s) => s.trim()).filter((s) => s.length > 0) as FaultKind[];
    const bad = faults.find((k) => !(FAULT_KINDS as readonly string[]).includes(k));
    if (bad !== undefined) usage(`unknown fault kind '${bad}' (known: ${FAULT_KINDS.join(', ')})`);
  }
  let readLevels: ReadLevel[] | undefined;
  if (args['read-levels'] !== undefined) {
    readLevels = args['read-levels'].split(',').map((s) => s.trim()).filter((s) => s.length > 0) as ReadLevel[];
    const bad = readLevels.find((k) => !(READ_LEVELS as readonly string[]).includes(k));
    if (bad !== undefined || readLevels.length === 0) usage(`unknown read level '${bad ?? ''}' (known: ${READ_LEVELS.join(', ')})`);
  }
  if (args.sessions !== undefined && args.sessions !== 'on' && args.sessions !== 'off') usage(`--sessions takes on or off, got '${args.sessions}'`);
  const sessions = args.sessions === undefined ? undefined : args.sessions === 'on';
  let clockDrift: number | undefined;
  if (args['clock-drift'] !== undefined) {
    clockDrift = Number(args['clock-drift']);
    if (!(clockDrift >= 0 && clockDrift < 1)) usage(`--clock-drift must be a number in [0, 1), got '${args['clock-drift']}'`);
  }
  const nodes = int(args.nodes, 'nodes', 1);
  if (nodes !== undefined && nodes > 15) usage('--nodes must be at most 15');
  const members = int(args.members, 'members', 1);
  if (members !== undefined && members > (nodes ?? 5)) usage(`--members must be at most --nodes (${nodes ?? 5})`);
  const base: Omit<ChaosOptions, 'seed'> = {
    nodes, members, chaosMs: int(args['chaos-ms'], 'chaos-ms', 0), healMs: int(args['heal-ms'], 'heal-ms', 1),
    clients: int(args.clients, 'clients', 1), keys: int(args.keys, 'keys', 1), faults,
    snapshotEvery: int(args['snapshot-every'], 'snapshot-every', 0), sessions, readLevels, clockDrift,
  };
  const quiet = args.quiet ?? false;
  let summary;
  if (args.seed !== undefined) {
    const seed = int(args.seed, 'seed', 0)!;
    let trace: readonly string[] = [];
    const report = await runChaos({ ...base, seed, keepTrace: args.trace !== undefined, onSimulation: (sim: Simulation) => { if (args.trace !== undefined) trace = sim.traceLines(); } });
    if (args.trace !== undefined) {
      writeFileSync(args.trace, `${trace.join('\n')}\n`);
      if (!quiet) process.stderr.write(`trace of seed ${seed}: ${trace.length} lines, sha256 ${report.traceHash}, written to ${args.trace}\n`);
    }
    progress(quiet)(report, 1, 1);
    summary = { ...summarize([report], report.wallMs), report };
  } else {
    let seeds: number[];
    try { seeds = parseSeeds(args.seeds!); } catch (e) { usage((e as Error).message); }
    summary = await runCampaign({ ...base, seeds, jobs: int(args.jobs, 'jobs', 1), onRun: progress(quiet) });
  }
  const json = JSON.stringify(summary, null, 2);
  process.stdout.write(`${json}\n`);
  if (args.out !== undefined) writeFileSync(args.out, `${json}\n`);
  if (summary.failed > 0) return 1;
  return summary.undecided > 0 ? 3 : 0;
}

if (require.main === module) {
  main().then((code) => { process.exitCode = code; }, (err: Error) => {
    process.stderr.write(`simulator error: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  });
}
