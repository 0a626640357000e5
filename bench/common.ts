/**
 * What the benchmark suites share: the storage kinds they run on, the options every suite takes
 * from bench/run.ts, and the statistic they report (the median of the runs).
 */
import type { Logger } from 'pino';
import type { NodePlacement } from '../actors/node';

export type StorageKind = 'memory' | 'file';

/** The options bench/run.ts hands every suite; `argv` holds the suite's own flags, by name. */
export interface SuiteOptions<Flags extends string> {
  readonly runs: number;
  readonly seconds: number;
  readonly clients: readonly number[];
  readonly placements: readonly NodePlacement[];
  readonly storages: readonly StorageKind[];
  readonly payloadBytes: number;
  /** Where warnings go. */
  readonly logger: Logger;
  readonly argv: { readonly [K in Flags]?: string };
}

/** The median of `xs` (the mean of the middle two for an even count). */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
