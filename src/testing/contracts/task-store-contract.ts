import { afterEach, describe, expect, it } from 'vitest';
import type { TaskRow, TaskStore } from '../../contracts/task-store.js';

export function taskRow(id: string, extra: Partial<TaskRow> = {}): TaskRow {
  return {
    id,
    seq: Number(id.replace(/\D/g, '')) || 0,
    key: 'mock:m',
    request: { model: 'mock:m', messages: [{ role: 'user', content: `prompt of ${id}` }], maxTokens: 64 },
    state: 'queued',
    submittedAt: 1000,
    readyAt: 0,
    attempts: [],
    queuedMs: 0,
    rateLimitedMs: 0,
    providerMs: 0,
    ...extra,
  };
}

const completed = (id: string, attempt: string, text = 'answer'): Partial<TaskRow> => ({
  state: 'completed',
  leaseAttempt: attempt,
  leaseUntil: 61_000,
  endedAt: 2000,
  attempts: [{ attempt: 1, startedAt: 1500, endedAt: 2000, outcome: 'completed' }],
  result: {
    text,
    usage: { inputTokens: 3, outputTokens: 4, cacheReadTokens: 0, cacheWriteTokens: 0 },
    finishReason: 'stop',
    model: 'm',
  },
  providerMs: 500,
  queuedMs: 500,
});

/** The behaviour every TaskStore must show; run against each implementation. */
export function taskStoreContract(name: string, makeStore: () => TaskStore | Promise<TaskStore>): void {
  describe(`TaskStore contract: ${name}`, () => {
    const opened: TaskStore[] = [];
    const open = async (): Promise<TaskStore> => {
      const store = await makeStore();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    writeCases(open);
    batchCases(open);
    recordCases(open);

    it('can be closed twice', async () => {
      const store = await makeStore();
      await store.close();
      await store.close();
    });
  });
}

/** The contract, continued: writes, ended tasks, leases and rows that cannot be kept. */
function writeCases(open: () => Promise<TaskStore>): void {
  it('keeps a task whole, and its later states', async () => {
    const store = await open();
    expect(await store.write([taskRow('t1', { batchId: 'b', line: 3 })], 1000)).toEqual({ ended: [], leased: [] });
    expect(await store.get('t1')).toEqual(taskRow('t1', { batchId: 'b', line: 3 }));
    await store.write([taskRow('t1', { batchId: 'b', line: 3, ...completed('t1', 't1:1') })], 2000);
    expect(await store.get('t1')).toEqual(taskRow('t1', { batchId: 'b', line: 3, ...completed('t1', 't1:1') }));
    expect(await store.get('nope')).toBeUndefined();
  });

  it('never changes a task that has ended', async () => {
    const store = await open();
    await store.write([taskRow('t1', completed('t1', 't1:1', 'first'))], 2000);
    const again = await store.write([taskRow('t1', completed('t1', 't1:2', 'second')), taskRow('t2')], 3000);
    expect(again).toEqual({ ended: ['t1'], leased: [] });
    expect((await store.get('t1'))?.result?.text).toBe('first');
    expect((await store.get('t2'))?.state).toBe('queued');
  });

  it('commits a result only from the attempt that holds the lease, until the lease runs out', async () => {
    const store = await open();
    await store.write([taskRow('t1', { state: 'processing', leaseAttempt: 't1:1', leaseUntil: 5000 })], 1000);
    expect(await store.write([taskRow('t1', completed('t1', 't1:2'))], 4999)).toEqual({ ended: [], leased: ['t1'] });
    expect((await store.get('t1'))?.state).toBe('processing');
    // Once the lease has run out, another attempt may take the task.
    await store.write([taskRow('t1', { state: 'processing', leaseAttempt: 't1:2', leaseUntil: 9000 })], 5000);
    expect(await store.write([taskRow('t1', completed('t1', 't1:1', 'late'))], 5001)).toEqual({
      ended: [],
      leased: ['t1'],
    });
    expect(await store.write([taskRow('t1', completed('t1', 't1:2', 'holder'))], 5002)).toEqual({
      ended: [],
      leased: [],
    });
    expect((await store.get('t1'))?.result?.text).toBe('holder');
  });

  it('leaves out a row it cannot serialise, reports it, and stores the rest of the same write', async () => {
    const store = await open();
    const deep: Record<string, unknown> = {};
    let level = deep;
    for (let i = 0; i < 20_000; i++) level = level.a = {};
    const poison = taskRow('t2', {
      request: {
        model: 'mock:m',
        messages: [{ role: 'user', content: 'x' }],
        providerOptions: { budget: 10n as unknown as number },
      },
    });
    const tooDeep = taskRow('t3', {
      request: { model: 'mock:m', messages: [{ role: 'user', content: 'x' }], providerOptions: deep },
    });
    expect(await store.write([taskRow('t1'), poison, tooDeep, taskRow('t4')], 1000)).toEqual({
      ended: [],
      leased: [],
      unwritable: ['t2', 't3'],
    });
    expect([
      (await store.get('t1'))?.state,
      await store.get('t2'),
      await store.get('t3'),
      (await store.get('t4'))?.state,
    ]).toEqual(['queued', undefined, undefined, 'queued']);
  });
}

/** The contract, continued: batches and recovery. */
function batchCases(open: () => Promise<TaskStore>): void {
  it('lists a batch by line', async () => {
    const store = await open();
    await store.write(
      [
        taskRow('t1', { batchId: 'b', line: 9 }),
        taskRow('t2', { batchId: 'b', line: 2 }),
        taskRow('t3', { batchId: 'c', line: 1 }),
        taskRow('t4'),
      ],
      1000,
    );
    expect((await store.listBatch('b')).map((r) => [r.id, r.line])).toEqual([
      ['t2', 2],
      ['t1', 9],
    ]);
    expect(await store.listBatch('none')).toEqual([]);
  });

  it('forgets a whole batch and nothing else', async () => {
    const store = await open();
    await store.write(
      [
        taskRow('t1', { batchId: 'b', line: 1 }),
        taskRow('t2', { batchId: 'b', line: 2, ...completed('t2', 't2:1') }),
        taskRow('t3', { batchId: 'c', line: 1 }),
      ],
      1000,
    );
    expect(await store.deleteBatch('b')).toBe(2);
    expect(await store.listBatch('b')).toEqual([]);
    expect((await store.get('t3'))?.batchId).toBe('c');
  });

  it('recovers every task that has not ended, in submission order, putting lost attempts back in the queue', async () => {
    const store = await open();
    await store.write(
      [
        taskRow('t3', { seq: 3, state: 'rate_limited', readyAt: 7000 }),
        taskRow('t1', {
          seq: 1,
          state: 'processing',
          leaseAttempt: 't1:1',
          leaseUntil: 99_000,
          attempts: [{ attempt: 1, startedAt: 1500 }],
        }),
        taskRow('t2', { seq: 2, ...completed('t2', 't2:1') }),
        taskRow('t4', { seq: 4 }),
      ],
      2000,
    );
    const open1 = await store.recover(3000);
    expect(open1.map((r) => [r.id, r.state, r.readyAt])).toEqual([
      ['t1', 'queued', 0],
      ['t3', 'rate_limited', 7000],
      ['t4', 'queued', 0],
    ]);
    expect(open1[0]?.attempts).toEqual([
      {
        attempt: 1,
        startedAt: 1500,
        endedAt: 3000,
        outcome: 'failed',
        error: { code: 'network', message: 'the process running this attempt stopped before it ended' },
      },
    ]);
    expect(open1[0]?.leaseAttempt).toBeUndefined();
    expect((await store.get('t1'))?.state).toBe('queued');
  });
}

/** The contract, continued: records, pruning and closing. */
function recordCases(open: () => Promise<TaskStore>): void {
  it('keeps batch and run records, and lists those still running, oldest first', async () => {
    const store = await open();
    await store.putRecord({
      id: 'b2',
      kind: 'batch',
      tenant: 'acme',
      createdAt: 2000,
      state: 'running',
      data: { invalid: [] },
    });
    await store.putRecord({
      id: 'b1',
      kind: 'batch',
      tenant: 'acme',
      createdAt: 1000,
      state: 'running',
      data: { invalid: [{ line: 3 }] },
    });
    await store.putRecord({
      id: 'r1',
      kind: 'run',
      tenant: 'globex',
      createdAt: 500,
      state: 'running',
      data: { steps: {} },
    });
    const ended = {
      id: 'b2',
      kind: 'batch',
      tenant: 'acme',
      createdAt: 2000,
      state: 'completed',
      data: { invalid: [], done: true },
    } as const;
    await store.putRecord(ended);
    expect(await store.getRecord('b2')).toEqual(ended);
    expect((await store.openRecords('batch')).map((r) => r.id)).toEqual(['b1']);
    expect((await store.openRecords('run')).map((r) => r.id)).toEqual(['r1']);
    expect(await store.getRecord('none')).toBeUndefined();
  });

  it('prunes what ended before a time: old ended tasks and records with their tasks, never anything unfinished or a running batch’s tasks', async () => {
    const store = await open();
    const ended = (id: string, endedAt: number, extra: Partial<TaskRow> = {}) =>
      taskRow(id, { ...completed(id, `${id}:1`), endedAt, ...extra });
    await store.write(
      [
        ended('old', 1000),
        ended('new', 9000),
        taskRow('open'),
        ended('ofDone', 8000, { batchId: 'done', line: 1 }),
        ended('ofRunning', 1000, { batchId: 'going', line: 1 }),
      ],
      500,
    );
    await store.putRecord({ id: 'done', kind: 'batch', tenant: 't', createdAt: 1000, state: 'completed', data: {} });
    await store.putRecord({ id: 'going', kind: 'batch', tenant: 't', createdAt: 1000, state: 'running', data: {} });
    expect(await store.prune(5000)).toEqual({ tasks: 2, records: 1 });
    const left = await Promise.all(
      ['old', 'new', 'open', 'ofDone', 'ofRunning'].map(async (id) => (await store.get(id))?.id),
    );
    expect(left).toEqual([undefined, 'new', 'open', undefined, 'ofRunning']);
    expect(await store.getRecord('done')).toBeUndefined();
    expect((await store.getRecord('going'))?.state).toBe('running');
  });
}
