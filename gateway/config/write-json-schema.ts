// Publishes the configuration schema as JSON Schema (gateway/config/countersign.schema.json) for
// editors (yaml-language-server) and for the Helm chart. Generated from the zod schema, never
// edited by hand: `npm run schema` rewrites it, and a test fails when the committed file drifts.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { PACKAGE_ROOT } from "../paths.js";
import { CONFIG_VERSION, configSchema } from "./schema.js";

export const CONFIG_JSON_SCHEMA_FILE = join(PACKAGE_ROOT, "gateway", "config", "countersign.schema.json");
export const HELM_VALUES_SCHEMA_FILE = join(PACKAGE_ROOT, "helm", "values.schema.json");

/**
 * The chart's values.schema.json with its `config` property set to the configuration schema.
 * Helm cannot follow a reference to another file, so the chart carries a copy; its shared
 * definitions go to the root of values.schema.json, where the copy's `#/$defs/...` point.
 */
export function helmValuesSchemaText(configSchemaText: string, valuesSchemaText: string): string {
  const values = JSON.parse(valuesSchemaText) as { properties: { config: { description?: string } }; $defs?: unknown };
  const { $schema: _dialect, $defs, ...config } = JSON.parse(configSchemaText) as Record<string, unknown>;
  values.properties.config = { ...config, description: values.properties.config.description };
  if ($defs) values.$defs = $defs;
  else delete values.$defs;
  return JSON.stringify(values, null, 2) + "\n";
}

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
  const text = configJsonSchemaText();
  writeFileSync(CONFIG_JSON_SCHEMA_FILE, text);
  writeFileSync(HELM_VALUES_SCHEMA_FILE, helmValuesSchemaText(text, readFileSync(HELM_VALUES_SCHEMA_FILE, "utf8")));
  process.stdout.write(`wrote ${CONFIG_JSON_SCHEMA_FILE} and the copy in ${HELM_VALUES_SCHEMA_FILE}\n`);
}
