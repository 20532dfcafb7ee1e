import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentiles } from '../dist/metrics/percentiles.js';
import { fmt, median } from './stats.js';

/**
 * The gateway benchmarks: fanout serve, a bare undici proxy and Portkey's
 * gateway (@portkey-ai/gateway), each in its own process pinned to core 1,
 * in front of the same fake OpenAI-compatible upstream; the load generator
 * and the upstream run pinned to core 0. Everything talks over 127.0.0.1.
 */

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..');
const LOAD_CORE = '0';
const SERVER_CORE = '1';

interface Target {
  name: string;
  url: string;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

interface Process {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
}

/** Starts `node args` pinned to `core`; its port is the first line it prints. */
async function startPrintingPort(core: string, args: string[]): Promise<Process> {
  const child = spawn('taskset', ['-c', core, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve(Number(line));
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before printing its port`)));
  });
  child.stdout!.resume();
  return { port, pid: child.pid!, stop: stopper(child) };
}

async function waitForHttp(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const answer = await fetch(url);
      await answer.arrayBuffer();
      return;
    } catch (error) {
      if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms: ${String(error)}`);
      await sleep(100);
    }
  }
}

async function startUpstream(delayMs: number): Promise<Process> {
  return startPrintingPort(LOAD_CORE, [join(HERE, 'gateway/upstream.mjs'), '--delay-ms', String(delayMs)]);
}

async function startBareProxy(upstreamPort: number): Promise<Process> {
  return startPrintingPort(SERVER_CORE, [
    join(HERE, 'gateway/bare-proxy.mjs'),
    '--upstream',
    `http://127.0.0.1:${upstreamPort}`,
  ]);
}

async function startPortkey(): Promise<Process> {
  const port = await freePort();
  const script = join(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js');
  const child = spawn('taskset', ['-c', SERVER_CORE, process.execPath, script, `--port=${port}`, '--headless'], {
    stdio: 'ignore',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  await waitForHttp(`http://127.0.0.1:${port}/`, 20_000);
  return { port, pid: child.pid!, stop: stopper(child) };
}

/** fanout serve as a user would run it: the default SQLite store, an API key, request logs (to a file). */
async function startFanout(upstreamPort: number, dir: string): Promise<Process> {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'fanout.yaml');
  writeFileSync(
    config,
    [
      'concurrency: 4096',
      'models:',
      '  "up:m": { limits: { requestsPerMinute: 6000000, tokensPerMinute: 6000000000 } }',
      'providers:',
      `  up: { baseURL: "http://127.0.0.1:${upstreamPort}/v1", apiKey: "sk-bench" }`,
      // A local model that streams 100 tokens 5 ms apart, for the WebSocket event benchmark.
      '  mock: { models: { stream: { timeToFirstTokenMs: 5, interTokenMs: 5, outputTokens: { min: 100, max: 100 } } } }',
      '',
    ].join('\n'),
  );
  const log = join(dir, 'serve.log');
  const child = spawn(
    'taskset',
    [
      '-c',
      SERVER_CORE,
      process.execPath,
      join(ROOT, 'bin/fanout.js'),
      'serve',
      '--port',
      '0',
      '--config',
      config,
      '--store',
      `sqlite:${join(dir, 'fanout.db')}`,
      '--key',
      'bench=fk-bench',
    ],
    { stdio: ['ignore', 'ignore', openSync(log, 'a')] },
  );
  const until = Date.now() + 20_000;
  for (;;) {
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(log, 'utf8'));
    if (match) return { port: Number(match[1]), pid: child.pid!, stop: stopper(child) };
    if (child.exitCode !== null || Date.now() > until)
      throw new Error(`fanout serve did not start:\n${readFileSync(log, 'utf8')}`);
    await sleep(50);
  }
}

/** Resident set size of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Runs one load job pinned to the load core; resolves its JSON result. `onLine` sees its other output lines. */
function load<T>(job: object, onLine?: (line: string) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'taskset',
      ['-c', LOAD_CORE, process.execPath, join(HERE, 'gateway/load.mjs'), JSON.stringify(job)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0 && !out.startsWith('{')) {
        onLine?.(out.slice(0, nl));
        out = out.slice(nl + 1);
      }
    });
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as T)
        : reject(new Error(`load job ${JSON.stringify(job).slice(0, 120)} exited ${code}`)),
    );
  });
}

const CHAT_BODY = (model: string) =>
  JSON.stringify({
    model,
    messages: [{ role: 'user', content: 'Say something short about rate limits.' }],
    max_tokens: 64,
  });

function chatTargets(ports: {
  upstream: number;
  bare: number;
  portkey: number;
  fanout: number;
}): Record<'direct' | 'bare' | 'portkey' | 'fanout', Target> {
  const post = (name: string, port: number, headers: Record<string, string>, model: string): Target => ({
    name,
    url: `http://127.0.0.1:${port}`,
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: CHAT_BODY(model),
  });
  return {
    direct: post('direct', ports.upstream, {}, 'm'),
    bare: post('bare', ports.bare, { authorization: 'Bearer sk-bench' }, 'm'),
    portkey: post(
      'portkey',
      ports.portkey,
      {
        authorization: 'Bearer sk-bench',
        'x-portkey-provider': 'openai',
        'x-portkey-custom-host': `http://127.0.0.1:${ports.upstream}/v1`,
      },
      'm',
    ),
    fanout: post('fanout', ports.fanout, { authorization: 'Bearer fk-bench' }, 'up:m'),
  };
}

interface Latency {
  p50: number;
  p99: number;
}

/**
 * Latency at one request in flight, in µs: `repeats` runs of interleaved
 * rounds (each target `round` requests in turn) until each has `samples`;
 * the median of each run's p50 and p99. `added` subtracts the direct call's.
 */
async function latencies(
  targets: Target[],
  samples: number,
  round: number,
  repeats: number,
): Promise<Record<string, Latency & { added50: number; added99: number }>> {
  const runs: Array<Record<string, number[]>> = [];
  for (let r = 0; r < repeats; r++)
    runs.push(await load<Record<string, number[]>>({ kind: 'latency', targets, samples, round }));
  const out: Record<string, Latency & { added50: number; added99: number }> = {};
  const direct = targets[0]!.name;
  for (const t of targets) {
    const p = runs.map((run) => percentiles(run[t.name]!, [50, 99]) as [number, number]);
    const d = runs.map((run) => percentiles(run[direct]!, [50, 99]) as [number, number]);
    out[t.name] = {
      p50: median(p.map((x) => x[0])),
      p99: median(p.map((x) => x[1])),
      added50: median(p.map((x, i) => x[0] - d[i]![0])),
      added99: median(p.map((x, i) => x[1] - d[i]![1])),
    };
  }
  return out;
}

interface Throughput {
  rps: number;
  connections: number;
  p99: number;
  steps: Array<{ connections: number; rps: number; p99: number; errors: number; non2xx: number }>;
}

/**
 * The highest rate a target holds with p99 ≤ `p99BoundMs` and no errors:
 * closed-loop load with 1, 2, 4 … connections, `seconds` each, until p99 passes
 * the bound (or an error comes back).
 */
async function throughputUnder(
  target: Target,
  p99BoundMs: number,
  seconds: number,
  maxConnections: number,
): Promise<Throughput> {
  const steps: Throughput['steps'] = [];
  let best = { rps: 0, connections: 0, p99: Number.NaN };
  for (let connections = 1; connections <= maxConnections; connections *= 2) {
    const r = await load<{ rps: number; p99: number; errors: number; non2xx: number }>({
      kind: 'throughput',
      target,
      connections,
      seconds,
    });
    steps.push({ connections, ...r });
    const clean = r.errors === 0 && r.non2xx === 0;
    if (clean && r.p99 <= p99BoundMs && r.rps > best.rps) best = { rps: r.rps, connections, p99: r.p99 };
    if (r.p99 > p99BoundMs || !clean) break;
  }
  return { ...best, steps };
}

/**
 * Memory a target spends per request in flight: `requests` requests at once
 * while the upstream holds every answer; RSS once all are at the upstream,
 * minus RSS just before. Bytes per request.
 */
async function bytesPerInFlight(target: Target, pid: number, upstreamPort: number, requests: number): Promise<number> {
  const control = (path: string, method = 'POST') =>
    fetch(`http://127.0.0.1:${upstreamPort}/control${path}`, { method }).then(
      (r) => r.json() as Promise<{ held: number; answered: number }>,
    );
  await control('/hold');
  const before = rssOf(pid);
  let measured: Promise<{ held: number; rss: number }> | undefined;
  const done = load<{ ok: number; failed: number }>({ kind: 'hold', target, requests }, () => {
    measured ??= (async () => {
      try {
        const until = Date.now() + 60_000;
        let held = 0;
        while ((held = (await control('', 'GET')).held) < requests && Date.now() < until) await sleep(50);
        await sleep(200);
        return { held, rss: rssOf(pid) };
      } finally {
        await control('/release');
      }
    })();
  });
  const result = await done;
  const after = await measured;
  if (!after || after.held !== requests)
    throw new Error(
      `${target.name}: only ${after?.held ?? 0} of ${requests} requests reached the upstream; no memory figure`,
    );
  if (result.ok !== requests) throw new Error(`${target.name}: ${result.failed} of ${requests} held requests failed`);
  return (after.rss - before) / requests;
}

function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-gateway-bench-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function startFramework(framework: 'fastify' | 'hono', upstreamPort: number): Promise<Process> {
  return startPrintingPort(SERVER_CORE, [
    join(HERE, 'gateway/framework-server.mjs'),
    framework,
    '--upstream',
    `http://127.0.0.1:${upstreamPort}`,
  ]);
}

async function startStatusEndpoint(taskFile: string): Promise<Process> {
  return startPrintingPort(SERVER_CORE, [join(HERE, 'gateway/status-endpoint.mjs'), taskFile]);
}

const us = (n: number) => `${fmt(n)} µs`;
const kb = (bytes: number) => `${fmt(bytes / 1024, 1)} KB`;
const mb = (bytes: number) => `${fmt(bytes / 1024 / 1024, 1)} MB`;

function latencyRow(id: string, what: string, l: Awaited<ReturnType<typeof latencies>>): string[] {
  const fanout = l.fanout!;
  const bare = l.bare!;
  const portkey = l.portkey!;
  return [
    id,
    what,
    `added p50 +${us(fanout.added50)} · p99 +${us(fanout.added99)} (direct p50 ${us(l.direct!.p50)})`,
    `bare proxy +${us(bare.added50)} · +${us(bare.added99)}; Portkey +${us(portkey.added50)} · +${us(portkey.added99)}`,
    `p50 ${fmt(fanout.added50 / bare.added50, 2)} × bare (goal ≤ 1.3) · ${fmt(fanout.added50 / portkey.added50, 2)} × Portkey (goal ≤ 0.3)`,
  ];
}

const rate = (t: Throughput) => {
  if (t.rps > 0) return `${fmt(t.rps)}/s (${t.connections} conn., p99 ${t.p99} ms)`;
  const first = t.steps[0];
  return `none under the bound (1 conn.: ${fmt(first?.rps ?? 0)}/s, p99 ${first?.p99} ms, ${(first?.errors ?? 0) + (first?.non2xx ?? 0)} errors)`;
};
/** Requests per second a target reached at its best, bound or not. */
const peak = (t: Throughput) => Math.max(...t.steps.map((s) => s.rps));

/**
 * The gateway set (`npm run bench -- gateway`): G-latency against a 0 ms and a
 * 20 ms upstream, G-throughput, G-memory, S-status, and the Fastify-versus-Hono
 * measurement behind the choice of framework.
 */
export async function benchGateway(): Promise<string[][]> {
  const rows: string[][] = [];
  const say = (text: string) => process.stderr.write(`  gateway: ${text}\n`);
  const tmp = tempDir();
  const running: Process[] = [];
  const track = <P extends Process>(p: P): P => (running.push(p), p);
  try {
    // ── 0 ms upstream ──
    const up0 = track(await startUpstream(0));
    const bare = track(await startBareProxy(up0.port));
    const portkey = track(await startPortkey());
    const fanout = track(await startFanout(up0.port, join(tmp.dir, 'upstream-0ms')));
    const t = chatTargets({ upstream: up0.port, bare: bare.port, portkey: portkey.port, fanout: fanout.port });
    await sleep(1000);
    const started = { bare: rssOf(bare.pid), portkey: rssOf(portkey.pid), fanout: rssOf(fanout.pid) };
    say('warming up (1,200 requests each)');
    await load({ kind: 'latency', targets: [t.direct, t.bare, t.portkey, t.fanout], samples: 1000, round: 250 });
    await sleep(1000);
    const idle = { bare: rssOf(bare.pid), portkey: rssOf(portkey.pid), fanout: rssOf(fanout.pid) };
    say('memory per request in flight (1,000 held at the upstream)');
    const held = 1000;
    const perRequest = {
      bare: await bytesPerInFlight(t.bare, bare.pid, up0.port, held),
      portkey: await bytesPerInFlight(t.portkey, portkey.pid, up0.port, held),
      fanout: await bytesPerInFlight(t.fanout, fanout.pid, up0.port, held),
    };
    say('latency, 0 ms upstream');
    rows.push(
      latencyRow(
        'G-latency',
        'gateway, one request in flight, 0 ms upstream; 3 runs × 3,000 interleaved samples, median of runs',
        await latencies([t.direct, t.bare, t.portkey, t.fanout], 3000, 500, 3),
      ),
    );
    say('throughput, 0 ms upstream');
    const tp = {
      fanout: await throughputUnder(t.fanout, 10, 3, 256),
      bare: await throughputUnder(t.bare, 10, 3, 256),
      portkey: await throughputUnder(t.portkey, 10, 3, 256),
    };
    rows.push([
      'G-throughput',
      'requests/s the gateway holds on one core with p99 ≤ 10 ms and 0 errors, 0 ms upstream; closed loop, 1, 2, 4 … connections, 3 s each',
      rate(tp.fanout),
      `bare proxy ${rate(tp.bare)} · Portkey ${rate(tp.portkey)}`,
      `${tp.portkey.rps > 0 ? `${fmt(tp.fanout.rps / tp.portkey.rps, 1)} × Portkey` : `${fmt(tp.fanout.rps / peak(tp.portkey), 1)} × Portkey's best rate at any p99`} (goal ≥ 8,000/s)`,
    ]);
    rows.push([
      'G-memory',
      `RSS at start, idle after 1,200 requests, and per request in flight (${fmt(held)} held at the upstream at once)`,
      `${mb(started.fanout)} at start · idle ${mb(idle.fanout)} · ${kb(perRequest.fanout)} per request`,
      `bare proxy ${mb(started.bare)} · ${mb(idle.bare)} · ${kb(perRequest.bare)}; Portkey ${mb(started.portkey)} · ${mb(idle.portkey)} · ${kb(perRequest.portkey)}`,
      'goal idle ≤ 60 MB, ≤ 60 KB per request',
    ]);

    say('GET /v1/tasks/:id');
    const taskBody = JSON.stringify({
      model: 'up:m',
      messages: [{ role: 'user', content: 'Say something short about rate limits.' }],
      maxTokens: 64,
    });
    const submitted = await fetch(`http://127.0.0.1:${fanout.port}/v1/tasks?wait=1`, {
      method: 'POST',
      headers: { authorization: 'Bearer fk-bench', 'content-type': 'application/json' },
      body: taskBody,
    });
    const { id, state } = (await submitted.json()) as { id: string; state: string };
    if (submitted.status !== 200 || state !== 'completed')
      throw new Error(`S-status: the task to read did not complete (${submitted.status}, ${state})`);
    const statusJson = await (
      await fetch(`http://127.0.0.1:${fanout.port}/v1/tasks/${id}`, { headers: { authorization: 'Bearer fk-bench' } })
    ).text();
    const taskFile = join(tmp.dir, 'task.json');
    writeFileSync(taskFile, statusJson);
    const plain = track(await startStatusEndpoint(taskFile));
    const get = (name: string, port: number, headers: Record<string, string>): Target => ({
      name,
      url: `http://127.0.0.1:${port}`,
      path: `/v1/tasks/${id}`,
      method: 'GET',
      headers,
    });
    const status = { fanout: [] as number[], plain: [] as number[] };
    const okRate = async (target: Target): Promise<number> => {
      const r = await load<{ rps: number; non2xx: number; errors: number }>({
        kind: 'throughput',
        target,
        connections: 16,
        seconds: 3,
      });
      if (r.non2xx > 0 || r.errors > 0)
        throw new Error(`S-status: ${target.name} answered ${r.non2xx} non-2xx and ${r.errors} errors`);
      return r.rps;
    };
    for (let r = 0; r < 3; r++) {
      status.fanout.push(await okRate(get('fanout', fanout.port, { authorization: 'Bearer fk-bench' })));
      status.plain.push(await okRate(get('plain', plain.port, {})));
    }
    rows.push([
      'S-status',
      `GET /v1/tasks/:id of a completed task (${fmt(statusJson.length)} bytes of JSON), 16 connections, 3 × 3 s interleaved, median`,
      `${fmt(median(status.fanout))}/s (key checked, tenant checked, task read)`,
      `bare node:http serving the same JSON from a Map: ${fmt(median(status.plain))}/s`,
      `${fmt(median(status.fanout) / median(status.plain), 2)} × bare (goal ≥ 0.8)`,
    ]);

    say('WebSocket events');
    const streams = 54;
    const ws = await load<{
      events: number;
      perSecond: number;
      min: number;
      p50: number;
      p99: number;
      failures: number;
    }>({
      kind: 'events',
      url: `ws://127.0.0.1:${fanout.port}/v1/stream`,
      key: 'fk-bench',
      request: { model: 'mock:stream', messages: [{ role: 'user', content: 'Stream something.' }], stream: true },
      inFlight: streams,
      seconds: 5,
    });
    rows.push([
      'S-events',
      `WebSocket /v1/stream: ${streams} streamed tasks at a time (100 deltas 5 ms apart each) for 5 s; delay from the server's timestamp (\`at\`) to arrival`,
      `${fmt(ws.perSecond)} events/s, p50 ${fmt(ws.p50, 3)} ms · p99 ${fmt(ws.p99, 3)} ms (min ${fmt(ws.min, 3)} ms; ${fmt(ws.events)} events, ${ws.failures} failed tasks)`,
      '—',
      'goal p99 ≤ 5 ms at 10,000 events/s',
    ]);

    say('Fastify and Hono on the same gateway path');
    const fastify = track(await startFramework('fastify', up0.port));
    const hono = track(await startFramework('hono', up0.port));
    const f = { ...t.fanout, name: 'fastify', url: `http://127.0.0.1:${fastify.port}` };
    const h = { ...t.fanout, name: 'hono', url: `http://127.0.0.1:${hono.port}` };
    const fl = await latencies([t.direct, f, h], 3000, 500, 3);
    const ft = { fastify: await throughputUnder(f, 10, 3, 256), hono: await throughputUnder(h, 10, 3, 256) };
    rows.push([
      'G-framework',
      'the gateway path (key, validation, engine, OpenAI answer) on Fastify 5 and on Hono 4 + @hono/node-server, 0 ms upstream',
      `Fastify: added p50 +${us(fl.fastify!.added50)} · p99 +${us(fl.fastify!.added99)}; ${rate(ft.fastify)}`,
      `Hono: added p50 +${us(fl.hono!.added50)} · p99 +${us(fl.hono!.added99)}; ${rate(ft.hono)}`,
      `Fastify ${fmt(ft.fastify.rps / ft.hono.rps, 2)} × Hono's rate (fanout serves on Fastify)`,
    ]);
    for (const p of running.splice(0)) await p.stop();

    // ── 20 ms upstream ──
    const up20 = track(await startUpstream(20));
    const bare20 = track(await startBareProxy(up20.port));
    const portkey20 = track(await startPortkey());
    const fanout20 = track(await startFanout(up20.port, join(tmp.dir, 'upstream-20ms')));
    const t20 = chatTargets({ upstream: up20.port, bare: bare20.port, portkey: portkey20.port, fanout: fanout20.port });
    say('latency, 20 ms upstream');
    rows.push(
      latencyRow(
        'G-latency (20 ms)',
        'the same, 20 ms upstream; 3 runs × 1,000 interleaved samples (3,000 in all), median of runs',
        await latencies([t20.direct, t20.bare, t20.portkey, t20.fanout], 1000, 250, 3),
      ),
    );
    return rows;
  } finally {
    for (const p of running) await p.stop();
    tmp.remove();
  }
}
