#!/usr/bin/env node
'use strict';
// The actor-raft-kv command: runs examples/kv-service/cli.ts under ts-node, transpile-only (type
// checking is `npm run typecheck`'s job, not every start's), with the repository's tsconfig
// whatever the working directory. Worker threads register ts-node themselves (runtime/arbiter.ts).
const path = require('node:path');

require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', '..', '..', 'tsconfig.json') });

require('../cli.ts').main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`actor-raft-kv: ${(err && err.stack) || String(err)}\n`);
  process.exit(1);
});
