import { z } from 'zod';
import { taskRequestSchema } from '../core/validate.js';

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const error = { description: 'An error: { error: { code, message, type } }' };
const id = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
const page = [
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 1000 } },
];

/** The OpenAPI 3.1 description of the server's routes, with the task request schema taken from the validator itself. */
export function openApiDocument(): Record<string, unknown> {
  const taskRequest = z.toJSONSchema(taskRequestSchema, { unrepresentable: 'any' });
  return {
    openapi: '3.1.0',
    info: {
      title: 'fanout',
      version: '0.1.0',
      description:
        "Many LLM calls at once, as fast as the providers' rate limits allow. Task API and OpenAI-compatible gateway.",
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { TaskRequest: taskRequest },
    },
    security: [{ bearer: [] }],
    paths: { ...taskPaths(taskRequest), ...batchAndRunPaths(), ...servicePaths() },
  };
}

/** The task API's paths. */
function taskPaths(taskRequest: object): Record<string, unknown> {
  return {
    '/v1/tasks': {
      post: {
        summary: 'Submit a task; 202 with its id, or with ?wait=1 (or Prefer: wait) 200 with its end',
        parameters: [{ name: 'wait', in: 'query', schema: { type: 'string', enum: ['1', 'true'] } }],
        requestBody: json({ $ref: '#/components/schemas/TaskRequest' }),
        responses: {
          202: { description: '{ id, state }' },
          200: { description: 'the task status' },
          400: error,
          401: error,
          413: error,
        },
      },
    },
    '/v1/tasks/{id}': {
      get: {
        summary: 'A task: state, ETA, attempts, time split, usage, result',
        parameters: id,
        responses: { 200: { description: 'status' }, 404: error },
      },
      delete: {
        summary: 'Cancel a task',
        parameters: id,
        responses: { 200: { description: '{ id, state }' }, 404: error },
      },
    },
    '/v1/tasks/{id}/events': {
      get: {
        summary: "A task's events as server-sent events: acknowledged, state changes, deltas, response or error",
        parameters: id,
        responses: { 200: { description: 'text/event-stream' }, 404: error },
      },
    },
  };
}

/** The paths of batches and pipeline runs. */
function batchAndRunPaths(): Record<string, unknown> {
  return {
    '/v1/batches': {
      post: {
        summary: 'Submit a batch (JSON Lines, or a JSON array of lines, as fanout batch reads them)',
        responses: { 202: { description: '{ id, lines, counts }' }, 400: error },
      },
    },
    '/v1/batches/{id}': {
      get: {
        summary: 'State and counts per task state',
        parameters: id,
        responses: { 200: { description: '{ id, state, lines, counts }' }, 404: error },
      },
      delete: {
        summary: 'Cancel every line not yet ended',
        parameters: id,
        responses: { 200: { description: '{ id, state: cancelled, lines, counts }' }, 404: error },
      },
    },
    '/v1/batches/{id}/results': {
      get: {
        summary:
          'Results as JSON Lines in input order, each as soon as it has ended; offset and limit pick lines by position',
        parameters: [...id, ...page],
        responses: { 200: { description: 'application/x-ndjson' }, 400: error, 404: error },
      },
    },
    '/v1/runs': {
      post: {
        summary: 'Start a pipeline run: { pipeline, inputs }',
        responses: { 202: { description: 'the run' }, 400: error },
      },
    },
    '/v1/runs/{id}': {
      get: {
        summary:
          'A run: state, steps (list outputs cut to their first 100 items), the first 1,000 calls of its timeline',
        parameters: id,
        responses: { 200: { description: 'the run' }, 404: error },
      },
      delete: {
        summary: 'Cancel a run: calls in flight cancelled, later steps skipped',
        parameters: id,
        responses: { 200: { description: 'the run' }, 404: error },
      },
    },
    '/v1/runs/{id}/steps/{step}/items': {
      get: {
        summary: "One page of a list step's output items",
        parameters: [...id, { name: 'step', in: 'path', required: true, schema: { type: 'string' } }, ...page],
        responses: { 200: { description: '{ step, total, offset, items }' }, 400: error, 404: error },
      },
    },
    '/v1/runs/{id}/calls': {
      get: {
        summary: "One page of the run's timeline of calls",
        parameters: [...id, ...page],
        responses: { 200: { description: '{ total, offset, calls }' }, 400: error, 404: error },
      },
    },
  };
}

/** The stream socket, the gateway, metrics, health checks and this document. */
function servicePaths(): Record<string, unknown> {
  return {
    '/v1/stream': {
      get: {
        summary:
          'WebSocket: submit; subscribe or unsubscribe (task, batch, run, or dashboard: true); receives acknowledged, state, delta, response, error, dashboard. A browser names its key as the subprotocol fanout.key.<base64url key> beside fanout',
        responses: { 101: { description: 'switching protocols' }, 401: error, 403: error },
      },
    },
    '/v1/chat/completions': {
      post: {
        summary: 'OpenAI-compatible chat completions (stream and non-stream)',
        responses: {
          200: { description: 'chat.completion, or text/event-stream of chunks' },
          400: error,
          401: error,
        },
      },
    },
    '/v1/models': {
      get: {
        summary: "The configured models, in OpenAI's list shape",
        responses: { 200: { description: '{ object: list, data }' } },
      },
    },
    '/metrics': { get: { summary: 'Prometheus text', responses: { 200: { description: 'text/plain' } } } },
    '/healthz': { get: { summary: 'Alive', security: [], responses: { 200: { description: '{ ok: true }' } } } },
    '/readyz': {
      get: {
        summary: 'Ready, with pending tasks and calls in flight',
        security: [],
        responses: { 200: { description: '{ ready, pending, inFlight }' } },
      },
    },
    '/openapi.json': {
      get: { summary: 'This document', security: [], responses: { 200: { description: 'OpenAPI 3.1' } } },
    },
    '/': {
      get: {
        summary: 'The dashboard page (signs in with an API key, then reads the WebSocket)',
        security: [],
        responses: { 200: { description: 'text/html' } },
      },
    },
    '/dashboard/{file}': {
      get: {
        summary: "The dashboard's script and stylesheet (app.js, app.css)",
        security: [],
        parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: { description: 'the file' }, 404: { description: 'no such file' } },
      },
    },
  };
}
