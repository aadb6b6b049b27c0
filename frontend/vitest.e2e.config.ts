import { defineConfig } from 'vitest/config';

// The end-to-end suite: one real server and one Chromium for the file, scenarios in order.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    testTimeout: 90_000,
    hookTimeout: 90_000,
    fileParallelism: false,
    globalSetup: ['e2e/global-setup.ts'],
  },
});
