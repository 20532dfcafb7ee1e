import { percentiles } from '../dist/metrics/percentiles.js';

export function median(values: readonly number[]): number {
  return percentiles(values, [50])[0] ?? Number.NaN;
}

/** Nanosecond-resolution wall time in milliseconds (benchmarks may read real time; src/ may not). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run with node --expose-gc');
  collect();
  collect();
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : String(n);
