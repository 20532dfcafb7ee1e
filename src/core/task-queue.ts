import type { Task } from './task.js';

interface Level {
  priority: number;
  items: Task[];
  head: number;
}

/**
 * Waiting tasks in the order they should run: higher priority first, then
 * lower `seq` (earlier submission). One array per priority, so the common
 * case (a new task, the newest of its priority) is an O(1) append and taking
 * the next task is O(1); a retried task, older than some waiting ones, is
 * put back in its place by binary search.
 */
export class TaskQueue {
  private levels: Level[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(task: Task): void {
    const level = this.levelFor(task.priority);
    const { items } = level;
    const last = items[items.length - 1];
    if (items.length === level.head || (last as Task).seq < task.seq) {
      items.push(task);
    } else {
      let low = level.head;
      let high = items.length;
      while (low < high) {
        const mid = (low + high) >> 1;
        if ((items[mid] as Task).seq < task.seq) low = mid + 1;
        else high = mid;
      }
      items.splice(low, 0, task);
    }
    this.count += 1;
  }

  peek(): Task | undefined {
    const level = this.levels[0];
    return level ? level.items[level.head] : undefined;
  }

  pop(): Task | undefined {
    const level = this.levels[0];
    if (!level) return undefined;
    const task = level.items[level.head] as Task;
    level.items[level.head] = undefined as unknown as Task;
    level.head += 1;
    this.count -= 1;
    if (level.head === level.items.length) {
      this.levels.shift();
    } else if (level.head >= 1024 && level.head * 2 >= level.items.length) {
      level.items = level.items.slice(level.head);
      level.head = 0;
    }
    return task;
  }

  private levelFor(priority: number): Level {
    let index = 0;
    while (index < this.levels.length && (this.levels[index] as Level).priority > priority) index += 1;
    const found = this.levels[index];
    if (found && found.priority === priority) return found;
    const level: Level = { priority, items: [], head: 0 };
    this.levels.splice(index, 0, level);
    return level;
  }
}
