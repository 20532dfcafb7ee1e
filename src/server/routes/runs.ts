import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FanoutError } from '../../contracts/errors.js';
import { pageOf, type ServerRun } from '../runs.js';
import type { ServerParts } from './parts.js';

/** Pipeline runs over HTTP: start (acknowledged once stored), read, cancel, and page through items and calls. */
export function registerRunRoutes(app: FastifyInstance, parts: ServerParts): void {
  const { runs } = parts;
  app.post('/v1/runs', async (request, reply) => {
    // Acknowledged once its record is stored: after a crash the run goes on, its calls under stable ids.
    const run = await runs.start(request.tenant, request.body);
    return reply.code(202).send(runs.view(run));
  });

  const ownRun = async (request: FastifyRequest): Promise<ServerRun> => {
    const { id } = request.params as { id: string };
    const run = await runs.get(request.tenant, id);
    if (!run) throw new FanoutError('unknown_task', `no run with id ${id}`);
    return run;
  };
  app.get('/v1/runs/:id', async (request) => runs.view(await ownRun(request)));
  app.delete('/v1/runs/:id', async (request) => {
    const run = await ownRun(request);
    runs.cancel(run);
    return runs.view(run);
  });
  app.get('/v1/runs/:id/steps/:step/items', async (request) =>
    runs.items(await ownRun(request), (request.params as { step: string }).step, pageOf(request.query)),
  );
  app.get('/v1/runs/:id/calls', async (request) => runs.calls(await ownRun(request), pageOf(request.query)));
}
