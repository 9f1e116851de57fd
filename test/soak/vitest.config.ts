import { defineConfig } from "vitest/config";

// `npm run soak`: the long fault-injection runs, kept out of the unit suite (`npm test`) and run by
// CI on their own, with a bounded budget (DURABILITY_BUDGET_MS) and their figures printed.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/soak/**/*.soak.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    pool: "forks",
  },
});
