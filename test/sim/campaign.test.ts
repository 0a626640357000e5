/**
 * The CI campaign (issue 3): 200 seeds of a 5-node cluster under every fault kind (membership changes
 * included: a third of the runs start with 3 members and 2 spares, a third with 4), each run checked
 * for every invariant after every step, for liveness after healing, and for linearizability of its
 * clients' history. Plus the CLI that runs campaigns for people.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FAULT_KINDS } from '../../sim/chaos';
import { runCampaign, seedRange } from '../../sim/campaign';
import { parseSeeds } from '../../sim/cli';

const ROOT = path.join(__dirname, '../..');
const TS_NODE = path.join(ROOT, 'node_modules/.bin/ts-node');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(TS_NODE, ['--transpile-only', path.join(ROOT, 'sim/cli.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('simulation campaign', function () {
  this.timeout(600_000);

  it('200 seeds, 5 nodes, every fault kind: no violation, every history linearizable, every kind injected', async () => {
    let progress = 0;
    const summary = await runCampaign({ seeds: seedRange(1, 200), nodes: 5, onRun: (_r, done) => { progress = done; } });
    expect(summary.violations, JSON.stringify(summary.violations, null, 2)).to.deep.equal([]);
    expect(summary.undecidedSeeds, 'histories the checker could not decide').to.deep.equal([]);
    expect(summary).to.include({ runs: 200, passed: 200, failed: 0, undecided: 0 });
    expect(progress).to.equal(200);
    expect(summary.histories).to.include({ checked: 200, linearizable: 200, illegal: 0, unknown: 0 });
    expect(summary.histories.operations).to.be.above(200 * 20);
    expect(summary.invariantChecks).to.be.above(summary.steps);
    for (const kind of ['partition', 'one-way', 'partial', 'isolate', 'clog', 'crash', 'torn-write', 'slow-disk', 'membership', 'packet-loss', 'packet-duplicate', 'packet-reorder', 'torn-write-crash', 'unsynced-bytes-lost',
      'cut-link', 'transfer', 'elect-now', 'heartbeat-now']) {
      expect(summary.faults[kind] ?? 0, `faults of kind ${kind}`).to.be.above(0);
    }
    // The membership nemesis changed configs in many runs, and never asked for an inoperable one.
    const m = summary.membership;
    expect(m.committed, JSON.stringify(m)).to.be.above(50);
    expect(m.aborted).to.be.above(0);
    expect(m.proposed).to.equal(m.committed + m.aborted + m.refused + m.unknown);
    expect(m.refusals).to.not.have.property('InoperableConfig');
    // Snapshots (on by default: every 40 applied entries, 64-byte chunks) were taken, sent in
    // several chunks, installed and restored, and the nemesis asked for some.
    const snap = summary.snapshots;
    expect(snap.created, JSON.stringify(snap)).to.be.above(200);
    expect(snap.installs).to.be.above(20);
    expect(snap.chunks).to.be.above(snap.installs);
    expect(snap.restores).to.be.above(0);
    expect(snap.now.ok).to.be.above(0);
    expect(summary.faults['snapshot-now'] ?? 0).to.be.above(0);
    // Issue 7: reads at every level went into the checked histories, half the runs used sessions
    // and retried writes with their serial, and the manual triggers did their job at times.
    for (const [level, r] of Object.entries(summary.reads)) expect(r.ok, `${level} reads answered`).to.be.above(200);
    expect(summary.sessions.runs).to.equal(100);
    expect(summary.sessions.retries).to.be.above(0);
    expect(summary.sessions.recovered).to.be.above(0);
    for (const t of ['transfer', 'elect-now', 'heartbeat-now']) expect(summary.triggers[t]?.ok ?? 0, `${t} ok`).to.be.above(0);
  });

  it('on a pool of 2 worker threads (piscina) gives every seed the same report as on one thread', async () => {
    const seeds = seedRange(1, 6);
    const strip = (r: { wallMs: number }) => ({ ...r, wallMs: 0 });
    const pooled = new Map<number, unknown>();
    await runCampaign({ seeds, nodes: 3, jobs: 2, onRun: (r) => { pooled.set(r.seed, strip(r)); } });
    const single = new Map<number, unknown>();
    await runCampaign({ seeds, nodes: 3, jobs: 1, onRun: (r) => { single.set(r.seed, strip(r)); } });
    expect(pooled.size).to.equal(6);
    for (const seed of seeds) expect(pooled.get(seed), `seed ${seed}`).to.deep.equal(single.get(seed));
  });

  describe('CLI', () => {
    it('runs a campaign: JSON summary on stdout, progress on stderr, exit 0', () => {
      const r = cli(['--seeds', '1..3', '--nodes', '3', '--chaos-ms', '1000']);
      expect(r.status, r.stderr).to.equal(0);
      const summary = JSON.parse(r.stdout) as { runs: number; passed: number; violations: unknown[] };
      expect(summary).to.include({ runs: 3, passed: 3 });
      expect(summary.violations).to.deep.equal([]);
      expect(r.stderr).to.match(/\[#+\] 3\/3 seeds, 0 failed/);
      expect(summary).to.have.property('membership');
    });

    it('replays one seed and writes its trace, whose hash matches the report', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sim-trace-'));
      try {
        const file = path.join(dir, 'trace.txt');
        const r = cli(['--seed', '7', '--nodes', '3', '--chaos-ms', '500', '--trace', file, '--out', path.join(dir, 'summary.json')]);
        expect(r.status, r.stderr).to.equal(0);
        const out = JSON.parse(r.stdout) as { report: { traceHash: string; seed: number } };
        expect(out.report.seed).to.equal(7);
        const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
        expect(lines[0]).to.equal('sim seed=7 nodes=3 members=2'); // with the membership fault, seed 7 starts with one spare
        const { createHash } = require('node:crypto') as typeof import('node:crypto');
        const h = createHash('sha256');
        for (const l of lines) h.update(l).update('\n');
        expect(h.digest('hex')).to.equal(out.report.traceHash);
        expect(JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'))).to.deep.equal(out);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('replays one seed without --trace too (it used to fail asking for keepTrace)', () => {
      const r = cli(['--seed', '4', '--nodes', '3', '--chaos-ms', '300', '--quiet']);
      expect(r.status, r.stderr).to.equal(0);
      expect((JSON.parse(r.stdout) as { report: { seed: number } }).report.seed).to.equal(4);
    });

    it('refuses bad arguments with exit status 2 and a usage line', () => {
      // Each case is a ts-node start (~2 s); the rest of the argument checks share one code path.
      for (const args of [['--seeds', '5..1'], ['--seeds', '1..2', '--faults', 'meteor'], ['--bogus']]) {
        const r = cli(args);
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
        expect(r.stderr).to.match(/usage: npm run sim/);
      }
    });

    it('parses seed ranges and lists', () => {
      expect(parseSeeds('3..6')).to.deep.equal([3, 4, 5, 6]);
      expect(parseSeeds('1,5,9')).to.deep.equal([1, 5, 9]);
      expect(() => parseSeeds('a..b')).to.throw(RangeError);
      expect(() => parseSeeds('1,-2')).to.throw(RangeError);
    });

    it('knows every fault kind it documents', () => {
      expect([...FAULT_KINDS]).to.deep.equal(['packets', 'partition', 'one-way', 'partial', 'isolate', 'clog', 'crash', 'torn-write', 'slow-disk', 'membership', 'snapshot',
        'cut-link', 'transfer', 'elect-now', 'heartbeat-now']);
    });
  });
});
