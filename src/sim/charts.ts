import type { PipelineRun } from '../pipeline/run.js';

/** Milliseconds as seconds for people: whole when whole, else two decimals below 10 s and one above. */
export function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(s < 10 ? 2 : 1)} s`;
}

interface Bar {
  label: string;
  /** ms from the run's start */
  submitted: number;
  started: number;
  ended: number;
}

/** Every call and tool of a run as bars on one time axis, in the order they were submitted. */
export function barsOf(run: PipelineRun): Bar[] {
  const bars: Bar[] = [
    ...run.calls.map((c) => ({
      label: `${c.step}${c.item === undefined ? '' : `[${c.item}]`} ${c.model}${c.cached ? ` (${c.cached})` : ''}`,
      submitted: c.submittedAt - run.startedAt,
      started: (c.startedAt ?? c.endedAt) - run.startedAt,
      ended: c.endedAt - run.startedAt,
    })),
    ...run.tools.map((t) => ({
      label: `${t.step}${t.item === undefined ? '' : `[${t.item}]`} (${t.tool ?? 'tool'})`,
      submitted: t.startedAt - run.startedAt,
      started: t.startedAt - run.startedAt,
      ended: t.endedAt - run.startedAt,
    })),
  ];
  return bars.sort((a, b) => a.submitted - b.submitted || a.started - b.started);
}

/** A Mermaid gantt block of the run, with times in milliseconds from its start. */
export function renderMermaid(run: PipelineRun): string {
  const lines = [
    'gantt',
    `    title ${run.pipeline}: ${seconds(run.wallMs)}`,
    '    dateFormat x',
    '    axisFormat %S.%L s',
  ];
  barsOf(run).forEach((bar, i) => {
    const label = bar.label.replace(/[:#;]/g, ' ');
    if (bar.started > bar.submitted)
      lines.push(`    ${label} (waiting) :done, w${i}, ${Math.round(bar.submitted)}, ${Math.round(bar.started)}`);
    lines.push(`    ${label} :b${i}, ${Math.round(bar.started)}, ${Math.round(Math.max(bar.ended, bar.started + 1))}`);
  });
  return `${lines.join('\n')}\n`;
}

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An SVG gantt chart of the run: a row per call or tool, grey while waiting, blue while running, a time axis below. */
export function renderSvg(run: PipelineRun, options: { width?: number } = {}): string {
  const bars = barsOf(run);
  const width = options.width ?? 900;
  const labelWidth = 260;
  const rowHeight = 22;
  const top = 30;
  const chartWidth = width - labelWidth - 20;
  const span = Math.max(1, run.wallMs);
  const x = (ms: number): number => labelWidth + (ms / span) * chartWidth;
  const height = top + bars.length * rowHeight + 40;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="18" font-weight="bold">${escapeXml(`${run.pipeline}: ${seconds(run.wallMs)}`)}</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = top + i * rowHeight;
    parts.push(`<text x="10" y="${y + 15}">${escapeXml(bar.label)}</text>`);
    if (bar.started > bar.submitted) {
      parts.push(
        `<rect x="${x(bar.submitted).toFixed(1)}" y="${y + 4}" width="${(x(bar.started) - x(bar.submitted)).toFixed(1)}" height="14" fill="#cccccc"><title>waiting ${seconds(bar.started - bar.submitted)}</title></rect>`,
      );
    }
    parts.push(
      `<rect x="${x(bar.started).toFixed(1)}" y="${y + 4}" width="${Math.max(1, x(bar.ended) - x(bar.started)).toFixed(1)}" height="14" fill="#3b82f6"><title>${escapeXml(`${bar.label}: ${seconds(bar.ended - bar.started)}`)}</title></rect>`,
    );
  });
  const axisY = top + bars.length * rowHeight + 10;
  parts.push(`<line x1="${labelWidth}" y1="${axisY}" x2="${labelWidth + chartWidth}" y2="${axisY}" stroke="#333"/>`);
  for (let tick = 0; tick <= 4; tick++) {
    const ms = (span * tick) / 4;
    parts.push(
      `<text x="${x(ms).toFixed(1)}" y="${axisY + 16}" text-anchor="middle">${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s</text>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
