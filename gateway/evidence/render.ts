// The digest as Markdown, HTML (mustache templates in templates/digest/) and JSON. Every format is
// rendered from the same stored content and seal, so the numbers cannot differ between them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Mustache from "mustache";
import { PACKAGE_ROOT } from "../paths.js";
import type { Cell, DigestContent, DigestSection } from "./digest.js";
import type { DigestSeal } from "./sign.js";
import { digestCharts } from "./charts.js";
import { headlineFigures } from "./headline.js";

export type DigestFormat = "md" | "html" | "json";
export const DIGEST_FORMATS: readonly DigestFormat[] = ["md", "html", "json"];

export const DIGEST_TEMPLATE_DIR = join(PACKAGE_ROOT, "templates", "digest");
const cache = new Map<string, string>();

export function digestTemplate(file: string): string {
  let t = cache.get(file);
  if (t === undefined) {
    t = readFileSync(join(DIGEST_TEMPLATE_DIR, file), "utf8");
    Mustache.parse(t);
    cache.set(file, t);
  }
  return t;
}

const STATUS_LABEL: Record<DigestSection["status"], string> = { ok: "OK", exceptions: "Exceptions", no_data: "No data" };

/** A number or text as a person reads it in a table. */
export function cellText(v: Cell): string {
  if (v === null) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return v;
}

/** What a render may add beyond the digest: earlier weeks' stored digests (newest first) for comparisons. */
export interface RenderContext {
  history?: DigestContent[] | undefined;
}

/** What every template sees: the content, flattened into lists the templates can loop over. */
export function digestView(content: DigestContent, seal: DigestSeal, ctx: RenderContext = {}): Record<string, unknown> {
  const exceptions = content.sections.flatMap((s) => s.exceptions.map((text) => ({ text, sectionId: s.id, criteria: s.criteria })));
  return {
    ...content,
    partial: content.partial === true,
    seal,
    sha256Short: seal.sha256.slice(0, 16),
    signed: seal.signature !== null,
    headline: headlineFigures(content, ctx.history ?? []),
    hasBanner: exceptions.length > 0,
    banner: exceptions,
    bannerCount: exceptions.length.toLocaleString("en-US"),
    charts: digestCharts(content.charts),
    hasCharts: content.charts !== undefined,
    sections: content.sections.map((s) => ({
      ...s,
      statusLabel: STATUS_LABEL[s.status],
      exceptionCount: s.exceptions.length,
      hasExceptions: s.exceptions.length > 0,
      hasNotes: s.notes.length > 0,
      counts: s.counts.map((c) => ({ ...c, text: cellText(c.value) })),
      tables: s.tables.map((t) => ({ ...t, hasRows: t.rows.length > 0, rows: t.rows.map((r) => ({ cells: r.map(cellText) })) })),
    })),
  };
}

/** Markdown table cells: no pipes, no line breaks, no raw HTML. */
const markdownEscape = (v: unknown): string =>
  String(v).replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const HTML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const htmlEscape = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);

export function renderDigest(content: DigestContent, seal: DigestSeal, format: DigestFormat, ctx: RenderContext = {}): string {
  if (format === "json") return JSON.stringify({ digest: content, ...seal }, null, 2) + "\n";
  const view = digestView(content, seal, ctx);
  if (format === "md") return Mustache.render(digestTemplate("report.md.mustache"), view, undefined, { escape: markdownEscape });
  return Mustache.render(digestTemplate("report.html.mustache"), view, undefined, { escape: htmlEscape });
}
