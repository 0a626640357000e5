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

/** The value at fraction `p` of `sorted` (ascending), NaN when empty. */
export const percentile = (sorted: Float64Array, p: number): number =>
  (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);

/** `x` rounded to `d` decimals. */
export const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** A latency for a progress line ('-' when nothing was measured). */
export const ms = (x: number): string => (Number.isNaN(x) ? '-' : `${x.toFixed(2)} ms`);

/** `{ median, runs }` of a per-run figure, rounded; a run that measured nothing (NaN or null) counts as null. */
export function stat(xs: readonly (number | null)[], d = 0): { median: number | null; runs: (number | null)[] } {
  const ok = xs.filter((x): x is number => x !== null && !Number.isNaN(x));
  return { median: ok.length === 0 ? null : round(median(ok), d), runs: xs.map((x) => (x === null || Number.isNaN(x) ? null : round(x, d))) };
}
