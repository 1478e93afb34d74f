import { defineConfig } from 'vitest/config';

// Test files run in forked processes started with --no-addons: ringraft must load no
// native addon, and this proves it for every module a test imports. The runner itself
// (vite) lives in the parent process and may use whatever it likes.
// Under CI (or with VITEST_REPORT=<file>) a JSON report is written too, from which .ci/run
// counts passed and failed tests.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    execArgv: ['--no-addons'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters:
      process.env.CI || process.env.VITEST_REPORT
        ? ['default', ['json', { outputFile: process.env.VITEST_REPORT ?? '.tmp/vitest-report.json' }]]
        : ['default'],
  },
});
