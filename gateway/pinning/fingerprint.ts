// The identity of a tool definition: SHA-256 over the RFC 8785 canonical JSON of the fields that
// tell a model (or a caller) what the tool does: name, title, description, inputSchema,
// outputSchema and annotations. Key order and whitespace do not change it; any change of wording
// or schema does. Other fields (_meta, icons…) are left out: they do not instruct the model and
// servers vary them between sessions.
import { createHash } from "node:crypto";
import { canonicalize } from "json-canonicalize";

export const PINNED_FIELDS = ["name", "title", "description", "inputSchema", "outputSchema", "annotations"] as const;

export type ToolDefinition = Partial<Record<(typeof PINNED_FIELDS)[number], unknown>> & { name: string };

/** The pinned fields of one entry of a tools/list result; undefined when it has no name. */
export function toolDefinition(tool: unknown): ToolDefinition | undefined {
  if (tool === null || typeof tool !== "object" || Array.isArray(tool)) return undefined;
  const t = tool as Record<string, unknown>;
  if (typeof t.name !== "string" || t.name === "") return undefined;
  const def: Record<string, unknown> = {};
  for (const f of PINNED_FIELDS) if (t[f] !== undefined) def[f] = t[f];
  return def as ToolDefinition;
}

export function fingerprint(def: ToolDefinition): string {
  return createHash("sha256").update(canonicalize(def)).digest("hex");
}
