/**
 * The floors of src/ and which way imports may go (README, "How the code is laid out").
 * `npm run check:deps` fails on any rule below; test/dependency-rules.test.ts shows that it does.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A module must not reach itself through its imports, type imports included.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'contracts-import-nothing-above',
      severity: 'error',
      comment: 'src/contracts/ is the bottom floor: it imports nothing of fanout outside itself.',
      from: { path: '^src/contracts/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: '^src/contracts/' },
    },
    {
      name: 'parts-below-the-engine',
      severity: 'error',
      comment:
        'Limits, the cache key, the concrete stores and providers, and the OpenAI wire format build on the contracts, never on the engine or what uses it.',
      from: { path: '^src/(limits|cache|store|providers|openai)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/(core|metrics|pipeline|sim|batch|config|queue|server|cli)/' },
    },
    {
      name: 'engine-knows-no-concrete-part',
      severity: 'error',
      comment:
        'The engine works through the contracts: no server, CLI, concrete provider or store, nor anything that runs on it.',
      from: { path: '^src/core/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/(server|cli|batch|pipeline|sim|config|metrics|queue|store|providers)/' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
  },
};
