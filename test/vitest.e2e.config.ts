import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";
import { suiteFiles } from "./suites.js";

// `npm run test:e2e`: the end-to-end tests (a gateway, spawned peers or a browser) of test/suites.ts.
export default defineConfig({ ...base, test: { ...base.test, include: suiteFiles("e2e") } });
