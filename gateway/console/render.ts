// Pages from templates/console/*.mustache, inside one layout. Mustache escapes every value; the
// templates hold no script and no inline style (the Content-Security-Policy forbids both).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Mustache from "mustache";
import { PACKAGE_ROOT } from "../paths.js";
import type { ConsoleLogin } from "./session.js";
import type { Roles } from "./roles.js";

export const CONSOLE_TEMPLATE_DIR = join(PACKAGE_ROOT, "templates", "console");

const cache = new Map<string, string>();
/** Bound: the files of templates/console, read once each. */
export function consoleTemplate(file: string): string {
  let t = cache.get(file);
  if (t === undefined) {
    t = readFileSync(join(CONSOLE_TEMPLATE_DIR, file), "utf8");
    cache.set(file, t);
  }
  return t;
}

export interface PageContext {
  login?: ConsoleLogin | undefined;
  roles?: Roles | undefined;
  csrf: string;
  /** Which navigation entry is current. */
  nav?: "inbox" | "sessions" | "evidence" | undefined;
  title: string;
  notice?: { text: string; error?: boolean } | undefined;
}

export function renderPage(page: string, ctx: PageContext, view: Record<string, unknown>): string {
  const who = ctx.login ? (ctx.login.email ?? ctx.login.subject) : undefined;
  const roles = ctx.roles ? Object.entries(ctx.roles).filter(([, v]) => v).map(([k]) => k).join(", ") : "";
  return Mustache.render(
    consoleTemplate("layout.mustache"),
    {
      ...view,
      title: ctx.title,
      csrf: ctx.csrf,
      who,
      roles,
      loggedIn: Boolean(ctx.login),
      showSessions: ctx.roles?.auditor ?? false,
      showEvidence: ctx.roles?.auditor ?? false,
      navInbox: ctx.nav === "inbox",
      navSessions: ctx.nav === "sessions",
      navEvidence: ctx.nav === "evidence",
      notice: ctx.notice,
    },
    { content: consoleTemplate(`${page}.mustache`) },
  );
}

/** Dates shown to people: UTC, to the second, with a machine-readable copy for <time>. */
export function timeView(d: Date | string | null | undefined): { iso: string; text: string } | null {
  if (!d) return null;
  const date = typeof d === "string" ? new Date(d) : d;
  const iso = date.toISOString();
  return { iso, text: `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` };
}

/** "in 4 min", "12 s ago". */
export function relative(d: Date, now = Date.now()): string {
  const s = Math.round((d.getTime() - now) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

/** JSON pretty-printed for a <pre>, with long string values folded (each kept whole in a <details>). */
export function foldedJson(value: unknown, foldAt = 120): { text: string; folded: { path: string; value: string }[] } {
  const folded: { path: string; value: string }[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === "string" && v.length > foldAt) {
      if (folded.length < 50) folded.push({ path, value: v });
      return `${v.slice(0, foldAt)}… (${v.length} characters)`;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, path ? `${path}.${k}` : k)]));
    return v;
  };
  const text = JSON.stringify(walk(value, ""), null, 2) ?? "null";
  return { text, folded };
}
