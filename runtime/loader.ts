/**
 * Builds an actor from its spec on the thread that will run it.
 */
import * as path from 'node:path';
import type { Actor, ActorContext, ActorSpec } from './actor';
import { PlacementError } from './errors';

/** A spec that can cross threads: a module path, an export name, cloneable args. */
export type ModuleSpec<A = unknown> = Extract<ActorSpec<A>, { module: string }>;

export function isModuleSpec(spec: ActorSpec): spec is ModuleSpec {
  return typeof (spec as ModuleSpec).module === 'string';
}

/**
 * Checks a module spec before it is sent anywhere. Relative paths are refused: on a worker they
 * would resolve against the runtime's own folder, not the caller's.
 */
export function validateModuleSpec(spec: ModuleSpec): void {
  if (spec.module.startsWith('.')) {
    throw new PlacementError(`module '${spec.module}' is relative; pass an absolute path (path.join(__dirname, ...) or require.resolve)`);
  }
  if (typeof spec.export !== 'string' || spec.export.length === 0) throw new PlacementError(`module '${spec.module}': export name missing`);
  try {
    structuredClone(spec.args);
  } catch (e) {
    throw new PlacementError(`module '${spec.module}': args cannot cross a thread (${(e as Error).message})`);
  }
}

/**
 * Builds the actor: `factory(ctx)`, or `require(module)[export](args, ctx)`. The builder may
 * return a promise of the actor.
 * @example const actor = await buildActor({ module: '/abs/counter.ts', export: 'counter', args: { start: 0 } }, ctx);
 */
export async function buildActor(spec: ActorSpec, ctx: ActorContext): Promise<Actor<unknown>> {
  let actor: unknown;
  if (isModuleSpec(spec)) {
    const file = path.isAbsolute(spec.module) ? spec.module : require.resolve(spec.module);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(file) as Record<string, unknown>;
    const build = mod[spec.export];
    if (typeof build !== 'function') throw new PlacementError(`module '${spec.module}' has no function export '${spec.export}'`);
    actor = await (build as (args: unknown, ctx: ActorContext) => unknown)(spec.args, ctx);
  } else if (typeof spec.factory === 'function') {
    actor = await spec.factory(ctx);
  } else {
    throw new PlacementError('spec needs either { module, export, args } or { factory }');
  }
  if (actor === null || typeof actor !== 'object' || typeof (actor as Actor<unknown>).receive !== 'function') {
    throw new PlacementError('the builder did not return an actor (an object with a receive method)');
  }
  return actor as Actor<unknown>;
}
