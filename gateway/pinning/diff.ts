// A readable account of what changed between a pinned tool definition and the one the upstream
// now sends: one entry per changed path (description, inputSchema.properties.x.type, …), with the
// value before and after, plus a one-line summary for the CLI.

export interface DefinitionChange {
  /** Dotted path from the definition's root; array items as [i]. */
  path: string;
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

const MAX_CHANGES = 50;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** The changes from `before` to `after`, deepest differing paths first found, at most 50. */
export function diffDefinitions(before: unknown, after: unknown): DefinitionChange[] {
  const out: DefinitionChange[] = [];
  walk(before, after, "", out);
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: DefinitionChange[]): void {
  if (out.length >= MAX_CHANGES) return;
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in b)) out.push({ path: p, kind: "removed", before: a[k] });
      else if (!(k in a)) out.push({ path: p, kind: "added", after: b[k] });
      else walk(a[k], b[k], p, out);
      if (out.length >= MAX_CHANGES) return;
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = `${path}[${i}]`;
      if (i >= b.length) out.push({ path: p, kind: "removed", before: a[i] });
      else if (i >= a.length) out.push({ path: p, kind: "added", after: b[i] });
      else walk(a[i], b[i], p, out);
      if (out.length >= MAX_CHANGES) return;
    }
    return;
  }
  if (!sameJson(a, b)) out.push({ path: path || "(definition)", kind: "changed", before: a, after: b });
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** One line for people: `description changed; inputSchema.properties.to added`. */
export function summarizeChanges(changes: readonly DefinitionChange[]): string {
  if (changes.length === 0) return "no visible change";
  const parts = changes.slice(0, 5).map((c) => `${c.path} ${c.kind}`);
  return parts.join("; ") + (changes.length > 5 ? `; and ${changes.length - 5} more` : "");
}

/** A short unified-style rendering, for the CLI: `- description: "old"` / `+ description: "new"`. */
export function formatChanges(changes: readonly DefinitionChange[], width = 160): string[] {
  const show = (v: unknown) => {
    const text = JSON.stringify(v) ?? "undefined";
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  };
  const lines: string[] = [];
  for (const c of changes) {
    if (c.kind !== "added") lines.push(`- ${c.path}: ${show(c.before)}`);
    if (c.kind !== "removed") lines.push(`+ ${c.path}: ${show(c.after)}`);
  }
  return lines;
}
