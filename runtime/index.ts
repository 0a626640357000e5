/**
 * The runtime's public surface: actors and refs, the actor system, supervisors, clocks, random,
 * codecs, logging and the typed errors.
 * @example
 * import { ActorSystem, LOCAL } from './runtime';
 * const system = ActorSystem.create();
 * const echo = await system.spawn<string>('echo', { factory: () => ({ receive: (m) => m }) }, LOCAL);
 * await echo.ask('hi'); // 'hi'
 */
export * from './actor';
export { RealClock, VirtualClock, ScopedClock, type ScopedClockOptions } from './clock';
export { SeededRandom } from './random';
export { createLogger, childLogger, defaultLogLevel, type Logger, type LoggerOptions, type LogLevel } from './logging';
export {
  RuntimeError, ActorGoneError, AskTimeoutError, PlacementError, ActorExistsError, ActorCrashedError,
  registerErrorClass, serializeError, reviveError, type SerializedError, type ErrorFactory,
} from './errors';
export { type Codec, CodecError, jsonCodec } from './codec';
export { type Dispatcher, type Runnable, ImmediateDispatcher, ManualDispatcher, DEFAULT_SLICE_TASKS } from './dispatcher';
export { ActorSystem, MAIN_THREAD, type ActorSystemOptions, type StartArbiterOptions, type CrashListener, type SystemStats } from './system';
export { DEFAULT_ASK_TIMEOUT_MS, type ThreadStats } from './thread';
export { MAX_BATCH_ENVELOPES, type LinkStats } from './transport';
export {
  Supervisor, type SupervisorOptions, type SupervisorState, type SupervisorEvents, type SupervisionPolicy,
  type RestartPolicy, type FailNodePolicy,
} from './supervisor';
