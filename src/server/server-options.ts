import type { Logger } from 'pino';
import type { FanoutEngine } from '../create-engine.js';
import type { TaskService } from '../core/task-service.js';
import type { ToolFunction } from '../pipeline/run.js';
import type { ApiKeys } from './api-keys.js';
import type { ConnectionLimits } from './connections.js';
import type { TenantQuotaOptions } from './tenant-quota.js';

export interface FanoutServerOptions {
  engine: FanoutEngine;
  /**
   * Where the task API, batches, pipeline runs and the WebSocket run their
   * tasks: by default `engine`; a `QueuedTasks` hands them to the workers of
   * a Redis. The gateway always answers on `engine`.
   */
  tasks?: TaskService;
  /** Keys and their tenants. With none, every request is the tenant "default" (for loopback use). */
  keys?: ApiKeys;
  /** Largest request body, in bytes. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Models listed by `GET /v1/models`. */
  models?: readonly string[];
  /** Provider for bare model names in the gateway (`gpt-4o-mini` → `openai:gpt-4o-mini`). */
  defaultProvider?: string;
  /** Most lines one `POST /v1/batches` may carry. Default 50,000. */
  maxBatchLines?: number;
  /** Browser origins allowed to open the WebSocket (besides the server's own). Default none. */
  allowedOrigins?: readonly string[];
  /** Largest WebSocket message, in bytes. Default 64 KiB. */
  maxFrameBytes?: number;
  /** Tasks one WebSocket may follow at once. Default 1,000. */
  maxSubscriptions?: number;
  /**
   * The operator's keys for `GET /metrics`, which names every tenant's models,
   * pipelines and steps. With tenant keys and no operator key, `/metrics` is
   * refused. Without any keys (loopback use) it is open like every route.
   */
  metricsKeys?: ApiKeys;
  /** Each tenant's own request quota at the gateway (`/v1/chat/completions`). Default: none. */
  tenantQuota?: TenantQuotaOptions;
  /** Request timeouts and connection caps; each field has its default. */
  connections?: ConnectionLimits;
  /**
   * How long ended tasks, batches and runs are kept in the store, in ms: a
   * sweep every minute removes what ended longer ago (nothing unfinished, and
   * no task of a batch still running). Default 7 days; 0 keeps everything.
   */
  retentionMs?: number;
  /**
   * Where request logs go (one JSON line per request: method, path, status,
   * time, tenant). Never bodies, prompts, answers, keys or query strings.
   * Default: no logs.
   */
  logger?: Logger;
  /** The functions pipeline runs' tool steps and agent steps may call, by name (the operator's code). Default none. */
  tools?: Readonly<Record<string, ToolFunction>>;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}
