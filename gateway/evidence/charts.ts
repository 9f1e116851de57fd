// The digest's charts as inline SVG, drawn on the server (no JavaScript): daily calls stacked
// allowed / blocked / held, the distribution of time to decision, authentication failures per day
// by reason, masking hits by type. Every label is escaped; each chart has a title and a table-like
// text alternative (aria-label) for screen readers and for print.
import type { DigestCharts } from "./digest.js";

const esc = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const fmt = (n: number) => n.toLocaleString("en-US");

export const COLORS = { allowed: "#2f7d4f", blocked: "#c0392b", held: "#d4a017" };
const PALETTE = ["#c0392b", "#d35400", "#8e44ad", "#2c3e50", "#16a085", "#7f8c8d", "#b7950b", "#2e86c1"];

/** A round upper bound for an axis: 1, 2, 5 × 10^n. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

interface Series {
  key: string;
  color: string;
}

/** Vertical bars, stacked per category. */
function stacked(title: string, categories: string[], series: Series[], value: (cat: number, s: Series) => number, label: (c: string) => string): string {
  const W = 560;
  const H = 220;
  const left = 64;
  const bottom = 28;
  const top = 24;
  const plotW = W - left - 8;
  const plotH = H - top - bottom;
  const totals = categories.map((_, i) => series.reduce((n, s) => n + value(i, s), 0));
  const max = niceMax(Math.max(0, ...totals));
  const slot = plotW / Math.max(1, categories.length);
  const bw = Math.max(4, Math.min(48, slot * 0.6));
  const parts: string[] = [];
  for (const t of [0, 0.5, 1]) {
    const y = top + plotH - plotH * t;
    parts.push(`<line x1="${left}" x2="${W - 8}" y1="${y}" y2="${y}" stroke="#e0e0e4"/><text x="${left - 6}" y="${y + 4}" text-anchor="end" class="ax">${fmt(Math.round(max * t))}</text>`);
  }
  categories.forEach((c, i) => {
    const x = left + slot * i + (slot - bw) / 2;
    let y = top + plotH;
    for (const s of series) {
      const v = value(i, s);
      if (v <= 0) continue;
      const h = (plotH * v) / max;
      y -= h;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${esc(label(c))}: ${esc(s.key)} ${fmt(v)}</title></rect>`);
    }
    parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${H - 10}" text-anchor="middle" class="ax">${esc(label(c))}</text>`);
  });
  const legend = series.map((s, i) => `<rect x="${left + i * 110}" y="4" width="10" height="10" fill="${s.color}"/><text x="${left + i * 110 + 14}" y="13" class="ax">${esc(s.key)}</text>`).join("");
  const alt = categories.map((c, i) => `${label(c)}: ${series.map((s) => `${s.key} ${fmt(value(i, s))}`).join(", ")}`).join("; ");
  return `<figure class="chart"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(`${title}. ${alt || "no data"}`)}" xmlns="http://www.w3.org/2000/svg">${legend}${parts.join("")}</svg></figure>`;
}

/** Horizontal bars, one per label. */
function hbars(title: string, rows: Array<{ label: string; value: number }>, color: string): string {
  const W = 560;
  const row = 22;
  const left = 150;
  const shown = rows.slice(0, 12);
  const H = Math.max(1, shown.length) * row + 12;
  const max = niceMax(Math.max(0, ...shown.map((r) => r.value)));
  const parts = shown.map((r, i) => {
    const w = ((W - left - 70) * r.value) / max;
    const y = 6 + i * row;
    return `<text x="${left - 6}" y="${y + 14}" text-anchor="end" class="ax">${esc(r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label)}</text><rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 8}" fill="${color}"><title>${esc(r.label)}: ${fmt(r.value)}</title></rect><text x="${(left + w + 6).toFixed(1)}" y="${y + 14}" class="ax">${fmt(r.value)}</text>`;
  });
  const alt = shown.map((r) => `${r.label}: ${fmt(r.value)}`).join("; ");
  const body = shown.length === 0 ? `<text x="${W / 2}" y="20" text-anchor="middle" class="ax">none in this week</text>` : parts.join("");
  return `<figure class="chart"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${Math.max(H, 30)}" role="img" aria-label="${esc(`${title}. ${alt || "none in this week"}`)}" xmlns="http://www.w3.org/2000/svg">${body}</svg></figure>`;
}

const weekday = (day: string) => {
  const d = new Date(`${day}T12:00:00Z`);
  return `${["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getUTCDay()]} ${day.slice(8)}`;
};

export function digestCharts(c: DigestCharts | undefined): string[] {
  if (!c) return [];
  const calls = stacked(
    "Tool calls per day",
    c.dailyCalls.map((d) => d.day),
    [
      { key: "allowed", color: COLORS.allowed },
      { key: "blocked", color: COLORS.blocked },
      { key: "held", color: COLORS.held },
    ],
    (i, s) => c.dailyCalls[i]![s.key as "allowed" | "blocked" | "held"],
    weekday,
  );
  const decisions = hbars("Time to decision (decided requests)", c.decisionTimes.map((d) => ({ label: d.bucket, value: d.requests })), "#2e86c1");
  const days = c.dailyCalls.map((d) => d.day);
  const reasons = [...new Set(c.failuresPerDay.map((f) => f.reason))];
  const failures = stacked(
    "Authentication failures per day, by reason",
    days,
    reasons.map((r, i) => ({ key: r, color: PALETTE[i % PALETTE.length]! })),
    (i, s) => c.failuresPerDay.filter((f) => f.day === days[i] && f.reason === s.key).reduce((n, f) => n + f.failures, 0),
    weekday,
  );
  const masking = hbars("Masked values by type", c.maskingByType.map((m) => ({ label: m.type, value: m.values })), "#8e44ad");
  return [calls, decisions, failures, masking];
}
