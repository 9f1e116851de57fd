// Publishes the configuration schema as JSON Schema (gateway/config/countersign.schema.json) for
// editors (yaml-language-server) and for the Helm chart. Generated from the zod schema, never
// edited by hand: `npm run schema` rewrites it, and a test fails when the committed file drifts.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { PACKAGE_ROOT } from "../paths.js";
import { CONFIG_VERSION, configSchema } from "./schema.js";

export const CONFIG_JSON_SCHEMA_FILE = join(PACKAGE_ROOT, "gateway", "config", "countersign.schema.json");

/** The JSON Schema text, exactly as committed. */
export function configJsonSchemaText(): string {
  // "input": what a person writes in the file (keys with defaults are optional). Shapes are
  // inlined where used, so editors show each key's description in place.
  const generated = z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" });
  const schema = {
    $schema: generated.$schema,
    title: `Countersign configuration (version ${CONFIG_VERSION})`,
    description:
      "The gateway's YAML configuration file. Generated from gateway/config/schema.ts by `npm run schema`; do not edit by hand. " +
      "Cross-field rules (unique connection names, tls cert with key) are checked by the gateway at start-up.",
    ...Object.fromEntries(Object.entries(generated).filter(([k]) => k !== "$schema")),
  };
  return JSON.stringify(schema, null, 2) + "\n";
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(CONFIG_JSON_SCHEMA_FILE, configJsonSchemaText());
  process.stdout.write(`wrote ${CONFIG_JSON_SCHEMA_FILE}\n`);
}
