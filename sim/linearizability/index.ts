/**
 * Public API of the linearizability checker.
 *
 * @example
 * import { checkOperations, kvModel, parseKvHistory } from './sim/linearizability';
 * const r = checkOperations(kvModel, parseKvHistory(text, 'h.txt'), { timeoutMs: 10_000 });
 */
export { UNKNOWN, isUnknown, pendingOperation, pairEvents, HistoryFormatError } from './history';
export type { Unknown, Operation, EventType, HistoryEvent } from './history';
export { kvModel, registerModel } from './model';
export type { Model, KvInput, KvOutput, RegisterInput, RegisterOutput, RegisterValue } from './model';
export { checkOperations } from './checker';
export type { Verdict, CheckResult, CheckOptions, PartitionResult } from './checker';
export { parseKvHistory, parseEtcdLog } from './parse';
