/**
 * A compile cache for the node processes. Every (re)start of a node process would otherwise make
 * ts-node transpile the same ~35 files again, which takes 3-12 s per start on a busy 2-core
 * machine and dominates the crash tests' time. The parent transpiles the harness's sources once
 * per test run (`buildTranspileCache`), and each child, preloaded with this module after
 * ts-node (`-r ts-node/register/transpile-only -r transpile-cache.ts`, env CRASH_TS_CACHE), runs
 * a cached file when its source is unchanged and falls back to ts-node for anything else.
 * Same compiler, same tsconfig options as ts-node's transpile-only mode.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../../..');
/** The directories whose modules a node process loads. */
const ROOTS = ['actors', 'runtime', 'storage', 'network', 'test/crash/harness'];
export const CACHE_ENV = 'CRASH_TS_CACHE';

const keyOf = (file: string, src: string): string => createHash('sha256').update(file).update('\0').update(src).digest('hex');

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return tsFiles(p);
    return d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

let built: string | null = null;

/** Transpiles the node processes' sources into a tmp dir (once per process); returns the dir. Removed at exit. */
export function buildTranspileCache(): string {
  if (built) return built;
  // Loaded here, not at the top: the children only read the cache and need no compiler.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const cfg = ts.readConfigFile(path.join(REPO, 'tsconfig.json'), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(cfg.config, ts.sys, REPO);
  const compilerOptions = { ...options, sourceMap: false, inlineSourceMap: true, inlineSources: false, declaration: false, noEmit: false };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'actor-raft-crash-tscache-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const root of ROOTS) {
    for (const file of tsFiles(path.join(REPO, root))) {
      const src = fs.readFileSync(file, 'utf8');
      const out = ts.transpileModule(src, { fileName: file, compilerOptions });
      fs.writeFileSync(path.join(dir, `${keyOf(file, src)}.js`), out.outputText);
    }
  }
  built = dir;
  return dir;
}

type Loader = (module: NodeJS.Module & { _compile(code: string, filename: string): void }, filename: string) => void;

/** In a child: serve .ts modules from the cache, ts-node (already registered) for the rest. */
function installTranspileCache(dir: string): void {
  // eslint-disable-next-line n/no-deprecated-api -- the hook ts-node itself uses
  const exts = require.extensions as unknown as Record<string, Loader>;
  const fallback = exts['.ts'];
  if (typeof fallback !== 'function') throw new Error('transpile-cache.ts must be preloaded after ts-node/register');
  exts['.ts'] = (module, filename) => {
    let js: string;
    try {
      js = fs.readFileSync(path.join(dir, `${keyOf(filename, fs.readFileSync(filename, 'utf8'))}.js`), 'utf8');
    } catch {
      fallback(module, filename);
      return;
    }
    module._compile(js, filename);
  };
}

const cacheDir = process.env[CACHE_ENV];
if (cacheDir && typeof process.send === 'function') installTranspileCache(cacheDir);
