import { describe, expect, it } from "vitest";
import { evaluateCorpus, formatReport, loadCorpus, TARGETS } from "./eval.js";
import { BUILTIN_DETECTOR_IDS } from "../../gateway/masking/index.js";

describe("masking quality on the labelled corpus", () => {
  it("meets the recall and false-positive targets, and masks everything secretlint finds", async () => {
    const report = await evaluateCorpus();
    expect(report.failures, formatReport(report)).toEqual([]);
    for (const t of report.types) expect(t.recall, t.type).toBeGreaterThanOrEqual(TARGETS.minRecall);
    expect(report.falsePositiveRate).toBeLessThanOrEqual(TARGETS.maxFalsePositiveRate);
    expect(report.secretlint.findings).toBeGreaterThan(100);
    expect(report.secretlint.maskedByUs).toBe(report.secretlint.findings);
  });

  it("covers every built-in detector with positives and includes hard negatives", () => {
    const corpus = loadCorpus();
    const counts = new Map<string, number>();
    for (const r of corpus) for (const e of r.expect) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    for (const id of BUILTIN_DETECTOR_IDS) expect(counts.get(id) ?? 0, id).toBeGreaterThanOrEqual(20);
    expect(corpus.filter((r) => r.expect.length === 0).length).toBeGreaterThanOrEqual(100);
  });
});
