import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    environment: 'node',
    // A Redis server of the tests' own (see the file).
    globalSetup: ['test/redis-server.ts'],
    testTimeout: 60_000,
  },
});
