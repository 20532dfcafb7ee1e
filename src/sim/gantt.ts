import type { PipelineRun } from '../pipeline/run.js';

export interface GanttOptions {
  /** Characters for the whole run. Default 60. */
  width?: number;
}

interface Row {
  label: string;
  submittedAt: number;
  startedAt: number;
  endedAt: number;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(s < 10 ? 2 : 1)} s`;
}

/**
 * The timeline of a run as text: one row per call or tool, `·` while it
 * waited (its turn, a rate limit, a retry) and `█` while it ran, on a shared
 * time axis. The same chart serves `fanout simulate` and `fanout run`.
 */
export function renderGantt(run: PipelineRun, options: GanttOptions = {}): string {
  const width = options.width ?? 60;
  const rows: Row[] = [
    ...run.calls.map((c) => ({
      label: `${c.step}${c.item === undefined ? '' : `[${c.item}]`} ${c.model}${c.cached ? ` (${c.cached})` : ''}`,
      submittedAt: c.submittedAt,
      startedAt: c.startedAt ?? c.endedAt,
      endedAt: c.endedAt,
    })),
    ...run.tools.map((t) => ({ label: `${t.step}${t.item === undefined ? '' : `[${t.item}]`} (tool)`, submittedAt: t.startedAt, startedAt: t.startedAt, endedAt: t.endedAt })),
  ].sort((a, b) => a.submittedAt - b.submittedAt || a.startedAt - b.startedAt);
  const span = Math.max(1, run.wallMs);
  const at = (ms: number): number => Math.round(((ms - run.startedAt) / span) * width);
  const labelWidth = Math.min(40, Math.max(8, ...rows.map((r) => r.label.length)));
  const lines = rows.map((row) => {
    const wait = at(row.startedAt) - at(row.submittedAt);
    const busy = Math.max(row.endedAt > row.startedAt ? 1 : 0, at(row.endedAt) - at(row.startedAt));
    const bar = ' '.repeat(at(row.submittedAt)) + '·'.repeat(Math.max(0, wait)) + '█'.repeat(busy);
    const label = row.label.length > labelWidth ? `${row.label.slice(0, labelWidth - 1)}…` : row.label.padEnd(labelWidth);
    return `${label} │${bar.padEnd(width)}│ ${seconds(row.endedAt - row.submittedAt)}`;
  });
  const axis = `${' '.repeat(labelWidth)} 0${' '.repeat(Math.max(1, width - 1 - seconds(span).length))}${seconds(span)}`;
  return [...lines, axis].join('\n');
}
