import type { FastifyInstance } from 'fastify';
import { FanoutError } from '../../contracts/errors.js';
import type { TaskRequest } from '../../contracts/types.js';
import { errorBody } from '../../openai/wire.js';
import { send } from '../http-errors.js';
import { SHUTTING_DOWN } from '../shutting-down.js';
import { streamTaskEvents } from '../task-events.js';
import { notFound, ownTask, type ServerParts } from './parts.js';

/** The task API: submit (acknowledged once stored, or answered at the end with ?wait=1), read, cancel, follow as server-sent events. */
export function registerTaskRoutes(app: FastifyInstance, parts: ServerParts): void {
  const { tasks, holdOpen, untilEnd, ending } = parts;
  app.post('/v1/tasks', async (request, reply) => {
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return send(reply, new FanoutError('invalid_request', '(root): expected a JSON object'));
    const handle = tasks.submit({ ...(body as TaskRequest), tenant: request.tenant });
    const query = request.query as { wait?: string };
    const wait = query.wait === '1' || query.wait === 'true' || /\bwait\b/i.test(String(request.headers.prefer ?? ''));
    // Acknowledged once stored (by the next group write, a few ms away): a crash after the answer loses nothing.
    if (!wait) {
      await tasks.written();
      return reply.code(202).send({ id: handle.id, state: handle.status().state });
    }
    holdOpen(request, reply);
    if ((await untilEnd(handle)) === 'ending')
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ id: handle.id, state: handle.status().state, ...errorBody(SHUTTING_DOWN.code, SHUTTING_DOWN.message) });
    return reply.code(200).send(handle.status());
  });

  app.get('/v1/tasks/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const status = await ownTask(tasks, request.tenant, id);
    return status ? reply.send(status) : send(reply, notFound(id));
  });

  app.delete('/v1/tasks/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await ownTask(tasks, request.tenant, id))) return send(reply, notFound(id));
    await tasks.cancel(id);
    return reply.send({ id, state: (await tasks.find(id))?.state });
  });

  app.get('/v1/tasks/:id/events', async (request, reply) => {
    const { id } = request.params as { id: string };
    const status = await ownTask(tasks, request.tenant, id);
    if (!status) return send(reply, notFound(id));
    holdOpen(request, reply);
    return streamTaskEvents(tasks, status, reply, ending.signal);
  });
}
