/** Nearest-rank percentile of `values` (0 < p ≤ 100); undefined when empty. Sorts a copy. */
export function percentiles(values: readonly number[], ps: readonly number[]): Array<number | undefined> {
  if (values.length === 0) return ps.map(() => undefined);
  const sorted = Float64Array.from(values).sort();
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);
}
