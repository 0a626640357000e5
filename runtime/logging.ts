/**
 * Structured logging with pino, usable on any thread.
 *
 * Logs go to stderr synchronously through one SonicBoom per thread: no transport (transports
 * spawn threads of their own, which would outlive a test and complicate worker shutdown).
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';
export type LogLevel = LevelWithSilent;

const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

let stderr: pino.DestinationStream | undefined;

/** True when mocha is driving this process (its CLI is argv[1], or its globals are installed). */
function underMocha(): boolean {
  const script = process.argv[1] ?? '';
  return /mocha/i.test(script) || (typeof (globalThis as { it?: unknown }).it === 'function' && typeof (globalThis as { describe?: unknown }).describe === 'function');
}

/**
 * The level a logger gets when none is given: RAFT_LOG_LEVEL when set; otherwise silent under
 * tests (NODE_ENV=test, or mocha), so test output stays readable; otherwise 'info'.
 */
export function defaultLogLevel(): LogLevel {
  const fromEnv = process.env.RAFT_LOG_LEVEL?.trim().toLowerCase();
  if (fromEnv && LEVELS.includes(fromEnv)) return fromEnv as LogLevel;
  if (process.env.NODE_ENV === 'test' || underMocha()) return 'silent';
  return 'info';
}

/** Options for createLogger. */
export interface LoggerOptions {
  /** Overrides the default level (see defaultLogLevel). */
  readonly level?: LogLevel;
  /** Appears as `name` on every line. */
  readonly name?: string;
}

/**
 * A pino logger writing to stderr.
 * @example
 * const log = createLogger({ name: 'kv' });
 * log.info({ nodeId: 1 }, 'node started');
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  stderr ??= pino.destination({ dest: 2, sync: true });
  return pino({ level: options.level ?? defaultLogLevel(), name: options.name }, stderr);
}

/**
 * A logger that adds `bindings` to every line.
 * @example const log = childLogger(root, { actor: 'n1/raft' });
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child(bindings);
}
