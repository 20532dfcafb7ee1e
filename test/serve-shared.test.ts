import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import { startServe } from './processes/serve-process.js';
import { startWorker } from './processes/worker-process.js';

/**
 * Two `fanout serve --redis` behind a (pretend) load balancer and one
 * `fanout worker`: work accepted by either server runs on the worker (the
 * servers run none themselves, `--work 0`), and either server reads it,
 * follows it (server-sent events, WebSocket) and cancels it.
 */
const headers = { authorization: 'Bearer fk-test' };
const json = { ...headers, 'content-type': 'application/json' };

const calls = (dir: string): string[] =>
  existsSync(join(dir, 'calls.jsonl')) ? readFileSync(join(dir, 'calls.jsonl'), 'utf8').trim().split('\n') : [];

/** A config every process shares; the worker logs the calls it makes in `calls.jsonl`. */
function sharedDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-serve-shared-'));
  writeFileSync(
    join(dir, 'fanout.yaml'),
    'providers:\n  mock:\n    callLog: calls.jsonl\n    models:\n      quick: { latency: 100 }\n      streamed: { timeToFirstTokenMs: 500, interTokenMs: 20 }\n      step: { latency: 2000 }\n      slow: { latency: 20000 }\n',
  );
  return dir;
}

/** The server-sent events of a task, as `event` names with their data, until the stream closes. */
async function serverSentEvents(url: string): Promise<Array<{ event: string; data: Record<string, unknown> }>> {
  const text = await (await fetch(url, { headers })).text();
  return text
    .trim()
    .split('\n\n')
    .map((block) => {
      const [event, data] = block.split('\n') as [string, string];
      return { event: event.slice('event: '.length), data: JSON.parse(data.slice('data: '.length)) };
    });
}

/** Starts a two-step pipeline run on `model` (the second step reads the first's output); resolves with its id. */
async function startRun(address: string, model: string): Promise<string> {
  const response = await fetch(`${address}/v1/runs`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({
      pipeline: {
        steps: {
          first: { model, prompt: 'first' },
          second: { model, prompt: '{{ steps.first.output }}' },
        },
      },
    }),
  });
  return ((await response.json()) as { id: string }).id;
}

/** The run as `address` shows it, once it is no longer running. */
async function runEnd(address: string, id: string): Promise<{ state: string }> {
  for (;;) {
    const view = (await (await fetch(`${address}/v1/runs/${id}`, { headers })).json()) as { state: string };
    if (view.state !== 'running') return view;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Two servers on database `db` of the test Redis (no other test's workers meet them), leaving the queue to workers. */
async function twoServers(db: number) {
  const url = `${inject('redisUrl')}/${db}`;
  const dir = sharedDir();
  const serveArgs = ['--config', 'fanout.yaml', '--redis', url, '--work', '0'];
  const [a, b] = await Promise.all([startServe(serveArgs, {}, dir), startServe(serveArgs, {}, dir)]);
  return { url, dir, a, b };
}

describe('fanout serve --redis with fanout workers', () => {
  it('runs work accepted by either server on the workers, and either server reads, follows and cancels it', async () => {
    const { url, dir, a, b } = await twoServers(10);
    const worker = startWorker(dir, ['--redis', url, '--config', 'fanout.yaml', '--concurrency', '4']);
    try {
      await worker.ready;
      // A task submitted to A, followed on B from before it starts to its end.
      const { id } = (await (
        await fetch(`${a.address}/v1/tasks`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({
            model: 'mock:streamed',
            stream: true,
            messages: [{ role: 'user', content: 'shared hello' }],
          }),
        })
      ).json()) as { id: string };
      const events = await serverSentEvents(`${b.address}/v1/tasks/${id}/events`);
      expect(events[0]?.event).toBe('acknowledged');
      // The answer's pieces as the worker streams them: told through Redis, word by word.
      const deltas = events.filter((e) => e.event === 'delta').map((e) => e.data.text as string);
      expect(deltas.length).toBeGreaterThan(5);
      const last = events.at(-1);
      expect(last?.event).toBe('response');
      expect((last?.data.result as { text: string }).text.length).toBeGreaterThan(0);
      const onA = (await (await fetch(`${a.address}/v1/tasks/${id}`, { headers })).json()) as {
        state: string;
        result: { text: string };
      };
      expect(onA.state).toBe('completed');
      expect(onA.result.text).toBe((last?.data.result as { text: string }).text);
      expect(deltas.join('')).toBe(onA.result.text);
      // The worker made the call; neither server did.
      expect(calls(dir)).toHaveLength(1);

      // A batch sent to B, its results read from A in input order.
      const lines = Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({ id: `q${i}`, model: 'mock:quick', prompt: `question ${i}` }),
      ).join('\n');
      const batch = (await (
        await fetch(`${b.address}/v1/batches`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/x-ndjson' },
          body: lines,
        })
      ).json()) as { id: string };
      const results = await (await fetch(`${a.address}/v1/batches/${batch.id}/results`, { headers })).text();
      expect(
        results
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as { custom_id: string; fanout: { state: string } })
          .map((line) => `${line.custom_id}:${line.fanout.state}`),
      ).toEqual(Array.from({ length: 12 }, (_, i) => `q${i}:completed`));

      // A pipeline run on A: its calls run on the worker too.
      const before = calls(dir).length;
      const run = await startRun(a.address, 'mock:step');
      // Followed over B's WebSocket, though A runs it.
      const follower = new WebSocket(`${b.address.replace('http', 'ws')}/v1/stream`, { headers });
      await new Promise((resolve) => follower.once('open', resolve));
      const told: Array<Record<string, unknown>> = [];
      const runEnded = new Promise<void>((resolve) =>
        follower.on('message', (data) => {
          const message = JSON.parse(data.toString()) as Record<string, unknown>;
          told.push(message);
          if (message.type === 'response' || message.type === 'error') resolve();
        }),
      );
      follower.send(JSON.stringify({ type: 'subscribe', run }));
      expect(await runEnd(a.address, run)).toMatchObject({ state: 'completed' });
      await runEnded;
      follower.close();
      expect(told[0]).toMatchObject({ type: 'acknowledged', run });
      expect(told.at(-1)).toMatchObject({
        type: 'response',
        run,
        state: 'completed',
        steps: { first: { state: 'completed' }, second: { state: 'completed' } },
      });
      expect(calls(dir).length).toBe(before + 2);

      // A slow task submitted on B over its WebSocket, cancelled through A while the worker runs it.
      const socket = new WebSocket(`${b.address.replace('http', 'ws')}/v1/stream`, { headers });
      await new Promise((resolve) => socket.once('open', resolve));
      const messages: Array<Record<string, unknown>> = [];
      const ended = new Promise<void>((resolve) =>
        socket.on('message', (data) => {
          const message = JSON.parse(data.toString()) as Record<string, unknown>;
          messages.push(message);
          if (message.type === 'error' || message.type === 'response') resolve();
        }),
      );
      socket.send(
        JSON.stringify({
          type: 'submit',
          request: { model: 'mock:slow', messages: [{ role: 'user', content: 'long' }] },
        }),
      );
      while (!messages.some((m) => m.type === 'state' && m.state === 'processing'))
        await new Promise((resolve) => setTimeout(resolve, 20));
      const slow = messages[0]?.task as string;
      const cancelled = (await (
        await fetch(`${a.address}/v1/tasks/${slow}`, { method: 'DELETE', headers })
      ).json()) as {
        state: string;
      };
      expect(cancelled.state).toBe('cancelled');
      await ended;
      expect(messages.at(-1)).toMatchObject({ type: 'error', task: slow, state: 'cancelled' });
      socket.close();
      const onB = (await (await fetch(`${b.address}/v1/tasks/${slow}`, { headers })).json()) as { state: string };
      expect(onB.state).toBe('cancelled');
    } finally {
      await worker.stop();
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
    }
  }, 60_000);

  it('loses nothing a server accepted when that server is killed: the workers finish it, the other server answers', async () => {
    const { url, dir, a, b } = await twoServers(11);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${a.address}/v1/tasks`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ model: 'mock:quick', messages: [{ role: 'user', content: `accepted ${i}` }] }),
      });
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { id: string }).id);
    }
    // Accepted, then the server that accepted them dies before any worker exists.
    a.child.kill('SIGKILL');
    await a.exited;
    const worker = startWorker(dir, ['--redis', url, '--config', 'fanout.yaml', '--concurrency', '8']);
    try {
      await worker.ready;
      const states = async () =>
        Promise.all(
          ids.map(
            async (id) =>
              ((await (await fetch(`${b.address}/v1/tasks/${id}`, { headers })).json()) as { state: string }).state,
          ),
        );
      let now = await states();
      while (now.some((state) => state !== 'completed')) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        now = await states();
      }
      expect(now).toEqual(ids.map(() => 'completed'));
      expect(calls(dir)).toHaveLength(20);
    } finally {
      await worker.stop();
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    }
  }, 60_000);

  it('takes over a pipeline run whose server died: another server runs it to its end, each call made once', async () => {
    const { url, dir, a, b } = await twoServers(14);
    const worker = startWorker(dir, ['--redis', url, '--config', 'fanout.yaml', '--concurrency', '4']);
    try {
      await worker.ready;
      const run = await startRun(a.address, 'mock:step');
      // A dies while the first step's call runs on the worker.
      while (calls(dir).length < 1) await new Promise((resolve) => setTimeout(resolve, 50));
      a.child.kill('SIGKILL');
      await a.exited;
      expect(await runEnd(b.address, run)).toMatchObject({
        state: 'completed',
        steps: { first: { state: 'completed' }, second: { state: 'completed' } },
      });
      expect(calls(dir)).toHaveLength(2);
    } finally {
      await worker.stop();
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    }
  }, 60_000);
});
