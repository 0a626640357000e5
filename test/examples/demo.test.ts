import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

// `npm start` must keep working: run the demo as a user would (a separate process), small and on
// local placement to keep it quick, and check the JSON summary it prints.
describe('examples/kv demo', function () {
  this.timeout(120_000);

  it('forms the cluster, survives the leader\'s isolation and ends with identical replicas', async () => {
    const root = join(__dirname, '../..');
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', 'examples/kv/main.ts', '--json', '--keys', '400', '--clients', '8', '--placement', 'local'],
        { cwd: root, env: { ...process.env, RAFT_LOG_LEVEL: 'silent' }, timeout: 110_000 },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
    });
    const summary = JSON.parse(stdout);
    expect(summary.ok).to.equal(true);
    expect(summary.keys).to.equal(400);
    expect(summary.secondTerm).to.be.greaterThan(summary.firstTerm);
    expect(summary.secondLeader).to.not.equal(summary.firstLeader);
    expect(summary.replicas).to.have.length(3);
    expect(new Set(summary.replicas.map((r: { sha256: string }) => r.sha256)).size).to.equal(1);
    expect(summary.transfer.to).to.not.equal(summary.transfer.from);
    expect(summary.readsAgree).to.equal(true);
    for (const r of summary.replicas) expect(r.keys).to.equal(400);
  });

  it('refuses a bad option with a clear message and exit code 2', async () => {
    const root = join(__dirname, '../..');
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', 'examples/kv/main.ts', '--keys', 'many'],
        { cwd: root, timeout: 60_000 }, (err, _out, errOut) => resolve({ code: err ? (err as { code?: number }).code ?? null : 0, stderr: errOut }));
    });
    expect(result.code).to.equal(2);
    expect(result.stderr).to.match(/--keys must be an integer/);
  });
});
