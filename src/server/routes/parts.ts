import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FanoutEngine } from '../../create-engine.js';
import { FanoutError } from '../../contracts/errors.js';
import type { TaskStatus } from '../../core/task.js';
import type { TaskService } from '../../core/task-service.js';
import type { FanoutMetrics } from '../../metrics/prometheus.js';
import type { ApiKeys } from '../api-keys.js';
import type { BatchRegistry } from '../batches.js';
import type { DashboardFeed } from '../dashboard/feed.js';
import type { TenantStreams } from '../connections.js';
import type { RunRegistry } from '../runs.js';
import type { FanoutServerOptions } from '../server-options.js';
import type { TenantQuota } from '../tenant-quota.js';

/** What the server's routes share: the engine and registries, the keys, and the server's ways of holding a connection and of ending. */
export interface ServerParts {
  /** Answers the gateway; its health and metrics are the server's. */
  engine: FanoutEngine;
  /** Runs the task API's, batches', runs' and sockets' tasks: the engine, or the queue of a Redis. */
  tasks: TaskService;
  options: FanoutServerOptions;
  keys: ApiKeys;
  metricsKeys: ApiKeys;
  batches: BatchRegistry;
  runs: RunRegistry;
  quota: TenantQuota | undefined;
  metrics: FanoutMetrics;
  streams: TenantStreams;
  /** The dashboard's live figures, per tenant. */
  dashboard: DashboardFeed;
  /** Aborted when the grace period of a shutdown is over: open streams and waits end with a final message. */
  ending: AbortController;
  /** Aborted when a shutdown starts. */
  stopping: AbortController;
  /** Counts a request that holds its connection open against its tenant, until the response closes. */
  holdOpen(request: FastifyRequest, reply: FastifyReply): void;
  /** Resolves when the task ends, or with 'ending' when the server's grace period is over first. */
  untilEnd(handle: { result(): Promise<unknown> }): Promise<'ended' | 'ending'>;
}

/** The task of `id` if it belongs to `tenant`, from memory or the store; another tenant's task is as unknown as a missing one. */
export async function ownTask(tasks: TaskService, tenant: string, id: string): Promise<TaskStatus | undefined> {
  const status = await tasks.find(id);
  return status && status.tenant === tenant ? status : undefined;
}

export const notFound = (id: string) => new FanoutError('unknown_task', `no task with id ${id}`);
