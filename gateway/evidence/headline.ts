// The digest's headline strip: the figures a manager reads first, each with its change against the
// previous week and against the median of the four weeks before (from those weeks' stored
// digests; "—" where a week has no stored digest).
import type { DigestContent } from "./digest.js";

export interface HeadlineFigure {
  key: string;
  label: string;
  value: number | null;
  text: string;
  /** "+12% vs last week", "= last week", "no previous week". */
  vsLast: string;
  /** "4-week median 1,204". */
  median: string;
  /** An increase is bad (failures, blocks), good, or neither. */
  direction: "up" | "down" | "flat" | "none";
  worse: boolean;
}

const FIGURES: Array<{ key: string; label: string; section: string; count: string; bad: boolean; unit?: string }> = [
  { key: "calls", label: "Tool calls", section: "cc7_2", count: "__calls", bad: false },
  { key: "blocked", label: "Blocked", section: "cc7_2", count: "blocked", bad: true },
  { key: "held", label: "Held for approval", section: "cc6_2", count: "requests", bad: false },
  { key: "ttd", label: "Median time to decision", section: "cc6_2", count: "medianSecondsToDecision", bad: true, unit: "s" },
  { key: "masked", label: "Values masked", section: "cc7_2", count: "valuesMasked", bad: false },
  { key: "authFailures", label: "Authentication failures", section: "cc6_1", count: "authFailures", bad: true },
  { key: "exceptions", label: "Exceptions", section: "", count: "__exceptions", bad: true },
];

export function figureOf(c: DigestContent, section: string, count: string): number | null {
  if (count === "__exceptions") return c.summary.exceptions;
  if (count === "__calls") return c.charts ? c.charts.dailyCalls.reduce((n, d) => n + d.allowed + d.blocked + d.held, 0) : null;
  const v = c.sections.find((s) => s.id === section)?.counts.find((x) => x.key === count)?.value;
  return typeof v === "number" ? v : null;
}

const fmt = (n: number, unit?: string) => `${n.toLocaleString("en-US", { maximumFractionDigits: 1 })}${unit ? ` ${unit}` : ""}`;

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function change(now: number, before: number | null): { text: string; direction: HeadlineFigure["direction"] } {
  if (before === null) return { text: "no previous week", direction: "none" };
  if (now === before) return { text: "= last week", direction: "flat" };
  if (before === 0) return { text: `+${fmt(now)} vs none last week`, direction: "up" };
  const pct = Math.round(((now - before) / before) * 100);
  return { text: `${pct > 0 ? "+" : ""}${pct.toLocaleString("en-US")}% vs last week`, direction: now > before ? "up" : "down" };
}

/** `history`: the stored digests of earlier weeks, newest first (up to 4 are used). */
export function headlineFigures(c: DigestContent, history: DigestContent[]): HeadlineFigure[] {
  return FIGURES.map((f) => {
    const value = figureOf(c, f.section, f.count);
    const last = history[0] ? figureOf(history[0], f.section, f.count) : null;
    const earlier = history.slice(0, 4).map((h) => figureOf(h, f.section, f.count)).filter((x): x is number => x !== null);
    const med = median(earlier);
    const ch = value === null ? { text: "", direction: "none" as const } : change(value, last);
    return {
      key: f.key,
      label: f.label,
      value,
      text: value === null ? "—" : fmt(value, f.unit),
      vsLast: ch.text,
      median: med === null ? "4-week median —" : `4-week median ${fmt(med, f.unit)}`,
      direction: ch.direction,
      worse: f.bad && ch.direction === "up",
    };
  });
}
