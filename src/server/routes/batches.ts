import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FanoutError } from '../../contracts/errors.js';
import { batchLines } from '../batches.js';
import { pageOf } from '../runs.js';
import type { ServerParts } from './parts.js';

/** Batches over HTTP: submit, read the counts, cancel, and stream the results in input order. */
export function registerBatchRoutes(app: FastifyInstance, parts: ServerParts): void {
  const { batches, holdOpen } = parts;
  app.post('/v1/batches', async (request, reply) => {
    const batch = await batches.create(request.tenant, batchLines(request.body));
    return reply.code(202).send(batches.summary(batch));
  });

  const ownBatch = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    const batch = await batches.get(request.tenant, id);
    if (!batch) throw new FanoutError('unknown_task', `no batch with id ${id}`);
    return batch;
  };
  app.delete('/v1/batches/:id', async (request) => {
    const batch = await ownBatch(request);
    await batches.cancel(batch);
    return batches.summary(batch);
  });

  app.get('/v1/batches/:id', async (request) => batches.summary(await ownBatch(request)));

  app.get('/v1/batches/:id/results', async (request, reply) => {
    const batch = await ownBatch(request);
    const query = request.query as { offset?: string; limit?: string };
    const page = query.offset !== undefined || query.limit !== undefined ? pageOf(query) : undefined;
    holdOpen(request, reply);
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for await (const line of batches.results(batch, page)) {
      if (!reply.raw.write(line)) await new Promise((resolve) => reply.raw.once('drain', resolve));
    }
    reply.raw.end();
  });
}
