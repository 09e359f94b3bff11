import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores in CI: run files in parallel, but keep property tests from starving each other.
    pool: 'forks',
    maxWorkers: 2,
  },
});
