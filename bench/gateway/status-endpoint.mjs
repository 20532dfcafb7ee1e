// The anchor for S-status: a bare node:http server answering GET /v1/tasks/:id
// with a task's JSON, looked up in a Map and serialised per request, as a
// server keeping tasks in memory would. Usage: node status-endpoint.mjs FILE
// (FILE holds the task JSON to serve; its "id" is the id served). Prints its port.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const task = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const tasks = new Map([[task.id, task]]);

const server = createServer((req, res) => {
  const match = /^\/v1\/tasks\/([^/?]+)$/.exec(req.url ?? '');
  const found = match && req.method === 'GET' ? tasks.get(match[1]) : undefined;
  if (!found) return res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found"}}');
  const body = JSON.stringify(found);
  res
    .writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    .end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
