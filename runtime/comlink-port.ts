/**
 * comlink over a node:worker_threads MessagePort, for the control plane only (DESIGN.md: comlink
 * costs 3-4x a raw postMessage, so data messages never use it).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Endpoint } from 'comlink';

// comlink ships its Node adapter as UMD; its typings name DOM listener types that Node lacks.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const adapter = require('comlink/dist/umd/node-adapter') as (port: unknown) => Endpoint;

/**
 * A comlink Endpoint speaking through `port`.
 * @example Comlink.expose(control, nodeEndpoint(port)); const remote = Comlink.wrap<Control>(nodeEndpoint(other));
 */
export function nodeEndpoint(port: MessagePort): Endpoint {
  return adapter(port);
}
