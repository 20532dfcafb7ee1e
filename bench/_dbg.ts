import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from '../src/config/schema.js';
import { engineOptionsFromConfig } from '../src/config/engine-options.js';
import { createEngine } from '../src/index.js';
const config = parseConfig(parse(readFileSync('examples/fanout.yaml', 'utf8')));
for (let run = 0; run < 3; run++) {
  const engine = createEngine(engineOptionsFromConfig(config));
  engine.on('attempt-failed', (e) => console.log(run, e.label, e.error, e.at));
  const reqs = Array.from({ length: 300 }, (_, i) => ({ model: i % 2 ? 'mock:summarizer' : 'mock:reviewer', messages: [{ role: 'user' as const, content: `Review change #${i} touching retry logic: list the risks and one test to add.` }], maxTokens: 256, label: `r${i}` }));
  await engine.gather(reqs);
}
