// What each benchmark file (bench/*.bench.ts) exports: a default async function returning rows.
export interface BenchRow {
  /** Benchmark group, e.g. "directory", "decision", "xds". */
  readonly suite: string;
  /** What was measured, e.g. "csv load 1M rows". */
  readonly metric: string;
  /** Median over the runs (report medians: machines here are shared and noisy). */
  readonly value: number;
  readonly unit: string;
  /** The target, in words (e.g. "< 5 s"), when the issue sets one. */
  readonly target?: string;
  /** Whether the median met the target. */
  readonly pass?: boolean;
  /** Extra figures: runs, p99, ratio, ... */
  readonly note?: string;
}

export type Bench = () => Promise<BenchRow[]>;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
