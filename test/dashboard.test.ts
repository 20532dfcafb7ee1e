import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe } from './processes/serve-process.js';

/**
 * The dashboard in a real browser (Debian's Chromium, driven by
 * playwright-core) against `fanout serve` as a user starts it, on mock
 * models whose limits make calls wait. Screenshots of each view go to
 * test-artifacts/dashboard/.
 */
const CHROMIUM = process.env.FANOUT_CHROMIUM ?? '/usr/bin/chromium';
const artifacts = new URL('../test-artifacts/dashboard/', import.meta.url).pathname;

const config = `
concurrency: 16
models:
  "mock:planner": { limits: { requestsPerMinute: 600, burstSeconds: 1 } }
  # Two calls a second: a batch of them waits on the limit, with an ETA each.
  "mock:reviewer": { limits: { requestsPerMinute: 120, tokensPerMinute: 400000, maxConcurrent: 4, burstSeconds: 1 } }
providers:
  mock:
    models:
      planner: { latency: 400 }
      reviewer: { latency: 1000 }
`;

/** The operator's tools, given to `fanout serve --tools`: a search that takes 200 ms. */
const tools = `export async function lookup({ q }) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return 'notes on ' + q;
}
`;

const pipeline = {
  inputs: { topic: {} },
  steps: {
    search: { tool: 'lookup', args: { q: '{{ inputs.topic }}' } },
    plan: { model: 'mock:planner', prompt: 'Plan a review of {{ inputs.topic }}: {{ steps.search.output }}' },
    security: { model: 'mock:reviewer', prompt: 'Security review: {{ steps.plan.output }}' },
    style: { model: 'mock:reviewer', prompt: 'Style review: {{ steps.plan.output }}' },
    tests: { model: 'mock:reviewer', prompt: 'Test review: {{ steps.plan.output }}' },
    summary: {
      model: 'mock:planner',
      prompt: 'Sum up: {{ steps.security.output }} {{ steps.style.output }} {{ steps.tests.output }}',
    },
  },
};

type Server = Awaited<ReturnType<typeof startServe>>;
let server: Server;
let browser: Browser;
let port: string;

async function api(path: string, body?: unknown, key = 'fk-test', type = 'application/json'): Promise<any> {
  const answer = await fetch(`${server.address}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': type },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await answer.text();
  expect(answer.status, `${path}: ${answer.status} ${text}`).toBeLessThan(300);
  return JSON.parse(text);
}

async function signedIn(key: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(`${server.address}/`);
  await page.fill('#key', key);
  await page.click('#sign-in button[type=submit]');
  await page.locator('#connection', { hasText: 'live' }).waitFor();
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

const startServer = (dir?: string) =>
  startServe(
    ['--config', 'fanout.yaml', '--tools', 'tools.mjs', '--key', 'globex=fk-other', ...(port ? ['--port', port] : [])],
    dir ? {} : { 'fanout.yaml': config, 'tools.mjs': tools },
    dir,
  );

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await startServer();
  port = new URL(server.address).port;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  server?.child.kill('SIGKILL');
});

describe('the dashboard', () => {
  it('serves the page without a key, signs in with one kept in the tab, and refuses an unknown key', async () => {
    const page = await browser.newPage();
    const answer = await page.goto(`${server.address}/`);
    expect(answer?.headers()['content-security-policy']).toContain("connect-src 'self'");
    await page.fill('#key', 'fk-wrong');
    await page.click('#sign-in button[type=submit]');
    await expect.poll(() => page.textContent('#sign-in-error')).toContain('not known');
    await page.fill('#key', 'fk-test');
    await page.click('#sign-in button[type=submit]');
    await page.locator('#connection', { hasText: 'live' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('fanout.key')")).toBe('fk-test');
    // The key is never in a URL: not the page's, not the socket's.
    expect(page.url()).not.toContain('fk-test');
    await page.reload();
    await page.locator('#connection', { hasText: 'live' }).waitFor();
    await page.context().close();
  });

  it('shows limits, a batch and a pipeline run filling in live, each view to its own tenant only', async () => {
    const page = await signedIn('fk-test');
    const lines = Array.from({ length: 14 }, (_, i) =>
      JSON.stringify({
        custom_id: `line-${i}`,
        body: { model: 'mock:reviewer', messages: [{ role: 'user', content: `x${i}` }] },
      }),
    ).join('\n');
    const batch = await api('/v1/batches', lines, 'fk-test', 'application/x-ndjson');

    // Limits: the reviewer's bucket empties and calls wait on it, each with its ETA.
    const reviewer = page.locator('[data-key="mock:reviewer"]');
    await reviewer.locator('.eta').first().waitFor();
    expect(await reviewer.locator('.eta').first().textContent()).toMatch(/: goes in \d+ ms \(requestsPerMinute\)$/);
    expect(await reviewer.locator('.badge').textContent()).toBe('configured');
    expect(await reviewer.locator('[data-bucket=concurrency] .detail').textContent()).toMatch(/^\d of 4 at once$/);
    await shot(page, 'limits');

    // Meanwhile another tenant's key sees the shared limits but none of these calls.
    const other = await signedIn('fk-other');
    await other.locator('[data-key="mock:reviewer"] .waiting').waitFor();
    expect(await other.locator('[data-key="mock:reviewer"] .waiting').textContent()).toMatch(/^0 of your calls/);
    expect(await page.locator('[data-key="mock:reviewer"] .waiting').textContent()).toMatch(/^[1-9]\d* of your calls/);
    await other.click('nav button[data-view=tasks]');
    await other.locator('#batches', { hasText: 'No batches yet.' }).waitFor();
    expect(await other.locator('#tasks tbody tr').count()).toBe(0);

    // The bucket's fill moves as calls take from it and it refills.
    const used = reviewer.locator('[data-bucket="requestsPerMinute"] [role=meter]');
    const fills = new Set<string>();
    await expect
      .poll(
        async () => {
          fills.add((await used.getAttribute('aria-valuenow')) ?? '');
          return fills.size;
        },
        { timeout: 30_000 },
      )
      .toBeGreaterThan(1);

    // Tasks: the batch's progress fills to its end.
    await page.click('nav button[data-view=tasks]');
    const progress = page.locator(`[data-batch="${batch.id}"] [role=progressbar]`);
    await expect.poll(() => progress.getAttribute('aria-valuenow'), { timeout: 30_000 }).toBe('14');
    expect(await page.textContent(`[data-batch="${batch.id}"] .bound`)).toMatch(
      /^took [\d.]+ s · lower bound [\d.]+ s \(set by mock:reviewer requestsPerMinute\) · utilisation \d+%$/,
    );
    await shot(page, 'tasks');
    const ended = page.locator('#tasks tbody tr', { has: page.locator('td.state', { hasText: 'completed' }) });
    await ended.first().click();
    await page.locator('#task-detail pre.answer').waitFor();

    // Runs: the gantt fills in while the run goes on, then shows the whole run and the sequential one beside it.
    const run = await api('/v1/runs', { pipeline, inputs: { topic: 'caches' } });
    await page.click('nav button[data-view=runs]');
    await page.locator(`[data-run="${run.id}"] button`).click();
    await page.locator('#gantt-parallel [data-open]').first().waitFor();
    await expect
      .poll(() => page.getAttribute(`[data-run="${run.id}"]`, 'data-state'), { timeout: 30_000 })
      .toBe('completed');
    await expect.poll(() => page.locator('#gantt-parallel rect[data-part=provider]').count()).toBe(6);
    expect(await page.locator('#gantt-parallel [data-open]').count()).toBe(0);
    // The search, plan, the reviewer that waited for the limit, summary.
    expect(await page.locator('#gantt-parallel [data-critical]').count()).toBe(4);
    expect(await page.locator('#gantt-parallel rect[data-part=rate-limited]').count()).toBeGreaterThan(0);
    expect(await page.textContent('.walls')).toMatch(/^In parallel: .+ · one after another: .+ · \d+\.\d× faster$/);
    await shot(page, 'runs');
    await other.click('nav button[data-view=runs]');
    await other.locator('#runs', { hasText: 'No pipeline runs yet.' }).waitFor();
    const response = await other.request.get(`${server.address}/v1/runs/${run.id}`, {
      headers: { authorization: 'Bearer fk-other' },
    });
    expect(response.status()).toBe(404);
    await other.context().close();

    // Throughput and latency per model and per step.
    await page.click('nav button[data-view=throughput]');
    await page.locator('[data-latency=model] td', { hasText: 'mock:reviewer' }).waitFor();
    await page.locator('[data-latency=step] td', { hasText: 'security' }).waitFor();
    await page.locator('[data-latency=tool] td', { hasText: 'search' }).waitFor();
    // A batch line's custom id is not a pipeline step.
    expect(await page.locator('[data-latency=step] td', { hasText: 'line-0' }).count()).toBe(0);
    expect(await page.locator('#chart-throughput canvas').count()).toBe(1);
    await shot(page, 'throughput');

    await page.context().close();
  });

  it('fits a phone-width screen', async () => {
    const page = await signedIn('fk-test', { width: 390, height: 844 });
    await page.locator('[data-key="mock:reviewer"]').waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'limits-phone');
    await page.context().close();
  });

  it('reconnects by itself when the server restarts under it', async () => {
    const page = await signedIn('fk-test');
    server.child.kill('SIGTERM');
    await server.exited;
    await page.locator('#connection', { hasText: 'reconnecting' }).waitFor();
    server = await startServer(server.dir);
    await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 20_000 });
    const task = await api('/v1/tasks', { model: 'mock:planner', messages: [{ role: 'user', content: 'after' }] });
    await page.click('nav button[data-view=tasks]');
    await page.locator(`#tasks tr[data-task="${task.id}"]`).waitFor();
    await page.context().close();
  });
});
