/**
 * gitleaks' default rule set (rulesets/gitleaks.json: config/gitleaks.toml of gitleaks, MIT,
 * converted to JSON unchanged) run as data, for the masking eval's side-by-side comparison.
 *
 * The rules are Go RE2 regexes; re2js (a port of RE2) runs them with the same semantics. What is
 * applied, as gitleaks' detector does for a text fragment: the rule's keywords as a prefilter
 * (case-insensitive), the regex, the secret (secretGroup, else the first non-empty group, else
 * the match), the Shannon entropy threshold, and the allowlists (the global one and each rule's:
 * regexes against the secret, the match or the line, stopwords in the secret; AND/OR
 * conditions). Path-only rules and path allowlists have no meaning for a tool result and are
 * skipped.
 */
import { readFileSync } from "node:fs";
import { RE2JS } from "re2js";

interface Allowlist {
  condition?: "AND" | "OR";
  regexTarget?: "secret" | "match" | "line";
  regexes?: string[];
  stopwords?: string[];
  paths?: string[];
}

interface RuleSpec {
  id: string;
  regex?: string;
  secretGroup?: number;
  entropy?: number;
  keywords?: string[];
  allowlists?: Allowlist[];
}

interface CompiledAllowlist {
  condition: "AND" | "OR";
  target: "secret" | "match" | "line";
  regexes: RE2JS[];
  stopwords: string[];
}

interface CompiledRule {
  id: string;
  regex: RE2JS;
  secretGroup: number;
  entropy: number;
  keywords: string[];
  allowlists: CompiledAllowlist[];
}

export interface GitleaksFinding {
  ruleId: string;
  /** The secret's characters in the text (the reported secret, not the whole match). */
  start: number;
  end: number;
}

function compileAllowlist(a: Allowlist): CompiledAllowlist {
  return {
    condition: a.condition ?? "OR",
    target: a.regexTarget ?? "secret",
    regexes: (a.regexes ?? []).map((r) => RE2JS.compile(r)),
    stopwords: (a.stopwords ?? []).map((s) => s.toLowerCase()),
  };
}

function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

function allowed(list: CompiledAllowlist, secret: string, match: string, line: string): boolean {
  const target = list.target === "match" ? match : list.target === "line" ? line : secret;
  const checks: boolean[] = [];
  if (list.regexes.length > 0) checks.push(list.regexes.some((r) => r.matcher(target).find()));
  if (list.stopwords.length > 0) checks.push(list.stopwords.some((w) => secret.toLowerCase().includes(w)));
  if (checks.length === 0) return false;
  return list.condition === "AND" ? checks.every(Boolean) : checks.some(Boolean);
}

export interface Gitleaks {
  readonly rules: number;
  readonly commit: string;
  scan(text: string): GitleaksFinding[];
}

export function loadGitleaks(): Gitleaks {
  const file = new URL("./rulesets/gitleaks.json", import.meta.url);
  const data = JSON.parse(readFileSync(file, "utf8")) as { commit: string; allowlist?: Allowlist; rules: RuleSpec[] };
  const global = data.allowlist ? [compileAllowlist(data.allowlist)] : [];
  const rules: CompiledRule[] = [];
  for (const r of data.rules) {
    if (!r.regex) continue; // path-only rules: nothing to find in a tool result
    rules.push({
      id: r.id,
      regex: RE2JS.compile(r.regex),
      secretGroup: r.secretGroup ?? 0,
      entropy: r.entropy ?? 0,
      keywords: (r.keywords ?? []).map((k) => k.toLowerCase()),
      allowlists: (r.allowlists ?? []).map(compileAllowlist),
    });
  }
  return {
    rules: rules.length,
    commit: data.commit,
    scan(text: string): GitleaksFinding[] {
      const lower = text.toLowerCase();
      const out: GitleaksFinding[] = [];
      for (const rule of rules) {
        if (rule.keywords.length > 0 && !rule.keywords.some((k) => lower.includes(k))) continue;
        const m = rule.regex.matcher(text);
        let from = 0;
        while (from <= text.length && m.find(from)) {
          const start = m.start();
          const end = m.end();
          from = end > start ? end : start + 1;
          const match = text.slice(start, end);
          let secret = match;
          let secretStart = start;
          const group = rule.secretGroup > 0 ? rule.secretGroup : firstNonEmptyGroup(m);
          if (group > 0 && m.group(group)) {
            secret = m.group(group)!;
            secretStart = m.start(group);
          }
          if (rule.entropy > 0 && shannonEntropy(secret) <= rule.entropy) continue;
          const lineStart = text.lastIndexOf("\n", start - 1) + 1;
          const lineEnd = text.indexOf("\n", end);
          const line = text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd);
          if ([...global, ...rule.allowlists].some((a) => allowed(a, secret, match, line))) continue;
          out.push({ ruleId: rule.id, start: secretStart, end: secretStart + secret.length });
        }
      }
      return out;
    },
  };
}

function firstNonEmptyGroup(m: ReturnType<RE2JS["matcher"]>): number {
  for (let g = 1; g <= m.groupCount(); g++) if (m.group(g)) return g;
  return 0;
}
