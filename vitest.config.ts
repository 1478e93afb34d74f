import { defineConfig } from 'vitest/config';

// Test files run in forked processes started with --no-addons: ringraft must load no
// native addon, and this proves it for every module a test imports. The runner itself
// (vite) lives in the parent process and may use whatever it likes.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    execArgv: ['--no-addons'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
