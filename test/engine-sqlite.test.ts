import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import type { EventOf } from '../src/core/events.js';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.js';
import { ManualClock } from '../src/contracts/manual-clock.js';

describe('engine on a SQLite task store', () => {
  it('reports a full disk, keeps running, and writes the tasks once there is room again', async () => {
    const store = new SqliteTaskStore(join(mkdtempSync(join(tmpdir(), 'fanout-engine-')), 'fanout.db'));
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages + 1}`);
    const clock = new ManualClock();
    const engine = createEngine({ clock, store, cache: false });
    const events: Array<EventOf<'store-error'>> = [];
    engine.on('store-error', (event) => events.push(event));
    const handles = Array.from({ length: 100 }, (_, i) =>
      engine.submit({ model: 'mock:m', messages: [{ role: 'user', content: `${i} ${'x'.repeat(2000)}` }] }),
    );
    await clock.advance(10);
    expect(handles.every((h) => h.status().state === 'completed')).toBe(true);
    expect(events[0]?.error?.message).toMatch(/the disk is full; nothing stored so far was lost/);
    expect(store.get(handles[0]!.id)).toBeUndefined();
    // It tries again by itself every second, with nothing else changing.
    await clock.advance(1000);
    expect(events.length).toBe(2);

    store.db.pragma('max_page_count = 1073741823');
    await clock.advance(1000);
    expect(handles.map((h) => store.get(h.id)?.state)).toEqual(new Array(100).fill('completed'));
    expect(engine.storeHealth()).toEqual({ ok: true });
    await engine.close();
    store.close();
  });

  it('keeps a task out of the store when it is submitted with durable: false, and runs it the same', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fanout-engine-')), 'fanout.db');
    const store = new SqliteTaskStore(path);
    const clock = new ManualClock();
    const engine = createEngine({ clock, store, cache: false });
    const kept = engine.submit({ model: 'mock:m', messages: [{ role: 'user', content: 'kept' }] });
    const passing = engine.submit(
      { model: 'mock:m', messages: [{ role: 'user', content: 'passing' }] },
      { durable: false },
    );
    await clock.runAll();
    await engine.flush();
    expect([kept.status().state, passing.status().state]).toEqual(['completed', 'completed']);
    expect((await passing.result()).text).not.toBe('');
    expect(store.get(kept.id)?.state).toBe('completed');
    expect(store.get(passing.id)).toBeUndefined();
    await engine.close();
    store.close();
  });
});
