// Tool pinning (rug-pull detection): the first tools/list seen for a connection pins each tool's
// definition; a later definition that differs is reported once with a diff, and calls to the
// tool are allowed, held for approval or blocked (pinning.onChange) until an admin re-pins.
//   fingerprint.ts  the hash of a definition (RFC 8785)      diff.ts     what changed
//   ../store/pins.ts pins in Postgres, events in the same tx service.ts  the replicas' cache
//   decide.ts       the pure decision on a call
import type { Masker } from "../masking/index.js";
import { fingerprint, toolDefinition } from "./fingerprint.js";
import type { ObservedTool } from "../store/pins.js";

export { fingerprint, toolDefinition, PINNED_FIELDS, type ToolDefinition } from "./fingerprint.js";
export { diffDefinitions, summarizeChanges, formatChanges, type DefinitionChange } from "./diff.js";
export { PinStore, PIN_NOTIFY_CHANNEL, type ToolPin, type ObservedTool, type PinEvent } from "../store/pins.js";
export { ToolPins, type ToolPinsOptions } from "./service.js";
export { pinVerdict, asPolicyDecision, type PinningConfig, type PinState, type PinVerdict, type OnChange } from "./decide.js";

/**
 * The tools of one tools/list result: the fingerprint of each real definition, and the
 * definition as stored (masked, as every record is). Entries without a name are skipped.
 */
export function observeToolsList(tools: unknown, masker?: Masker | undefined): ObservedTool[] {
  if (!Array.isArray(tools)) return [];
  const out: ObservedTool[] = [];
  for (const t of tools) {
    const def = toolDefinition(t);
    if (!def) continue;
    out.push({ tool: def.name, hash: fingerprint(def), definition: masker ? masker.maskMessage(def).masked : def });
  }
  return out;
}
