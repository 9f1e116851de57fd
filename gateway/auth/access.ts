// What an identity may reach: the connection (by group) and, within it, which tools (per-group
// allow/deny globs). A denied tool is refused on call and left out of the caller's tools/list.
import type { Identity } from "./identity.js";

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

const globCache = new Map<string, RegExp>();
/** `*` any run of characters, `?` one character; everything else literal. Linear: no nested quantifiers. */
export function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    globCache.set(glob, re);
  }
  return re;
}

const matchesAny = (globs: string[] | undefined, name: string) => (globs ?? []).some((g) => globToRegExp(g).test(name));

/**
 * Rules apply when they name one of the caller's groups. A tool denied by any applying rule is
 * refused; if applying rules list `allow`, the tool must match one of them; otherwise it is allowed.
 */
export function mayCallTool(access: AccessConfig, id: Identity, tool: string): boolean {
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
