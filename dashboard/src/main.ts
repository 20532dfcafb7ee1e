import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import '../app.css';
import {
  batchProgress,
  bucketFill,
  concurrencyFill,
  callsOfRun,
  chartData,
  filterTasks,
  formatCount,
  formatMs,
  ganttOf,
  rates,
  sequentialOf,
  timeSplit,
  type CallLike,
  type Gantt,
  type Seconds,
  type ToolLike,
} from './shape.js';

import type { DashboardMessage } from '../../src/server/dashboard/message.js';

const KEY_STORAGE = 'fanout.key';
const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => document.querySelector(selector) as T;

/** An element with attributes and children; text is always set as text, never parsed as HTML. */
function h(tag: string, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name !== 'style') el.setAttribute(name, value);
    // Styles go through the CSSOM: the page's content security policy refuses inline style attributes.
    else
      for (const declaration of value.split(';')) {
        const at = declaration.indexOf(':');
        if (at > 0) el.style.setProperty(declaration.slice(0, at).trim(), declaration.slice(at + 1).trim());
      }
  }
  el.append(...children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

let latest: DashboardMessage | undefined;
let view = 'limits';
let selectedTask: string | undefined;
let selectedRun: string | undefined;
/** The ended run's view, read once when it ends. */
let runView:
  { id: string; state: string; body: { timeline?: CallLike[]; tools?: ToolLike[]; wallMs?: number } } | undefined;
const charts: Record<string, uPlot> = {};

function key(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

function authHeaders(): Record<string, string> {
  const k = key();
  return k ? { authorization: `Bearer ${k}` } : {};
}

// --- Signing in ------------------------------------------------------------

async function signIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const value = ($<HTMLInputElement>('#key').value ?? '').trim();
  // The key is checked on a read that any key may make; it is sent in a header, never in a URL.
  const answer = await fetch('/v1/models', { headers: value ? { authorization: `Bearer ${value}` } : {} });
  if (answer.status === 401) {
    $('#sign-in-error').textContent = 'That key is not known to this server.';
    return;
  }
  if (!answer.ok) {
    $('#sign-in-error').textContent = `The server answered ${answer.status}.`;
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, value);
  $<HTMLInputElement>('#key').value = '';
  $('#sign-in-error').textContent = '';
  start();
}

function signOut(): void {
  sessionStorage.removeItem(KEY_STORAGE);
  socket?.close(1000, 'signed out');
  socket = undefined;
  latest = undefined;
  showSignIn();
}

function showSignIn(): void {
  $('#sign-in').hidden = false;
  $('nav').hidden = true;
  $('#sign-out').hidden = true;
  for (const panel of document.querySelectorAll<HTMLElement>('[data-view-panel]')) panel.hidden = true;
  $('#connection').textContent = '';
}

function start(): void {
  $('#sign-in').hidden = true;
  $('nav').hidden = false;
  $('#sign-out').hidden = false;
  show(view);
  connect();
}

// --- The live feed ---------------------------------------------------------

let socket: WebSocket | undefined;
let retryMs = 500;

/** The key goes as a WebSocket subprotocol (a browser cannot set headers on a socket), base64url so any key fits. */
function protocols(): string[] {
  const k = key();
  if (!k) return ['fanout'];
  const bytes = new TextEncoder().encode(k);
  const encoded = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
  return ['fanout', `fanout.key.${encoded}`];
}

function connect(): void {
  if (key() === null) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`;
  const ws = new WebSocket(url, protocols());
  socket = ws;
  setConnection('connecting…', false);
  ws.onopen = () => {
    retryMs = 500;
    setConnection('live', false);
    ws.send(JSON.stringify({ type: 'subscribe', dashboard: true }));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { type: string };
    if (message.type === 'dashboard') render(message as DashboardMessage);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = undefined;
    // Reconnects by itself: the server restarted, or shut down and another took its place.
    setConnection(`reconnecting${event.reason ? ` (${event.reason})` : ''}…`, true);
    setTimeout(connect, retryMs);
    retryMs = Math.min(5000, retryMs * 2);
  };
}

function setConnection(text: string, down: boolean): void {
  const el = $('#connection');
  el.textContent = text;
  el.classList.toggle('down', down);
}

// --- Views -----------------------------------------------------------------

function show(name: string): void {
  view = name;
  for (const button of document.querySelectorAll<HTMLButtonElement>('nav button'))
    button.setAttribute('aria-pressed', String(button.dataset.view === name));
  for (const panel of document.querySelectorAll<HTMLElement>('[data-view-panel]'))
    panel.hidden = panel.dataset.viewPanel !== name;
  if (latest) render(latest);
}

function render(message: DashboardMessage): void {
  latest = message;
  if (view === 'limits') renderLimits(message);
  else if (view === 'throughput') renderThroughput(message);
  else if (view === 'tasks') renderTasks(message);
  else if (view === 'runs') renderRuns(message);
}

function renderLimits(message: DashboardMessage): void {
  const cards = message.limits.map((limit) => {
    const card = h(
      'article',
      { class: 'card', 'data-key': limit.key },
      h('h3', {}, limit.key, h('span', { class: 'badge' }, limit.source)),
    );
    for (const bucket of limit.buckets) card.append(meter(limit.key, bucket.name, bucketFill(bucket)));
    if (limit.maxConcurrent !== null)
      card.append(meter(limit.key, 'concurrency', concurrencyFill(limit.inFlight, limit.maxConcurrent)));
    else card.append(h('div', { class: 'detail' }, `${limit.inFlight} in flight`));
    if (limit.cooldownMs > 0)
      card.append(
        h('div', { class: 'detail' }, `cooling down ${formatMs(limit.cooldownMs)}: the provider asked for it`),
      );
    const waiting = h('div', { class: 'waiting' }, `${limit.waiting.count} of your calls waiting on this key`);
    if (limit.waiting.next.length > 0) {
      waiting.append(
        h(
          'ol',
          {},
          ...limit.waiting.next
            .slice(0, 5)
            .map((wait) => h('li', { class: 'eta' }, `${wait.id}: goes in ${formatMs(wait.etaMs)} (${wait.reason})`)),
        ),
      );
    }
    card.append(waiting);
    return card;
  });
  $('#limit-keys').replaceChildren(
    ...(cards.length > 0 ? cards : [h('p', {}, 'No limit keys yet: submit some work.')]),
  );
  lineChart('refusals', '#chart-refusals', message.seconds, [
    { field: 'refused429', label: '429s / s', color: '#d55e00' },
    { field: 'retries', label: 'retries / s', color: '#e69f00' },
  ]);
}

/** One bucket (or the concurrency) of a key: how much is used now, as a bar and in words. */
function meter(key: string, name: string, fill: { used: number; title: string; detail: string }): HTMLElement {
  const percent = Math.round(fill.used * 100);
  return h(
    'div',
    { class: 'meter', 'data-bucket': name },
    h('div', { class: 'label' }, h('span', {}, fill.title), h('span', { class: 'used-share' }, `${percent}% used`)),
    h(
      'div',
      {
        class: 'track',
        role: 'meter',
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': String(percent),
        'aria-label': `${key} ${fill.title} used`,
      },
      h('div', { class: `used${fill.used > 0.85 ? ' high' : ''}`, style: `width:${(fill.used * 100).toFixed(1)}%` }),
    ),
    h('div', { class: 'detail' }, fill.detail),
  );
}

function lineChart(
  name: string,
  selector: string,
  seconds: Seconds,
  series: Array<{ field: keyof Omit<Seconds, 'start'>; label: string; color: string; scale?: string }>,
): void {
  const data = chartData(
    seconds,
    series.map((one) => one.field),
  ) as uPlot.AlignedData;
  const el = $(selector);
  const width = Math.max(280, el.clientWidth || 600);
  const existing = charts[name];
  if (existing && existing.root.isConnected) {
    if (Math.abs(existing.width - width) > 2) existing.setSize({ width, height: 220 });
    existing.setData(data);
    return;
  }
  const scales = [...new Set(series.map((one) => one.scale ?? 'y'))];
  charts[name] = new uPlot(
    {
      width,
      height: 220,
      series: [
        {},
        ...series.map((one) => ({ label: one.label, stroke: one.color, width: 2, scale: one.scale ?? 'y' })),
      ],
      axes: [{}, ...scales.map((scale, i) => ({ scale, side: i === 0 ? 3 : 1, grid: { show: i === 0 } }))],
    },
    data,
    el,
  );
}

function renderThroughput(message: DashboardMessage): void {
  const now = rates(message.seconds);
  $('#rates').textContent =
    `${now.completions.toFixed(1)} completions/s · ${formatCount(now.tokens)} tokens/s (last 10 s)`;
  lineChart('throughput', '#chart-throughput', message.seconds, [
    { field: 'completed', label: 'completions / s', color: '#0072b2' },
    { field: 'tokens', label: 'tokens / s', color: '#009e73', scale: 'tokens' },
  ]);
  const split = timeSplit(message.seconds);
  const part = (share: number, color: string, label: string): HTMLElement =>
    h('div', {
      style: `width:${(share * 100).toFixed(1)}%;background:${color}`,
      title: `${label} ${Math.round(share * 100)}%`,
    });
  $('#time-split').replaceChildren(
    h(
      'div',
      {
        class: 'split',
        role: 'img',
        'aria-label': `queued ${Math.round(split.queued * 100)}%, rate-limited ${Math.round(split.rateLimited * 100)}%, provider ${Math.round(split.provider * 100)}%`,
      },
      part(split.queued, 'var(--queued)', 'queued'),
      part(split.rateLimited, 'var(--limited)', 'rate-limited'),
      part(split.provider, 'var(--provider)', 'provider'),
    ),
    h(
      'div',
      { class: 'legend' },
      h('span', { style: '--swatch:var(--queued)' }, `queued ${Math.round(split.queued * 100)}%`),
      h('span', { style: '--swatch:var(--limited)' }, `rate-limited ${Math.round(split.rateLimited * 100)}%`),
      h('span', { style: '--swatch:var(--provider)' }, `provider ${Math.round(split.provider * 100)}%`),
    ),
  );
  const table = (kind: 'model' | 'step' | 'tool', title: string): HTMLElement => {
    const rows = message.latency[kind];
    if (rows.length === 0) return h('p', {}, `No ${title.toLowerCase()} yet.`);
    return h(
      'table',
      { 'data-latency': kind },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, title),
          h('th', {}, 'calls'),
          h('th', {}, 'p50'),
          h('th', {}, 'p90'),
          h('th', {}, 'p99'),
        ),
      ),
      h(
        'tbody',
        {},
        ...rows.map((row) =>
          h(
            'tr',
            {},
            h('td', {}, row.name),
            h('td', {}, String(row.count)),
            h('td', {}, formatMs(row.p50)),
            h('td', {}, formatMs(row.p90)),
            h('td', {}, formatMs(row.p99)),
          ),
        ),
      ),
    );
  };
  $('#latency').replaceChildren(
    h('h4', {}, 'Per model (provider time)'),
    table('model', 'Model'),
    h('h4', {}, 'Per pipeline step (submission to end)'),
    table('step', 'Step'),
    h('h4', {}, 'Per tool'),
    table('tool', 'Tool'),
  );
}

function renderTasks(message: DashboardMessage): void {
  $('#batches').replaceChildren(
    ...(message.batches.length === 0
      ? [h('p', {}, 'No batches yet.')]
      : message.batches.map((batch) => {
          const progress = batchProgress(batch);
          const counts = Object.entries(batch.counts)
            .map(([state, n]) => `${state} ${n}`)
            .join(' · ');
          return h(
            'div',
            { class: 'list-item', 'data-batch': batch.id },
            h('strong', {}, batch.id),
            ` ${batch.state} · ${progress.done} of ${batch.lines} lines ended`,
            h(
              'div',
              {
                class: 'progress',
                role: 'progressbar',
                'aria-valuemin': '0',
                'aria-valuemax': String(batch.lines),
                'aria-valuenow': String(progress.done),
                'aria-label': `batch ${batch.id}`,
              },
              h('div', { style: `width:${(progress.fraction * 100).toFixed(1)}%` }),
            ),
            h('div', { class: 'detail' }, counts),
            h('div', { class: 'detail bound' }, boundText(batch)),
          );
        })),
  );
  const form = $<HTMLFormElement>('#task-filter');
  const filter = Object.fromEntries(new FormData(form)) as Record<string, string>;
  fillOptions(
    form.elements.namedItem('state') as HTMLSelectElement,
    message.tasks.map((t) => t.state),
  );
  fillOptions(
    form.elements.namedItem('model') as HTMLSelectElement,
    message.tasks.map((t) => t.model),
  );
  const rows = filterTasks(message.tasks, filter).map((task) => {
    const row = h(
      'tr',
      { 'data-task': task.id, 'aria-selected': String(task.id === selectedTask) },
      h('td', {}, task.id),
      h('td', {}, task.model),
      h('td', {}, task.label ?? ''),
      h('td', { class: 'state' }, task.state),
      h('td', {}, String(task.attempts)),
      h('td', {}, task.queuedMs === undefined ? '' : formatMs(task.queuedMs)),
      h('td', {}, task.rateLimitedMs === undefined ? '' : formatMs(task.rateLimitedMs)),
      h('td', {}, task.providerMs === undefined ? '' : formatMs(task.providerMs)),
      h('td', {}, task.inputTokens === undefined ? '' : `${task.inputTokens} / ${task.outputTokens ?? 0}`),
    );
    row.addEventListener('click', () => void showTask(task.id));
    return row;
  });
  $('#tasks tbody').replaceChildren(...rows);
}

/** The batch's wall time against the lower bound its limits set: how close to the fastest possible it went. */
function boundText(batch: DashboardMessage['batches'][number]): string {
  const wall = `${batch.state === 'running' ? 'running for' : 'took'} ${formatMs(batch.wallMs)}`;
  if (batch.lowerBoundMs === undefined || batch.utilisation === undefined) return wall;
  return `${wall} · lower bound ${formatMs(batch.lowerBoundMs)} (set by ${batch.bindingOn}) · utilisation ${Math.round(batch.utilisation * 100)}%`;
}

function fillOptions(select: HTMLSelectElement, values: string[]): void {
  const known = new Set([...select.options].map((option) => option.value));
  for (const value of [...new Set(values)].sort()) if (!known.has(value)) select.append(h('option', { value }, value));
}

async function showTask(id: string): Promise<void> {
  selectedTask = id;
  const answer = await fetch(`/v1/tasks/${encodeURIComponent(id)}`, { headers: authHeaders() });
  const detail = $('#task-detail');
  detail.hidden = false;
  if (!answer.ok) {
    detail.replaceChildren(h('p', {}, `Task ${id}: the server answered ${answer.status}.`));
    return;
  }
  const task = (await answer.json()) as {
    id: string;
    model: string;
    state: string;
    attempts: Array<{
      attempt: number;
      startedAt: number;
      endedAt?: number;
      outcome?: string;
      error?: { code: string; message: string };
    }>;
    usage?: { inputTokens: number; outputTokens: number };
    result?: { text: string };
    error?: { code: string; message: string };
  };
  detail.replaceChildren(
    h('h3', {}, `Task ${task.id}`),
    h(
      'p',
      {},
      `${task.model} · ${task.state}${task.usage ? ` · ${task.usage.inputTokens} tokens in, ${task.usage.outputTokens} out` : ''}`,
    ),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', {}, 'attempt'), h('th', {}, 'took'), h('th', {}, 'outcome'))),
      h(
        'tbody',
        {},
        ...task.attempts.map((a) =>
          h(
            'tr',
            {},
            h('td', {}, String(a.attempt)),
            h('td', {}, a.endedAt ? formatMs(a.endedAt - a.startedAt) : '…'),
            h('td', {}, a.error ? `${a.outcome ?? ''} ${a.error.code}: ${a.error.message}` : (a.outcome ?? 'running')),
          ),
        ),
      ),
    ),
    task.result
      ? h('pre', { class: 'answer' }, task.result.text)
      : task.error
        ? h('p', {}, `${task.error.code}: ${task.error.message}`)
        : '',
  );
}

function renderRuns(message: DashboardMessage): void {
  $('#runs').replaceChildren(
    ...(message.runs.length === 0
      ? [h('p', {}, 'No pipeline runs yet.')]
      : message.runs.map((run) => {
          const steps = Object.entries(run.steps)
            .map(([name, state]) => `${name} ${state}`)
            .join(' · ');
          const button = h('button', { type: 'button' }, run.id === selectedRun ? 'Shown' : 'Show gantt');
          button.addEventListener('click', () => {
            selectedRun = run.id;
            runView = undefined;
            if (latest) render(latest);
          });
          return h(
            'div',
            {
              class: 'list-item',
              'data-run': run.id,
              'data-state': run.state,
              'aria-current': String(run.id === selectedRun),
            },
            h('strong', {}, run.pipeline),
            ` ${run.id} · ${run.state}${run.wallMs === undefined ? '' : ` in ${formatMs(run.wallMs)}`}`,
            h('div', { class: 'detail' }, steps),
            button,
          );
        })),
  );
  const run = message.runs.find((r) => r.id === selectedRun);
  const detail = $('#run-detail');
  detail.hidden = !run;
  if (!run) return;
  if (run.state !== 'running' && runView?.id !== run.id) void loadRun(run.id);
  const gantt =
    runView?.id === run.id && runView.body.timeline
      ? ganttOf(runView.body.timeline, runView.body.tools ?? [], message.at)
      : ganttOf(callsOfRun(message.tasks, run.id), [], message.at);
  const sequential = sequentialOf(gantt);
  const speedup = gantt.wallMs > 0 ? sequential.wallMs / gantt.wallMs : 1;
  // Both charts on one time axis, so the two wall times compare at a glance.
  const span = Math.max(gantt.wallMs, sequential.wallMs, 1);
  detail.replaceChildren(
    h('h3', {}, `${run.pipeline} · ${run.id} · ${run.state}`),
    h(
      'p',
      { class: 'walls' },
      `In parallel: ${formatMs(gantt.wallMs)} · one after another: ${formatMs(sequential.wallMs)}${speedupText(speedup, gantt.wallMs)}`,
    ),
    h(
      'div',
      { class: 'legend' },
      h('span', { style: '--swatch:var(--queued)' }, 'queued'),
      h('span', { style: '--swatch:var(--limited)' }, 'rate-limited'),
      h('span', { style: '--swatch:var(--provider)' }, 'at the provider'),
      h('span', { style: '--swatch:var(--critical)' }, 'critical path'),
    ),
    h(
      'div',
      { class: 'gantts' },
      h('figure', {}, h('figcaption', {}, 'This run'), ganttSvg(gantt, span, 'gantt-parallel')),
      h(
        'figure',
        {},
        h('figcaption', {}, 'The same calls one after another'),
        ganttSvg(sequential, span, 'gantt-sequential'),
      ),
    ),
  );
}

/** How the run compares with the same calls one after another (waits on limits can make it slower). */
function speedupText(speedup: number, wallMs: number): string {
  if (wallMs <= 0) return '';
  return speedup >= 1
    ? ` · ${speedup.toFixed(1)}× faster`
    : ` · ${(1 / speedup).toFixed(1)}× slower (it waited on limits)`;
}

async function loadRun(id: string): Promise<void> {
  runView = { id, state: 'loading', body: {} };
  const answer = await fetch(`/v1/runs/${encodeURIComponent(id)}`, { headers: authHeaders() });
  if (!answer.ok) return;
  runView = { id, state: 'ended', body: await answer.json() };
  if (latest) render(latest);
}

/** A gantt chart: per bar, grey while queued, orange while rate-limited, blue at the provider; the critical path outlined. */
function ganttSvg(gantt: Gantt, spanMs: number, id: string): SVGElement {
  const labelWidth = 190;
  const chartWidth = 520;
  const row = 18;
  const height = gantt.bars.length * row + 30;
  const svg = s('svg', {
    class: 'gantt',
    id,
    viewBox: `0 0 ${labelWidth + chartWidth + 40} ${height}`,
    role: 'img',
    'aria-label': `gantt chart, ${gantt.bars.length} calls, ${formatMs(gantt.wallMs)}`,
  });
  const x = (ms: number): number => labelWidth + (ms / spanMs) * chartWidth;
  gantt.bars.forEach((bar, i) => {
    const y = i * row + 4;
    const label = bar.label.length > 30 ? `${bar.label.slice(0, 29)}…` : bar.label;
    svg.append(s('text', { x: 4, y: y + 11 }, label));
    const queuedEnd = bar.started - bar.rateLimitedMs;
    const rect = (from: number, to: number, color: string, what: string): void => {
      if (to <= from) return;
      const r = s('rect', {
        x: x(from).toFixed(1),
        y,
        width: Math.max(1, x(to) - x(from)).toFixed(1),
        height: 12,
        fill: color,
        'data-part': what,
      });
      if (bar.open) r.setAttribute('data-open', 'true');
      r.append(s('title', {}, `${bar.label}: ${what} ${formatMs(to - from)}`));
      svg.append(r);
    };
    rect(bar.submitted, queuedEnd, '#8a8d93', 'queued');
    rect(queuedEnd, bar.started, '#e69f00', 'rate-limited');
    rect(bar.started, Math.max(bar.ended, bar.started + 1), '#0072b2', 'provider');
    if (bar.critical)
      svg.append(
        s('rect', {
          x: x(bar.submitted).toFixed(1),
          y: y - 1,
          width: Math.max(2, x(bar.ended) - x(bar.submitted)).toFixed(1),
          height: 14,
          fill: 'none',
          stroke: '#d55e00',
          'stroke-width': 2,
          'data-critical': 'true',
        }),
      );
  });
  const axisY = gantt.bars.length * row + 12;
  svg.append(s('line', { x1: labelWidth, y1: axisY, x2: labelWidth + chartWidth, y2: axisY, stroke: '#55575c' }));
  for (let tick = 0; tick <= 4; tick++) {
    const ms = (spanMs * tick) / 4;
    svg.append(s('text', { x: x(ms).toFixed(1), y: axisY + 14, 'text-anchor': 'middle' }, formatMs(ms)));
  }
  return svg;
}

// --- Start -----------------------------------------------------------------

$('#sign-in').addEventListener('submit', (event) => void signIn(event as SubmitEvent));
$('#sign-out').addEventListener('click', signOut);
for (const button of document.querySelectorAll<HTMLButtonElement>('nav button'))
  button.addEventListener('click', () => show(button.dataset.view ?? 'limits'));
$('#task-filter').addEventListener('input', () => latest && render(latest));
if (key() === null) showSignIn();
else start();
