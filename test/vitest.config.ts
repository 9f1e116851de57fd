import { defineConfig } from "vitest/config";

// `npm test`: every test file, unit and end-to-end (test/suites.ts tells them apart;
// test/vitest.unit.config.ts and test/vitest.e2e.config.ts run one suite each).
export default defineConfig({
  test: {
    root: new URL("..", import.meta.url).pathname,
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    // Generous: on two shared cores a gateway child and a CLI run can take tens of seconds.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files run two at a time; each has its own database.
    maxWorkers: 2,
    pool: "forks",
  },
});
