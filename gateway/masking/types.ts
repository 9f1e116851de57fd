import type { TextFeatures } from "./features.js";

/** A half-open character range [start, end) of a string that a detector wants masked. */
export interface Span {
  start: number;
  end: number;
  type: string;
  /** Found only once decoded (base64, hex, percent-encoding): replaced by a placeholder, never a pseudonym. */
  encoded?: true;
}

/**
 * What a detector may know besides the text: the name of the JSON field the string is the
 * value of (lower-cased), so `{"phone": "020 7946 0958"}` can be judged like "phone: 020 7946 0958".
 */
export interface ScanContext {
  key: string | undefined;
}

/** One detector: finds spans of one type in a string. Must run in time linear in the text. */
export interface Detector {
  /** Stable id, also the label in `[MASKED:<id>]` and the key in hit counts. */
  readonly id: string;
  readonly category: "credential" | "personal" | "custom";
  /** Cheap pre-check on the string's features; the detector is skipped when it returns false. */
  needs?(f: TextFeatures): boolean;
  /** The regexes it runs on input, exposed so tests can audit them for backtracking hazards. */
  readonly patterns: readonly RegExp[];
  /** Appends spans to `out`. */
  find(text: string, ctx: ScanContext, out: Span[]): void;
}
