import { describe, expect, it } from 'vitest';
import { seededRandom } from '../contracts/random.js';
import { Task, runsBefore } from './task.js';
import { TaskQueue } from './task-queue.js';

const task = (seq: number, priority = 0): Task =>
  new Task(`t${seq}`, seq, { model: 'mock:m', messages: [], priority }, 'k', 0);

describe('TaskQueue', () => {
  it('gives higher priority first and FIFO within a priority', () => {
    const queue = new TaskQueue();
    [task(0), task(1, 5), task(2), task(3, 5), task(4, -1)].forEach((t) => queue.push(t));
    const order: string[] = [];
    for (let t = queue.pop(); t; t = queue.pop()) order.push(t.id);
    expect(order).toEqual(['t1', 't3', 't0', 't2', 't4']);
    expect(queue.size).toBe(0);
  });

  it('puts a returning older task back in its place', () => {
    const queue = new TaskQueue();
    [task(1), task(3), task(5)].forEach((t) => queue.push(t));
    queue.push(task(2));
    queue.push(task(0));
    expect([queue.pop(), queue.pop(), queue.pop(), queue.pop(), queue.pop()].map((t) => t?.seq)).toEqual([
      0, 1, 2, 3, 5,
    ]);
  });

  it('agrees with a full sort under random pushes and pops', () => {
    const random = seededRandom(9);
    const queue = new TaskQueue();
    const reference: Task[] = [];
    let seq = 0;
    const used = new Set<number>();
    for (let step = 0; step < 20_000; step++) {
      if (random.next() < 0.6 || reference.length === 0) {
        // Mostly new tasks; sometimes an old one coming back from a retry.
        let s = random.next() < 0.9 ? 2 * seq++ : 2 * Math.floor(random.next() * seq) + 1;
        while (used.has(s)) s = 2 * seq++;
        used.add(s);
        const t = task(s, Math.floor(random.next() * 3));
        queue.push(t);
        reference.push(t);
      } else {
        reference.sort((a, b) => (runsBefore(a, b) ? -1 : 1));
        expect(queue.pop()).toBe(reference.shift());
      }
      expect(queue.size).toBe(reference.length);
    }
  });
});
