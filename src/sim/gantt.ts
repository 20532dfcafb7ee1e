import type { PipelineRun } from '../pipeline/run.js';
import { barsOf, seconds } from './charts.js';

export interface GanttOptions {
  /** Characters for the whole run. Default 60. */
  width?: number;
}

/**
 * The timeline of a run as text: one row per call or tool, `·` while it
 * waited (its turn, a rate limit, a retry) and `█` while it ran, on a shared
 * time axis. The same chart serves `fanout simulate` and `fanout run`.
 */
export function renderGantt(run: PipelineRun, options: GanttOptions = {}): string {
  const width = options.width ?? 60;
  const rows = barsOf(run);
  const span = Math.max(1, run.wallMs);
  const at = (ms: number): number => Math.round((ms / span) * width);
  const labelWidth = Math.min(40, Math.max(8, ...rows.map((r) => r.label.length)));
  const lines = rows.map((row) => {
    const wait = at(row.started) - at(row.submitted);
    const busy = Math.max(row.ended > row.started ? 1 : 0, at(row.ended) - at(row.started));
    const bar = ' '.repeat(at(row.submitted)) + '·'.repeat(Math.max(0, wait)) + '█'.repeat(busy);
    const label =
      row.label.length > labelWidth ? `${row.label.slice(0, labelWidth - 1)}…` : row.label.padEnd(labelWidth);
    return `${label} │${bar.padEnd(width)}│ ${seconds(row.ended - row.submitted)}`;
  });
  const axis = `${' '.repeat(labelWidth)} 0${' '.repeat(Math.max(1, width - 1 - seconds(span).length))}${seconds(span)}`;
  return [...lines, axis].join('\n');
}
