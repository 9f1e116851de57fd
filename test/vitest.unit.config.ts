import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";
import { suiteFiles } from "./suites.js";

// `npm run test:unit`: the unit tests (no gateway, no spawned process, no browser) of test/suites.ts.
export default defineConfig({ ...base, test: { ...base.test, include: suiteFiles("unit") } });
