// Piscina loads this in each worker thread: the worker registers ts-node itself (transpile-only:
// tsc type-checks, not every worker) and then serves the TypeScript task module.
'use strict';
require('ts-node').register({ transpileOnly: true });
module.exports = require('./campaign-worker.ts').default;
