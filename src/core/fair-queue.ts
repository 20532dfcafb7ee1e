import { isTerminal } from '../contracts/task-state.js';
import { TaskQueue } from './task-queue.js';
import type { Task } from './task.js';

/** One tenant's waiting tasks on one limit key, and its place in the key's fair order. */
interface Lane {
  tenant: string;
  tasks: TaskQueue;
  /** Virtual time at which this lane's next task starts: advanced by 1 / weight per task started. */
  start: number;
}

/**
 * The waiting tasks of one limit key, shared between tenants by weighted fair
 * queuing (start-time fair queuing, one call as the unit): each tenant has a
 * lane in its own order (priority, then submission), and the next task comes
 * from the lane whose virtual start time is lowest. A tenant that joins finds
 * its lane at the key's current virtual time, so however many tasks another
 * tenant has queued, its first call waits for at most one call of each other
 * tenant. Priorities order a tenant's own lane only: no tenant's priority can
 * jump another tenant's work. With a single tenant this is its lane's order.
 */
export class FairQueue {
  private readonly lanes = new Map<string, Lane>();
  /** The virtual start time of the task taken last. */
  private now = 0;
  private count = 0;

  constructor(
    private readonly weightOf: (tenant: string) => number,
    /** Told of each ended task dropped from a lane's head. */
    private readonly onDropped: (task: Task) => void = () => {},
  ) {}

  get size(): number {
    return this.count;
  }

  push(task: Task): void {
    let lane = this.lanes.get(task.tenant);
    if (!lane) {
      lane = { tenant: task.tenant, tasks: new TaskQueue(), start: this.now };
      this.lanes.set(task.tenant, lane);
    }
    lane.tasks.push(task);
    this.count += 1;
  }

  /**
   * The task to run next among the lanes whose tenant `isOpen` allows, or
   * undefined. Ended tasks at the heads are dropped on the way; ties go to the
   * more urgent head (priority, then submission).
   */
  peek(isOpen: (tenant: string) => boolean): Task | undefined {
    let best: Lane | undefined;
    let bestHead: Task | undefined;
    for (const lane of this.lanes.values()) {
      const head = this.liveHead(lane);
      if (!head || !isOpen(lane.tenant)) continue;
      if (!best || lane.start < best.start || (lane.start === best.start && head.seq < (bestHead as Task).seq)) {
        best = lane;
        bestHead = head;
      }
    }
    return bestHead;
  }

  /** Takes `task`, which `peek` just returned, and moves its lane on by one call's turn. */
  take(task: Task): void {
    const lane = this.lanes.get(task.tenant) as Lane;
    lane.tasks.pop();
    this.count -= 1;
    this.now = lane.start;
    lane.start += 1 / this.weightOf(lane.tenant);
    if (lane.tasks.size === 0) this.lanes.delete(lane.tenant);
  }

  /** The lane's first task that has not ended; an empty lane is forgotten (an idle tenant banks no turns). */
  private liveHead(lane: Lane): Task | undefined {
    let head = lane.tasks.peek();
    while (head && isTerminal(head.state)) {
      lane.tasks.pop();
      this.count -= 1;
      this.onDropped(head);
      head = lane.tasks.peek();
    }
    if (!head) this.lanes.delete(lane.tenant);
    return head;
  }
}
