// The load generator for the gateway benchmarks, run pinned to its own core
// (`taskset -c 0 node load.mjs '<job as JSON>'`); prints its result as JSON.
//
//   {"kind":"latency","targets":[{name,url,path,method,headers,body}],"samples":n,"round":n}
//     one request in flight: rounds of `round` requests to each target in turn
//     (interleaved, so drift hits every target alike) until each has `samples`;
//     → {name: [latency in µs, ...]}
//   {"kind":"throughput","target":{...},"connections":n,"seconds":s}
//     autocannon, closed loop with n connections → {rps, p50, p99, errors, non2xx}
//   {"kind":"events","url":"ws://…","key":k,"request":{…},"inFlight":n,"seconds":s}
//     a WebSocket that keeps n streamed tasks going for s seconds and measures,
//     for every message stamped with the server's time (`at`), how long after
//     that time it arrived → {events, seconds, p50, p99} (ms)
//   {"kind":"hold","target":{...},"requests":n}
//     n requests at once, each on its own connection; prints "sent" once all are
//     under way, then waits for their answers → {ok, failed}
import autocannon from 'autocannon';
import { Client, Pool } from 'undici';
import { WebSocket } from 'ws';

const job = JSON.parse(process.argv[2]);

async function once(client, target) {
  const started = process.hrtime.bigint();
  const answer = await client.request({
    path: target.path,
    method: target.method,
    headers: target.headers,
    body: target.body,
  });
  await answer.body.text();
  const us = Number(process.hrtime.bigint() - started) / 1000;
  if (answer.statusCode !== 200) throw new Error(`${target.name}: status ${answer.statusCode}`);
  return us;
}

async function latency() {
  const clients = job.targets.map((t) => new Client(t.url, { keepAliveTimeout: 60_000, pipelining: 1 }));
  const out = Object.fromEntries(job.targets.map((t) => [t.name, []]));
  // Warm every path (JIT, connections, caches) before anything counts.
  for (const [i, t] of job.targets.entries()) for (let n = 0; n < 200; n++) await once(clients[i], t);
  while (out[job.targets[0].name].length < job.samples) {
    for (const [i, t] of job.targets.entries()) {
      for (let n = 0; n < job.round; n++) out[t.name].push(await once(clients[i], t));
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  return out;
}

async function throughput() {
  const t = job.target;
  const result = await autocannon({
    url: `${t.url}${t.path}`,
    method: t.method,
    headers: t.headers,
    body: t.body,
    connections: job.connections,
    duration: job.seconds,
  });
  return {
    rps: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

async function hold() {
  const t = job.target;
  const pool = new Pool(t.url, { connections: job.requests, keepAliveTimeout: 60_000 });
  const answers = Array.from({ length: job.requests }, () =>
    pool
      .request({
        path: t.path,
        method: t.method,
        headers: t.headers,
        body: t.body,
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      })
      .then(async (a) => {
        await a.body.text();
        return a.statusCode === 200;
      }),
  );
  process.stdout.write('sent\n');
  const results = await Promise.allSettled(answers);
  await pool.close();
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
  return { ok, failed: results.length - ok };
}

const now = () => performance.timeOrigin + performance.now();

async function events() {
  const socket = new WebSocket(job.url, { headers: { authorization: `Bearer ${job.key}` } });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const delays = [];
  const started = now();
  const until = started + job.seconds * 1000;
  let open = 0;
  let failures = 0;
  const submit = () => {
    open += 1;
    socket.send(JSON.stringify({ type: 'submit', request: job.request }));
  };
  await new Promise((resolve, reject) => {
    // Bounded: a socket that closes or goes quiet ends the run with an error, never a hang.
    const giveUp = setTimeout(
      () => reject(new Error('events: no end within 30 s of the run')),
      job.seconds * 1000 + 30_000,
    );
    socket.on('close', () => reject(new Error('events: the socket closed before the run ended')));
    socket.on('error', reject);
    socket.on('message', (data) => {
      const arrived = now();
      const message = JSON.parse(String(data));
      if (typeof message.at === 'number' && message.at >= started) delays.push(arrived - message.at);
      if (message.type === 'response' || message.type === 'error') {
        if (message.type === 'error') failures += 1;
        open -= 1;
        if (arrived < until) submit();
        else if (open === 0) {
          clearTimeout(giveUp);
          resolve();
        }
      }
    });
    for (let i = 0; i < job.inFlight; i++) submit();
  });
  const seconds = (now() - started) / 1000;
  socket.close();
  delays.sort((a, b) => a - b);
  const at = (q) => delays[Math.min(delays.length - 1, Math.floor((q / 100) * delays.length))];
  return {
    events: delays.length,
    seconds,
    perSecond: delays.length / seconds,
    min: delays[0],
    p50: at(50),
    p99: at(99),
    failures,
  };
}

const kinds = { latency, throughput, hold, events };
const result = await kinds[job.kind]();
process.stdout.write(`${JSON.stringify(result)}\n`);
