import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// DESIGN.md section 1: the protocol core is pure. It imports nothing from runtime, storage or
// network, no node: module, and reads neither the clock nor Math.random.
describe('architecture: layers', () => {
  const coreDir = join(__dirname, '../../actors/raft/core');
  const files = readdirSync(coreDir).filter((f) => f.endsWith('.ts'));

  it('finds the core files', () => {
    expect(files).to.include.members(['core.ts', 'types.ts', 'io.ts']);
  });

  for (const f of files) {
    it(`actors/raft/core/${f} imports only from inside the core`, () => {
      const src = readFileSync(join(coreDir, f), 'utf8');
      const specifiers = [...src.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
      for (const s of specifiers) expect(s, `${f} imports ${s}`).to.match(/^\.\/[\w.-]+$/);
    });

    it(`actors/raft/core/${f} never reads the clock or Math.random`, () => {
      const code = readFileSync(join(coreDir, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      expect(code).not.to.match(/\bDate\.now\b|\bnew Date\b|\bperformance\.now\b|\bMath\.random\b|\bsetTimeout\b|\bsetInterval\b|\bawait\b/);
    });
  }
});
