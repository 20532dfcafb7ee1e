import { Redis } from 'ioredis';
import type { TaskEvent } from '../core/events.js';
import type { TaskStatus } from '../core/task.js';

/** One task event as the feed carries it; the last of a task carries its final status too. */
export interface FedEvent {
  event: TaskEvent;
  status?: TaskStatus;
}

/**
 * Task events and cancellations between the processes of one Redis, by
 * pub/sub: a worker tells the events of the tasks it runs (grouped, one
 * message per turn of its event loop), any process that accepted work hears
 * them and tells its own listeners (SSE, WebSocket, a waiting request); a
 * cancellation asked of any process reaches the worker running the task.
 * What is told while a process is away from Redis is not heard: the task's
 * stored row stays the truth, and listeners that must not miss an end read it
 * (see `TaskQueue.ended`).
 */
export class TaskFeed {
  private readonly publisher: Redis;
  private subscriber: Redis | undefined;
  private readonly eventsChannel: string;
  private readonly cancelChannel: string;
  private outgoing: FedEvent[] = [];
  private readonly eventListeners = new Set<(fed: FedEvent) => void>();
  private readonly cancelListeners = new Set<(id: string) => void>();
  private readonly subscribed = new Map<string, Promise<unknown>>();

  constructor(
    private readonly url: string,
    prefix: string,
  ) {
    this.publisher = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false });
    this.publisher.on('error', () => undefined);
    this.eventsChannel = `${prefix}task-events`;
    this.cancelChannel = `${prefix}task-cancels`;
  }

  /** Tells `event` (and, at a task's end, its final `status`) to every process listening; sent at the end of this turn. */
  tell(event: TaskEvent, status?: TaskStatus): void {
    // The result goes once, in the event: the status is sent without it and given it back on arrival.
    this.outgoing.push(status ? { event, status: { ...status, result: undefined } } : { event });
    if (this.outgoing.length === 1) queueMicrotask(() => this.send());
  }

  private send(): void {
    const group = this.outgoing;
    this.outgoing = [];
    // Lost while Redis is away: the rows in the store still say how each task ended.
    this.publisher.publish(this.eventsChannel, JSON.stringify(group)).catch(() => undefined);
  }

  /** Asks whichever worker runs task `id` to cancel it. */
  async cancel(id: string): Promise<void> {
    await this.publisher.publish(this.cancelChannel, id);
  }

  /** Every task event told from now on; returns the stop. Resolves once listening. */
  async onEvent(listener: (fed: FedEvent) => void): Promise<() => void> {
    this.eventListeners.add(listener);
    await this.subscribe(this.eventsChannel);
    return () => this.eventListeners.delete(listener);
  }

  /** Every cancellation asked from now on; returns the stop. Resolves once listening. */
  async onCancel(listener: (id: string) => void): Promise<() => void> {
    this.cancelListeners.add(listener);
    await this.subscribe(this.cancelChannel);
    return () => this.cancelListeners.delete(listener);
  }

  /** Listens on `channel` (once): a worker hears only cancellations, never every other worker's events. */
  private subscribe(channel: string): Promise<unknown> {
    let subscribed = this.subscribed.get(channel);
    if (!subscribed) {
      subscribed = this.listener().subscribe(channel);
      this.subscribed.set(channel, subscribed);
    }
    return subscribed;
  }

  /** The connection that listens, made on first use; ioredis subscribes it again after a reconnect. */
  private listener(): Redis {
    if (this.subscriber) return this.subscriber;
    // A subscribed connection takes no other command.
    const subscriber = new Redis(this.url, { maxRetriesPerRequest: null });
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.cancelChannel) {
        for (const listener of this.cancelListeners) listener(text);
        return;
      }
      let group: FedEvent[];
      try {
        group = JSON.parse(text) as FedEvent[];
      } catch {
        return;
      }
      for (const fed of group) {
        if (fed.status && fed.event.type === 'task-completed') fed.status.result = fed.event.result;
        for (const listener of this.eventListeners) listener(fed);
      }
    });
    this.subscriber = subscriber;
    return subscriber;
  }

  async close(): Promise<void> {
    if (this.outgoing.length > 0) this.send();
    this.subscriber?.disconnect();
    await this.publisher.quit().catch(() => this.publisher.disconnect());
  }
}
