/**
 * The runtime's typed errors, and the registry that rebuilds typed errors after they crossed a
 * thread (a structured clone keeps an error's message but loses its class and fields).
 */

/** Base of the runtime's errors: `code` is stable and is the key `reviveError` looks up. */
export abstract class RuntimeError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The actor is not there: stopped, crashed, never spawned, or its thread died.
 * @example try { await ref.ask(msg) } catch (e) { if (e instanceof ActorGoneError) retryElsewhere(e.actorId) }
 */
export class ActorGoneError extends RuntimeError {
  readonly code = 'ActorGone';
  constructor(
    readonly actorId: string,
    readonly reason: string,
  ) {
    super(`actor ${actorId} is gone: ${reason}`);
  }
}

/**
 * No reply came within `timeoutMs`. The message may still have been handled.
 * @example await ref.ask(msg, 500).catch((e) => { if (e instanceof AskTimeoutError) metrics.timeouts++ })
 */
export class AskTimeoutError extends RuntimeError {
  readonly code = 'AskTimeout';
  constructor(
    readonly actorId: string,
    readonly timeoutMs: number,
  ) {
    super(`ask to ${actorId} timed out after ${timeoutMs} ms`);
  }
}

/**
 * A spawn or arbiter request that cannot be placed: unknown arbiter, a factory spec on a worker,
 * a module that does not export a builder.
 * @example await system.spawn('a', { factory }, onArbiter('w1')) // rejects with PlacementError
 */
export class PlacementError extends RuntimeError {
  readonly code = 'Placement';
  constructor(readonly reason: string) {
    super(`placement failed: ${reason}`);
  }
}

/**
 * An id is already taken by a live (or spawning) actor.
 * @example await system.spawn('n1/raft', spec, LOCAL); await system.spawn('n1/raft', spec, LOCAL) // rejects
 */
export class ActorExistsError extends RuntimeError {
  readonly code = 'ActorExists';
  constructor(readonly actorId: string) {
    super(`an actor with id ${actorId} already exists`);
  }
}

/**
 * Reported to crash listeners when an actor died without throwing itself, e.g. because the
 * worker thread hosting it exited. `cause` holds what killed the thread when known.
 * @example system.onCrash((id, err) => { if (err instanceof ActorCrashedError) log.warn(err.reason) })
 */
export class ActorCrashedError extends RuntimeError {
  readonly code = 'ActorCrashed';
  constructor(
    readonly actorId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`actor ${actorId} crashed: ${reason}`, options);
  }
}

/** An error reduced to data that survives a structured clone. */
export interface SerializedError {
  readonly name: string;
  readonly code?: string;
  readonly message: string;
  readonly stack?: string;
  /** Own enumerable properties (other than name, message and stack), made cloneable. */
  readonly props: Record<string, unknown>;
  readonly cause?: SerializedError;
}

/** Builds an error of a registered class from its serialized own properties. */
export type ErrorFactory = (props: Record<string, unknown>) => Error;

const registry = new Map<string, ErrorFactory>();

/**
 * Teaches `reviveError` to rebuild errors whose `code` is `code`. Register in the module that
 * defines the class, so every thread that loads the class can revive it.
 * @example registerErrorClass('ForwardToLeader', (p) => new ForwardToLeaderError(p.leaderId as NodeId | null));
 */
export function registerErrorClass(code: string, factory: ErrorFactory): void {
  registry.set(code, factory);
}

const RESERVED = new Set(['name', 'message', 'stack']);
const MAX_CAUSE_DEPTH = 4;

/** A value that a structured clone accepts as is, or its string form. */
function cloneable(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? String(value) : value;
  }
  try {
    structuredClone(value);
    return value;
  } catch {
    return String(value);
  }
}

/**
 * Reduces any thrown value to a plain, cloneable object (see SerializedError).
 * @example port.postMessage(serializeError(new ActorGoneError('a', 'stopped')));
 */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (!(err instanceof Error)) {
    return { name: 'Error', message: `non-error thrown: ${String(err)}`, props: {} };
  }
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(err)) {
    if (!RESERVED.has(key)) props[key] = cloneable((err as unknown as Record<string, unknown>)[key]);
  }
  const code = typeof props.code === 'string' ? props.code : undefined;
  const cause = 'cause' in err && depth < MAX_CAUSE_DEPTH && err.cause !== undefined ? serializeError(err.cause, depth + 1) : undefined;
  return { name: err.name, code, message: err.message, stack: err.stack, props, cause };
}

/**
 * Rebuilds an error: an instance of the registered class when `code` is registered, else a plain
 * Error carrying the same name, message and properties. The remote stack is kept.
 * @example const err = reviveError(serialized); if (err instanceof ActorGoneError) ...
 */
export function reviveError(obj: SerializedError): Error {
  const factory = obj.code === undefined ? undefined : registry.get(obj.code);
  let err: Error;
  if (factory) {
    err = factory(obj.props);
  } else {
    err = new Error(obj.message);
    Object.assign(err, obj.props);
    err.name = obj.name;
  }
  if (obj.stack !== undefined) err.stack = obj.stack;
  if (obj.cause !== undefined) {
    Object.defineProperty(err, 'cause', { value: reviveError(obj.cause), writable: true, configurable: true, enumerable: false });
  }
  return err;
}

registerErrorClass('ActorGone', (p) => new ActorGoneError(String(p.actorId), String(p.reason)));
registerErrorClass('AskTimeout', (p) => new AskTimeoutError(String(p.actorId), Number(p.timeoutMs)));
registerErrorClass('Placement', (p) => new PlacementError(String(p.reason)));
registerErrorClass('ActorExists', (p) => new ActorExistsError(String(p.actorId)));
registerErrorClass('ActorCrashed', (p) => new ActorCrashedError(String(p.actorId), String(p.reason)));
