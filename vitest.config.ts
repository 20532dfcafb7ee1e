import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts', 'dashboard/**/*.test.ts'],
    environment: 'node',
    // A Redis server of the tests' own (see the file).
    globalSetup: ['test/redis-server.ts'],
    testTimeout: 60_000,
    // Most long tests wait (on child processes, rate limits, a Redis restart), not compute: two
    // files at once on a 2-core machine, where Vitest would run one.
    maxWorkers: 2,
  },
});
