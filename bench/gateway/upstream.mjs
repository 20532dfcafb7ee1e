// A fake OpenAI-compatible upstream for the gateway benchmarks: answers every
// POST /v1/chat/completions with the same small completion after --delay-ms
// (0: at once). A control route lets the benchmark hold answers back, to count
// what a gateway spends per request in flight:
//   POST /control/hold     hold every answer from now on
//   POST /control/release  answer everything held, stop holding
//   GET  /control          {"held": n, "answered": n}
// Prints its port on stdout, then serves until killed.
import { createServer } from 'node:http';

const delayMs = Number(process.argv[process.argv.indexOf('--delay-ms') + 1] ?? 0) || 0;
const completion = JSON.stringify({
  id: 'chatcmpl-upstream',
  object: 'chat.completion',
  created: 1741569952,
  model: 'm',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'A short answer from the fake upstream, the same every time.' },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 19, completion_tokens: 13, total_tokens: 32 },
});
const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) };

let holding = false;
let held = [];
let answered = 0;
const answer = (res) => {
  answered += 1;
  res.writeHead(200, headers).end(completion);
};

const server = createServer((req, res) => {
  if (req.url.startsWith('/control')) {
    req.resume();
    if (req.method === 'POST' && req.url === '/control/hold') holding = true;
    if (req.method === 'POST' && req.url === '/control/release') {
      holding = false;
      const waiting = held;
      held = [];
      for (const r of waiting) answer(r);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ held: held.length, answered }));
    return;
  }
  req.resume();
  req.on('end', () => {
    if (holding) held.push(res);
    else if (delayMs > 0) setTimeout(answer, delayMs, res);
    else answer(res);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
