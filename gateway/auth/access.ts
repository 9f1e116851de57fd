// What an identity may reach: the connection (by group) and, within it, which tools (per-group
// allow/deny globs). A denied tool is refused on call and left out of the caller's tools/list.
import type { Identity } from "./identity.js";
import { globMatch } from "../policy/glob.js";
import { normaliseName } from "../policy/normalize.js";

export interface AccessConfig {
  anonymous: boolean;
  groups?: string[] | undefined;
  tools: Array<{ groups: string[]; allow?: string[] | undefined; deny?: string[] | undefined }>;
}

export function mayUseConnection(access: AccessConfig, id: Identity): boolean {
  if (id.kind === "anonymous") return access.anonymous;
  if (!access.groups) return true;
  return id.groups.some((g) => access.groups!.includes(g));
}

// Tool names and the rules' globs are matched in the policy's one normal form (surrounding
// whitespace removed, Unicode NFC), so a deny cannot be passed by spelling the name another way
// (" drop_table", "drop_table\n", a decomposed accent), with the policy's linear glob matcher.
const matchesAny = (globs: string[] | undefined, name: string) => (globs ?? []).some((g) => globMatch(normaliseName(g), name));
/**
 * Rules apply when they name one of the caller's groups. A tool denied by any applying rule is
 * refused; if applying rules list `allow`, the tool must match one of them; otherwise it is allowed.
 */
export function mayCallTool(access: AccessConfig, id: Identity, sentName: string): boolean {
  const tool = normaliseName(sentName);
  const applying = access.tools.filter((r) => r.groups.some((g) => id.groups.includes(g)));
  if (applying.some((r) => matchesAny(r.deny, tool))) return false;
  const allowLists = applying.filter((r) => r.allow !== undefined);
  return allowLists.length === 0 || allowLists.some((r) => matchesAny(r.allow, tool));
}

export function hasToolRules(access: AccessConfig): boolean {
  return access.tools.length > 0;
}

/** The groups that would grant the connection, for the 403 message. */
export function groupsNeeded(access: AccessConfig): string[] {
  return access.groups ?? [];
}
