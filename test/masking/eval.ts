/**
 * Quality evaluation of the masking engine on the labelled corpus (corpus/corpus.jsonl).
 *
 * For every record the engine's spans are compared with the expected ones: a hit counts when
 * type and boundaries agree exactly. Reports recall and precision per type, the overall
 * false-positive rate (false spans / all spans found) and, as an independent cross-check, runs
 * secretlint's recommended rule preset (@secretlint/secretlint-rule-preset-recommend) over
 * the same texts: every secret it reports in a positive record must be masked by us too.
 *
 * `npm run masking:eval` prints a table (`--json` for JSON) and exits non-zero when a
 * supported type's recall is below 99%, the false-positive rate above 1%, or secretlint finds
 * a secret we leave unmasked.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { lintSource } from "@secretlint/core";
import { creator as recommendPreset } from "@secretlint/secretlint-rule-preset-recommend";
import { createMasker, type Span } from "../../gateway/masking/index.js";

export const TARGETS = { minRecall: 0.99, maxFalsePositiveRate: 0.01 } as const;

interface CorpusRecord {
  id: string;
  source: string;
  text: string;
  expect: { type: string; start: number; end: number }[];
}

export interface TypeScore {
  type: string;
  expected: number;
  truePositives: number;
  falseNegatives: number;
  falsePositives: number;
  recall: number;
  precision: number;
  /** The same expected spans as secretlint's recommended preset finds them (any overlap counts). */
  secretlintFound: number;
  secretlintRecall: number;
}

export interface EvalReport {
  records: number;
  negativeRecords: number;
  negativeRecordsWithHits: number;
  types: TypeScore[];
  totalFound: number;
  totalFalsePositives: number;
  falsePositiveRate: number;
  secretlint: { findings: number; maskedByUs: number; missed: { id: string; ruleId: string; text: string }[]; falsePositives: number; negativeRecordsWithHits: number };
  misses: { id: string; type: string; value: string; got: string[] }[];
  falsePositives: { id: string; type: string; value: string }[];
  failures: string[];
}

export function loadCorpus(): CorpusRecord[] {
  const file = fileURLToPath(new URL("./corpus/corpus.jsonl", import.meta.url));
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as CorpusRecord);
}

async function secretlintFindings(text: string): Promise<{ ruleId: string; range: readonly [number, number] }[]> {
  const result = await lintSource({
    source: { content: text, filePath: "/corpus.txt", ext: ".txt", contentType: "text" },
    options: { config: { rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: recommendPreset }] }, noPhysicFilePath: true },
  });
  return result.messages.map((m) => ({ ruleId: m.ruleId, range: m.range }));
}

export async function evaluateCorpus(): Promise<EvalReport> {
  const corpus = loadCorpus();
  const masker = createMasker();
  const scores = new Map<string, TypeScore>();
  const score = (type: string): TypeScore => {
    let s = scores.get(type);
    if (!s) scores.set(type, (s = { type, expected: 0, truePositives: 0, falseNegatives: 0, falsePositives: 0, recall: 1, precision: 1, secretlintFound: 0, secretlintRecall: 0 }));
    return s;
  };
  const report: EvalReport = {
    records: corpus.length, negativeRecords: 0, negativeRecordsWithHits: 0, types: [], totalFound: 0, totalFalsePositives: 0, falsePositiveRate: 0,
    secretlint: { findings: 0, maskedByUs: 0, missed: [], falsePositives: 0, negativeRecordsWithHits: 0 }, misses: [], falsePositives: [], failures: [],
  };
  for (const record of corpus) {
    const found: Span[] = masker.findSpans(record.text);
    report.totalFound += found.length;
    if (record.expect.length === 0) {
      report.negativeRecords++;
      if (found.length > 0) report.negativeRecordsWithHits++;
    }
    const same = (a: { type: string; start: number; end: number }, b: { type: string; start: number; end: number }): boolean => a.type === b.type && a.start === b.start && a.end === b.end;
    for (const e of record.expect) {
      const s = score(e.type);
      s.expected++;
      if (found.some((f) => same(f, e))) s.truePositives++;
      else {
        s.falseNegatives++;
        const got = found.filter((f) => f.start < e.end && e.start < f.end).map((f) => `${f.type}:${record.text.slice(f.start, f.end)}`);
        report.misses.push({ id: record.id, type: e.type, value: record.text.slice(e.start, e.end), got });
      }
    }
    for (const f of found) {
      if (record.expect.some((e) => same(f, e))) continue;
      score(f.type).falsePositives++;
      report.totalFalsePositives++;
      report.falsePositives.push({ id: record.id, type: f.type, value: record.text.slice(f.start, f.end) });
    }
    // Side by side: secretlint over the same text, scored against the same labels.
    const theirs = await secretlintFindings(record.text);
    const overlaps = (a: number, b: number, s: { start: number; end: number }): boolean => s.start < b && a < s.end;
    for (const e of record.expect) if (theirs.some((t) => overlaps(t.range[0], t.range[1], e))) score(e.type).secretlintFound++;
    for (const t of theirs) if (!record.expect.some((e) => overlaps(t.range[0], t.range[1], e))) report.secretlint.falsePositives++;
    if (record.expect.length === 0 && theirs.length > 0) report.secretlint.negativeRecordsWithHits++;
    if (record.expect.length > 0) {
      for (const finding of theirs) {
        report.secretlint.findings++;
        const [a, b] = finding.range;
        if (found.some((f) => f.start < b && a < f.end)) report.secretlint.maskedByUs++;
        else report.secretlint.missed.push({ id: record.id, ruleId: finding.ruleId, text: record.text.slice(a, b) });
      }
    }
  }
  for (const s of scores.values()) {
    s.recall = s.expected === 0 ? 1 : s.truePositives / s.expected;
    s.precision = s.truePositives + s.falsePositives === 0 ? 1 : s.truePositives / (s.truePositives + s.falsePositives);
    s.secretlintRecall = s.expected === 0 ? 0 : s.secretlintFound / s.expected;
    if (s.expected > 0 && s.recall < TARGETS.minRecall) report.failures.push(`recall of ${s.type} is ${(s.recall * 100).toFixed(1)}% (< ${TARGETS.minRecall * 100}%)`);
  }
  report.types = [...scores.values()].sort((a, b) => a.type.localeCompare(b.type));
  report.falsePositiveRate = report.totalFound === 0 ? 0 : report.totalFalsePositives / report.totalFound;
  if (report.falsePositiveRate > TARGETS.maxFalsePositiveRate) report.failures.push(`false-positive rate ${(report.falsePositiveRate * 100).toFixed(2)}% (> ${TARGETS.maxFalsePositiveRate * 100}%)`);
  if (report.secretlint.missed.length > 0) report.failures.push(`${report.secretlint.missed.length} secret(s) found by secretlint are not masked`);
  return report;
}

export function formatReport(r: EvalReport): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const rows = r.types.map((t) => [t.type, String(t.expected), String(t.truePositives), String(t.falseNegatives), String(t.falsePositives), pct(t.recall), pct(t.precision), pct(t.secretlintRecall)]);
  const header = ["type", "expected", "found", "missed", "false+", "recall", "precision", "secretlint recall"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  out.push("");
  out.push(`records ${r.records} (${r.negativeRecords} hard negatives, ${r.negativeRecordsWithHits} with a hit)`);
  out.push(`false-positive rate ${pct(r.falsePositiveRate)} (${r.totalFalsePositives} of ${r.totalFound} masked spans)`);
  out.push(`secretlint recommend preset: ${r.secretlint.maskedByUs} of ${r.secretlint.findings} findings masked by us; its false positives ${r.secretlint.falsePositives} (${r.secretlint.negativeRecordsWithHits} hard negatives with a hit)`);
  for (const m of r.misses.slice(0, 20)) out.push(`  missed ${m.type} ${JSON.stringify(m.value)} (got ${m.got.join(", ") || "nothing"}) [${m.id}]`);
  for (const f of r.falsePositives.slice(0, 20)) out.push(`  false positive ${f.type} ${JSON.stringify(f.value)} [${f.id}]`);
  for (const s of r.secretlint.missed.slice(0, 20)) out.push(`  secretlint ${s.ruleId} found ${JSON.stringify(s.text)} [${s.id}]`);
  out.push(r.failures.length === 0 ? `targets met: recall >= ${TARGETS.minRecall * 100}% per type, false positives <= ${TARGETS.maxFalsePositiveRate * 100}%` : `TARGETS MISSED:\n  ${r.failures.join("\n  ")}`);
  return out.join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const report = await evaluateCorpus();
  console.log(process.argv.includes("--json") ? JSON.stringify(report, null, 2) : formatReport(report));
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}
