// The real-time alert for a tool definition change (a possible rug pull): what changed, the diff,
// and the command that accepts the new definition once someone has reviewed it. The approvals
// notifier posts it (the gateway never imports the Slack bot).
import type { SecurityAlert } from "../approvals/types.js";
import { formatChanges, summarizeChanges, type DefinitionChange } from "./diff.js";

export interface DefinitionChanged {
  connection: string;
  tool: string;
  pinnedHash: string;
  hash: string;
  changes: DefinitionChange[];
  onChange: "allow" | "hold" | "block";
  detectedAt: Date;
}

/** A shell word: names with other characters are single-quoted. */
const word = (s: string) => (/^[A-Za-z0-9_.:\/@=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function definitionChangeAlert(c: DefinitionChanged): SecurityAlert {
  const what = { allow: "calls to it are still allowed", hold: "calls to it are held for approval until it is re-pinned", block: "calls to it are blocked until it is re-pinned" }[c.onChange];
  return {
    kind: "tool_definition_changed",
    title: `${c.connection} / ${c.tool} no longer matches its pinned definition`,
    connection: c.connection,
    tool: c.tool,
    summary: `The upstream now describes this tool differently (${summarizeChanges(c.changes)}): ${what}. Pinned ${c.pinnedHash.slice(0, 12)}…, now ${c.hash.slice(0, 12)}…. Check the change with the upstream's owner before accepting it.`,
    diff: formatChanges(c.changes),
    command: `countersign tools pin ${word(c.connection)} --tool ${word(c.tool)}`,
    at: c.detectedAt,
  };
}
