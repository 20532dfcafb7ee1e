// The anchor: a bare reverse proxy in Node (node:http in, an undici Pool out,
// keep-alive both ways), forwarding each request's body to the upstream and
// piping the answer back. No auth, no parsing, no limits: the least a gateway
// can do. Usage: node bare-proxy.mjs --upstream http://127.0.0.1:PORT
// Prints its port on stdout.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = process.argv[process.argv.indexOf('--upstream') + 1];
const pool = new Pool(upstream, { connections: 4096, keepAliveTimeout: 60_000 });

const server = createServer(async (req, res) => {
  try {
    const answer = await pool.request({
      path: req.url,
      method: req.method,
      headers: {
        'content-type': req.headers['content-type'] ?? 'application/json',
        authorization: req.headers.authorization ?? '',
      },
      body: req,
    });
    res.writeHead(answer.statusCode, { 'content-type': answer.headers['content-type'] ?? 'application/json' });
    for await (const chunk of answer.body) res.write(chunk);
    res.end();
  } catch (error) {
    res
      .writeHead(502, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: { message: String(error) } }));
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
