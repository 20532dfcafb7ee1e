import { describe, expect, it } from 'vitest';
import { EventHub, type EngineEvent } from './events.js';

const RESULT = {
  text: '',
  usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
  finishReason: 'stop' as const,
  model: 'mock:m',
};
const event = (
  taskId: string,
  type: 'task-queued' | 'task-started' | 'task-completed' = 'task-queued',
): EngineEvent => {
  const base = { at: 0, taskId, key: 'mock:m' };
  if (type === 'task-queued') return { ...base, type, state: 'queued' };
  if (type === 'task-started') return { ...base, type, state: 'processing', attempt: 1 };
  return { ...base, type, state: 'completed', result: RESULT };
};

describe('EventHub', () => {
  it('hands a task’s events only to that task’s followers: 8,000 idle followers are never called for other tasks', async () => {
    const hub = new EventHub();
    let calls = 0;
    const streams = [];
    for (let i = 0; i < 4000; i++) {
      hub.onTask(`idle-${i}`, () => (calls += 1));
      streams.push(hub.stream({ taskIds: [`idle-stream-${i}`] }));
    }
    const seen: string[] = [];
    hub.onTask('busy', (e) => seen.push(e.type));
    for (let i = 0; i < 5000; i++) hub.emit(event(`other-${i}`));
    hub.emit(event('busy', 'task-started'));
    expect(calls).toBe(0);
    expect(seen).toEqual(['task-started']);
    // The streams heard nothing either: each ends empty when the hub closes.
    hub.close();
    const firsts = await Promise.all(streams.slice(0, 10).map((s) => s.next()));
    expect(firsts.every((r) => r.done)).toBe(true);
  });

  it('stops a task listener once, and forgets the task when its last listener goes', () => {
    const hub = new EventHub();
    const heard: string[] = [];
    const stopA = hub.onTask('t', () => heard.push('a'));
    const stopB = hub.onTask('t', () => heard.push('b'));
    hub.emit(event('t'));
    stopA();
    stopA();
    hub.emit(event('t'));
    stopB();
    expect(hub.active).toBe(false);
    hub.emit(event('t'));
    expect(heard).toEqual(['a', 'b', 'b']);
  });

  it('a stream over several tasks ends on `until` and hears each task once', async () => {
    const hub = new EventHub();
    const stream = hub.stream({ taskIds: ['a', 'b', 'a'], until: (e) => e.type === 'task-completed' });
    hub.emit(event('a'));
    hub.emit(event('c'));
    hub.emit(event('b', 'task-completed'));
    hub.emit(event('a'));
    const got: string[] = [];
    for await (const e of stream) got.push(`${'taskId' in e ? e.taskId : ''}:${e.type}`);
    expect(got).toEqual(['a:task-queued', 'b:task-completed']);
    expect(hub.active).toBe(false);
  });
});
