/**
 * The masking engine: finds credentials and personal data in JSON-RPC messages and replaces
 * them: credentials with `[MASKED:<type>]` (`[MASKED:<type>:<hmac8>]` with a token key),
 * personal data with a format-preserving pseudonym per scope (pseudonym.ts) or, in placeholder
 * mode, a placeholder too.
 *
 * Usage:
 * ```ts
 * const masker = createMasker({ fields: [{ path: "$..ssn" }], tokenKey: process.env.MASK_KEY });
 * const { masked, hits, exempted, changed, issued, refused } = masker.maskMessage(msg, { exempt: ["email"], scope });
 * ```
 * The input is never modified; `masked` shares unchanged subtrees with it.
 *
 * What is scanned, in order, for every value of the message:
 * 0. Protocol fields (protocol-fields.ts: ids, method, progress tokens, cursors, request state,
 *    reserved `_meta` keys…) are never rewritten, only scanned: a credential in one refuses the
 *    message (refusal.ts). So do nesting beyond maxDepth and more than maxValues values.
 * 1. Field rules (JSON paths) replace whatever value they select, of any JSON type. Paths are
 *    evaluated from the message root and from every nested document root: a JSON text inside a
 *    string starts a new root, so `$.user.email` matches in a tool's JSON text result too.
 * 2. A string under a field whose name says it holds a secret (`password`, `api_key`,
 *    `client_secret`, `token`, …) is masked whole, typed by a specific detector if one
 *    recognises it (`stripe_key`), else `secret_assignment`.
 * 3. Media fields (`data` of image/audio content, `blob` of resources, data: URIs, long base64
 *    strings) pass untouched when they decode as media of their declared type (media.ts);
 *    otherwise their decoded bytes are masked and re-encoded. A match inside a long base64 run
 *    of text is dropped.
 * 4. A string that is JSON text is masked as JSON: without field rules or escapes, by scanning
 *    the text in place when every match lies inside a string literal (formatting kept byte for
 *    byte); otherwise parsed, walked and re-serialised compact or with its detected indent.
 * 5. Any other string is scanned by the detectors (types.ts) and for encoded runs that decode to
 *    something they find (encoded.ts); overlaps are resolved in favour of the earliest match,
 *    then the earlier detector in priority order. Text with JSON escapes is scanned decoded too.
 * 6. Object keys are content: masked like values (two keys masked alike get a `#n` suffix).
 * Exempt types (per call) are left in place and counted in `exempted`, so the caller can
 * record who received which kind of data unmasked.
 */
import { createHmac } from "node:crypto";
import type { Detector, ScanContext, Span } from "./types.js";
import { textFeatures } from "./features.js";
import { builtinDetectors, BUILTIN_DETECTOR_IDS } from "./detectors/index.js";
import { createIpDetector } from "./detectors/ip.js";
import { isSecretFieldName, secretValueWorthMasking } from "./detectors/assignment.js";
import { compileLinearRegex, UnsafeRegexError, type LinearRegex, type RegexEngine } from "../linear-regex.js";
import { compileJsonPath, pathMatches, type CompiledPath, type PathSegment } from "./json-path.js";
import { looksLikeBase64Blob } from "./json-walk.js";
import { decodeBase64Field, isDeclaredMedia, isMediaField } from "./media.js";
import { decodeJsonEscapes, findEncodedSpans } from "./encoded.js";
import { protocolFieldKind } from "./protocol-fields.js";
import { formatPath, MaskingRefusedError, refusalStandIn } from "./refusal.js";
import { derivePseudonymKey, isPseudonym, pseudonymFor } from "./pseudonym.js";
import { applySplitCuts, findSplitCuts } from "./split.js";

/** Masks whatever value a JSON path selects (any JSON type; the value becomes the marker string). */
export interface FieldRule {
  /** JSON path, e.g. `$..password`, `$.user.email`, `$.rows[*].ssn`. */
  path: string;
  /** Label in the marker and in hit counts; defaults to the path's last field name. */
  type?: string;
}

/** A configured regex: matches (or its `group`) are masked with type `id`. */
export interface CustomPattern {
  id: string;
  pattern: string;
  flags?: string;
  group?: number;
}

export interface MaskerOptions {
  /** Built-in detector ids to turn off (see BUILTIN_DETECTOR_IDS). */
  disable?: readonly string[];
  /** IP address masking; on by default, v6 included. */
  ip?: { enabled?: boolean; v6?: boolean };
  fields?: readonly FieldRule[];
  customPatterns?: readonly CustomPattern[];
  /**
   * Masking key material (keys.maskingHmac); shared by all replicas so equal values give equal
   * tokens and pseudonyms. Without it, pseudonyms are stable within this process only.
   */
  tokenKey?: string | Uint8Array;
  /**
   * How personal data (e-mail, phone, IP, card, IBAN, SSN) is shown: `pseudonym` (default), a
   * format-preserving stand-in per scope; `placeholder`, `[MASKED:<type>]`. Credentials are
   * always placeholders.
   */
  personalData?: "pseudonym" | "placeholder";
  /** Regex engine for custom patterns; default RE2 when installed, else V8 behind backtracking checks. */
  regexEngine?: RegexEngine;
  /** Deepest nesting walked (objects and arrays, JSON texts inside strings included); default 256. */
  maxDepth?: number;
  /** Most values (strings, numbers, objects, …) walked in one message; default 1,000,000. */
  maxValues?: number;
}

export interface MaskCallOptions {
  /** Detector ids and field-rule types to leave unmasked for this caller (counted in `exempted`). */
  exempt?: Iterable<string>;
  /**
   * Whose pseudonyms: the caller's identity and connection (e.g. `issuer|subject|connection`).
   * Equal values get equal pseudonyms within a scope, different ones across scopes. Default "".
   */
  scope?: string;
}

/** A pseudonym this call issued, and what it stands for (for the restorer's reverse map). */
export interface IssuedPseudonym {
  type: string;
  pseudonym: string;
  original: string;
}

export interface MaskResult<T = unknown> {
  masked: T;
  /** Masked values per type. */
  hits: Record<string, number>;
  /** Values left unmasked because their type was exempted, per type. */
  exempted: Record<string, number>;
  changed: boolean;
  /**
   * Set when the message could not be masked safely (too deep, too many values, a credential in
   * a protocol field). `masked` is then a stand-in that carries nothing of the original (an error
   * response to the same id, or a log notification), and the data path should fail that call
   * with this error.
   */
  refused?: MaskingRefusedError;
  /** Pseudonyms issued by this call (present only when there are some), one per distinct pseudonym. */
  issued?: IssuedPseudonym[];
}

export interface Masker {
  /** Masks a JSON-RPC message (or any JSON value). */
  maskMessage<T>(message: T, options?: MaskCallOptions): MaskResult<T>;
  /** Masks one string as text (JSON text inside it is handled like maskMessage). */
  maskText(text: string, options?: MaskCallOptions): MaskResult<string>;
  /**
   * The spans that maskText would replace in plain text (no JSON parsing, no exemptions):
   * for evaluation and for callers that want positions. `key` is the JSON field name, if any.
   */
  findSpans(text: string, key?: string): Span[];
  /** Ids of the active detectors and field-rule types, for config validation and exemptions. */
  readonly types: readonly string[];
}

interface Run {
  hits: Record<string, number>;
  exempted: Record<string, number>;
  exempt: ReadonlySet<string>;
  /** An exempted field rule's type: the detectors re-finding the same value must not count it twice. */
  exemptedField: string | undefined;
  /** Values walked so far (bounded by maxValues). */
  values: number;
  scope: string;
  /** Pseudonym → what it stands for; at most one entry per masked value of the message. */
  issued: Map<string, IssuedPseudonym> | undefined;
}

interface CompiledField {
  path: CompiledPath;
  type: string;
}

/** Long texts contain every feature anyway: the pre-check only pays off on short values. */
const FEATURE_CHECK_MAX_LENGTH = 512;

/** Smallest string worth scanning: no supported secret or personal datum is shorter. */
const MIN_SCAN_LENGTH = 6;

/** Verdicts are remembered for values up to this length, at most this many at a time. */
const VERDICT_CACHE_MAX_LENGTH = 96;
const VERDICT_CACHE_ENTRIES = 4096;
const NO_SPANS: readonly Span[] = Object.freeze([]);

/** Field names remembered (what the walk needs to know about each), and the longest remembered. */
const FIELD_NAMES_REMEMBERED = 10_000;
const FIELD_NAME_MAX_LENGTH = 256;

/**
 * What the walk needs to know about a field name, decided once per name: JSON field names
 * repeat in every row.
 */
interface FieldName {
  /** Lower-cased: the detectors' context, and what field rules and secret names compare. */
  readonly lower: string;
  /** The name says its value is a secret (`password`, `api_key`, …). */
  readonly secret: boolean;
  /** A field rule's last step names it: only then can a rule select the value. */
  readonly ruleNamed: boolean;
  /** The detectors' spans in the name itself (an object key is content), once asked. */
  ownSpans: readonly Span[] | undefined;
  /** Verdicts on short values under this name (see findSpans), or undefined for a name too long to remember. */
  verdicts: VerdictMaps | undefined;
}

/** One name's remembered verdicts: those of the current generation and of the one before (maps made on first use). */
interface VerdictMaps {
  generation: number;
  current: Map<string, readonly Span[]> | undefined;
  previous: Map<string, readonly Span[]> | undefined;
}

/**
 * The walk recurses once per nesting level; 256 levels stay far inside Node's stack and far
 * beyond any real MCP payload. Deeper messages are refused, never walked.
 */
const DEFAULT_MAX_DEPTH = 256;
const DEFAULT_MAX_VALUES = 1_000_000;

/**
 * Whole values that are a UUID or an ISO 8601 date/time: the commonest unique values in rows,
 * and no detector can find a datum in them (a UUID under a secret-named field is still masked
 * whole, before this point). Skipping them keeps unique ids from defeating the verdict cache.
 */
const BENIGN_WHOLE_VALUE =
  /^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?)$/;

/** BENIGN_WHOLE_VALUE, after a look at the characters every such value has (most values have not). */
function benignWholeValue(text: string): boolean {
  // A UUID is 36 characters with a dash at 8; a date has dashes at 4 and 7 (and is never 36 long).
  const shaped = text.length === 36 ? text.charCodeAt(8) === 45 : text.length >= 10 && text.charCodeAt(4) === 45 && text.charCodeAt(7) === 45;
  return shaped && BENIGN_WHOLE_VALUE.test(text);
}

function customDetector(spec: CustomPattern, engine: RegexEngine | undefined): Detector {
  let re: LinearRegex;
  try {
    re = compileLinearRegex(spec.pattern, spec.flags ?? "", engine, { global: true });
  } catch (err) {
    if (!(err instanceof UnsafeRegexError)) throw err;
    throw new UnsafeRegexError(spec.pattern, `custom masking pattern ${JSON.stringify(spec.id)} rejected: ${err.reason}`);
  }
  const group = spec.group ?? 0;
  return {
    id: spec.id,
    category: "custom",
    patterns: [], // compiled by compileLinearRegex: RE2 or backtracking-checked
    find(text: string, _ctx: ScanContext, out: Span[]): void {
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        const value = m[group];
        if (!value) continue;
        const start = group === 0 ? m.index : m.index + m[0].indexOf(value);
        out.push({ start, end: start + value.length, type: spec.id });
      }
    },
  };
}

/** Keeps the earliest span at each position; on ties the earlier detector, then the longest. */
function resolveOverlaps(spans: Span[], order: Map<string, number>): Span[] {
  spans.sort((a, b) => a.start - b.start || (order.get(a.type) ?? 99) - (order.get(b.type) ?? 99) || b.end - a.end);
  const kept: Span[] = [];
  let reach = -1;
  for (const s of spans) {
    if (s.start >= reach) {
      kept.push(s);
      reach = s.end;
    }
  }
  return kept;
}

const BASE64_CHAR = /[A-Za-z0-9+/=_-]/;

/** A match inside a long base64 run (an inline image, a blob pasted into text) is chance, not a secret. */
function insideBase64Run(text: string, span: Span): boolean {
  for (let i = span.start; i < span.end; i++) if (!BASE64_CHAR.test(text[i]!)) return false;
  let left = span.start;
  while (left > 0 && span.start - left < 256 && BASE64_CHAR.test(text[left - 1]!)) left--;
  let right = span.end;
  while (right < text.length && right - span.end < 256 && BASE64_CHAR.test(text[right]!)) right++;
  return right - left >= 200 && right - left > span.end - span.start + 40;
}

/**
 * True when every span lies inside one JSON string literal and holds no quote or backslash:
 * replacing such spans with a marker (which has neither) keeps the JSON text valid.
 */
function spansInsideJsonStrings(text: string, spans: readonly Span[]): boolean {
  let inString = false;
  let pos = 0;
  for (const span of spans) {
    for (; pos < span.start; pos++) {
      const c = text.charCodeAt(pos);
      if (c === 34) inString = !inString;
      else if (c === 92 && inString) pos++;
    }
    if (!inString || pos !== span.start) return false;
    for (let i = span.start; i < span.end; i++) {
      const c = text.charCodeAt(i);
      if (c === 34 || c === 92) return false;
    }
    pos = span.end;
  }
  return true;
}

function jsonIndent(text: string): string | number | undefined {
  const nl = text.indexOf("\n");
  if (nl < 0) return undefined;
  const m = /^[ \t]+/.exec(text.slice(nl + 1, nl + 20));
  if (!m) return undefined;
  return m[0].startsWith("\t") ? "\t" : Math.min(m[0].length, 10);
}

/** Creates a masker; throws on invalid field paths or unsafe custom patterns (config load time). */
export function createMasker(options: MaskerOptions = {}): Masker {
  const disabled = new Set(options.disable ?? []);
  const detectors: Detector[] = builtinDetectors.filter((d) => !disabled.has(d.id));
  if (options.ip?.enabled !== false && !disabled.has("ip_address")) detectors.push(createIpDetector({ v6: options.ip?.v6 !== false }));
  for (const spec of options.customPatterns ?? []) {
    if (!/^[a-z][a-z0-9_]{0,39}$/.test(spec.id)) throw new Error(`custom masking pattern id ${JSON.stringify(spec.id)}: use lower-case letters, digits and _`);
    if (detectors.some((d) => d.id === spec.id)) throw new Error(`custom masking pattern id ${JSON.stringify(spec.id)} is already in use`);
    detectors.push(customDetector(spec, options.regexEngine));
  }
  const order = new Map(detectors.map((d, i) => [d.id, i]));
  const fields: CompiledField[] = (options.fields ?? []).map((f) => {
    const path = compileJsonPath(f.path);
    return { path, type: f.type ?? path.lastName ?? "field" };
  });
  const fieldLastNames = new Set(fields.map((f) => f.path.lastName));
  const anyWildcardField = fieldLastNames.has(null);
  const secretFieldsOn = !disabled.has("secret_assignment");
  // Bound: FIELD_NAMES_REMEMBERED names of at most FIELD_NAME_MAX_LENGTH characters; when full
  // it starts again empty (longer names are decided each time).
  const fieldNames = new Map<string, FieldName>();
  const describeName = (name: string): FieldName => {
    const lower = name.toLowerCase();
    return {
      lower,
      secret: secretFieldsOn && isSecretFieldName(lower),
      ruleNamed: fieldLastNames.has(lower),
      ownSpans: undefined,
      verdicts: name.length <= FIELD_NAME_MAX_LENGTH ? newVerdictMaps() : undefined,
    };
  };
  const nameOf = (name: string): FieldName => {
    let v = fieldNames.get(name);
    if (v === undefined) {
      v = describeName(name);
      if (name.length <= FIELD_NAME_MAX_LENGTH) {
        if (fieldNames.size >= FIELD_NAMES_REMEMBERED) fieldNames.clear();
        fieldNames.set(name, v);
      }
    }
    return v;
  };
  const tokenKey = options.tokenKey;

  const placeholder = (type: string, value: string): string =>
    tokenKey === undefined ? `[MASKED:${type}]` : `[MASKED:${type}:${createHmac("sha256", tokenKey).update(value).digest("hex").slice(0, 8)}]`;
  const pseudonyms = options.personalData !== "placeholder";
  const pseudonymKey = pseudonyms ? derivePseudonymKey(tokenKey) : undefined;

  /** What replaces a value: a pseudonym for personal data (in pseudonym mode), else a placeholder. */
  const marker = (type: string, value: string, run?: Run, encoded?: boolean): string => {
    if (pseudonymKey === undefined || run === undefined || encoded) return placeholder(type, value);
    if (isPseudonym(type, value)) return value;
    const p = pseudonymFor(pseudonymKey, run.scope, type, value);
    if (p === undefined) return placeholder(type, value);
    (run.issued ??= new Map()).set(p, { type, pseudonym: p, original: value });
    return p;
  };

  /** Counts a hit; returns false when the type is exempt for this caller (leave the value). */
  const record = (run: Run, type: string): boolean => {
    if (run.exempt.has(type)) {
      if (type !== run.exemptedField) run.exempted[type] = (run.exempted[type] ?? 0) + 1;
      return false;
    }
    run.hits[type] = (run.hits[type] ?? 0) + 1;
    return true;
  };

  // Short values repeat across rows (statuses, names, dates, tags): the detectors' verdict on a
  // (field name, value) pair is remembered, in maps per field name. Bound: VERDICT_CACHE_ENTRIES
  // pairs. Two generations of half that each: when the current one is full, the previous one is
  // emptied and the current one becomes the previous; a verdict found in the previous generation
  // moves to the current one, so values in use stay.
  const generationSize = VERDICT_CACHE_ENTRIES / 2;
  let generation = 0;
  let inGeneration = 0;
  let currentMaps: Map<string, readonly Span[]>[] = [];
  let previousMaps: Map<string, readonly Span[]>[] = [];
  function newVerdictMaps(): VerdictMaps {
    return { generation, current: undefined, previous: undefined };
  }
  const remember = (maps: VerdictMaps, text: string, spans: readonly Span[]): void => {
    if (maps.current === undefined) {
      // At most one map per remembered verdict: the lists stay within the bound too.
      maps.current = new Map();
      currentMaps.push(maps.current);
    }
    maps.current.set(text, spans);
    if (++inGeneration < generationSize) return;
    for (const m of previousMaps) m.clear();
    previousMaps = currentMaps;
    currentMaps = [];
    generation++;
    inGeneration = 0;
  };
  const unnamed = describeName("");
  const findSpans = (text: string, name: FieldName | undefined): readonly Span[] => {
    if (text.length < MIN_SCAN_LENGTH) return NO_SPANS;
    const key = name?.lower;
    if (text.length > VERDICT_CACHE_MAX_LENGTH) return detect(text, key);
    if (benignWholeValue(text)) return NO_SPANS;
    const maps = (name ?? unnamed).verdicts;
    if (maps === undefined) return detect(text, key);
    if (maps.generation !== generation) {
      maps.previous = maps.generation === generation - 1 ? maps.current : undefined;
      maps.current = undefined;
      maps.generation = generation;
    }
    let known = maps.current?.get(text);
    if (known !== undefined) return known;
    known = maps.previous?.get(text);
    if (known !== undefined) {
      remember(maps, text, known);
      return known;
    }
    const spans = detect(text, key);
    remember(maps, text, spans.length === 0 ? NO_SPANS : Object.freeze(spans));
    return spans;
  };

  /** The detectors' spans, plus (unless `plain`) spans that only show once decoded: base64, hex, percent-encoding. */
  const detect = (text: string, key: string | undefined, plain = false): Span[] => {
    const spans: Span[] = [];
    const ctx: ScanContext = { key };
    let encoded = !plain && text.length >= 16;
    if (text.length <= FEATURE_CHECK_MAX_LENGTH) {
      const features = textFeatures(text);
      for (const d of detectors) if (!d.needs || d.needs(features)) d.find(text, ctx, spans);
      encoded &&= features.longestEncodedRun >= 16 || features.percent;
    } else {
      for (const d of detectors) d.find(text, ctx, spans);
    }
    const direct = spans.length === 0 ? spans : resolveOverlaps(spans, order).filter((span) => !insideBase64Run(text, span));
    if (!encoded) return direct;
    // Decoded one level deep: the decoded text is scanned by the detectors alone.
    const decodedSpans: Span[] = [];
    findEncodedSpans(text, (decoded) => (decoded.length < MIN_SCAN_LENGTH ? NO_SPANS : detect(decoded, undefined, true)), decodedSpans);
    return decodedSpans.length === 0 ? direct : resolveOverlaps([...direct, ...decodedSpans], order);
  };

  const categoryOf = new Map(detectors.map((d) => [d.id, d.category]));
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxValues = options.maxValues ?? DEFAULT_MAX_VALUES;

  /**
   * Everything masking would replace in plain text: the detectors' spans, plus spans that only
   * show once decoded (base64, hex, percent-encoding). Encoded runs are decoded one level deep.
   */
  const textSpans = findSpans;

  const scanText = (text: string, name: FieldName | undefined, run: Run): string => {
    const out = applySpans(text, textSpans(text, name), run);
    // Markers and pseudonyms hold no backslash: without one in the text there is nothing to decode
    // (and `out`, built piece by piece, is not flattened just to look).
    if (!text.includes("\\")) return out;
    // JSON string escapes (`\u0067hp_…`, `https:\/\/`): whoever JSON-decodes the text gets the
    // secret, so the decoded text is scanned too; if it holds more, the decoded text is masked.
    const decoded = decodeJsonEscapes(out);
    if (decoded === undefined) return out;
    const spans = textSpans(decoded, name);
    return spans.length === 0 ? out : applySpans(decoded, spans, run);
  };

  const applySpans = (text: string, spans: readonly Span[], run: Run): string => {
    if (spans.length === 0) return text;
    let out = "";
    let pos = 0;
    for (const span of spans) {
      if (!record(run, span.type)) continue;
      out += text.slice(pos, span.start) + marker(span.type, text.slice(span.start, span.end), run, span.encoded);
      pos = span.end;
    }
    return pos === 0 ? text : out + text.slice(pos);
  };

  /** The field rule selecting the value at `path`; `name` is the value's field name when the path ends in it. */
  const fieldRuleFor = (path: PathSegment[], roots: number[], name: FieldName | undefined): CompiledField | undefined => {
    if (!anyWildcardField) {
      const last = path[path.length - 1];
      if (typeof last !== "string" || !(name !== undefined ? name.ruleNamed : fieldLastNames.has(last.toLowerCase()))) return undefined;
    }
    for (const f of fields) for (const root of roots) if (pathMatches(path, f.path, root)) return f;
    return undefined;
  };

  const maskString = (text: string, name: FieldName | undefined, path: PathSegment[], roots: number[], run: Run): string => {
    if (text.length < MIN_SCAN_LENGTH) return text;
    if (looksLikeBase64Blob(text)) return maskBase64Text(text, name, path, roots, run);
    const first = text.charCodeAt(0);
    const trimmed = first === 123 || first === 91 || first <= 32 ? text.trim() : "";
    if ((trimmed.startsWith("{") && trimmed.endsWith("}")) || (trimmed.startsWith("[") && trimmed.endsWith("]"))) {
      if (fields.length === 0 && !text.includes("\\")) {
        // Fast path without field rules: scan the JSON text itself (detectors see field names as
        // context there too) and keep it byte-for-byte apart from the masked values, provided every
        // match sits inside a string literal. Otherwise parse, mask structurally and re-serialise.
        // Text with escapes is always parsed: `\u0067hp_…` is a secret once decoded.
        const spans = textSpans(text, name);
        if (spans.length === 0) return text;
        if (spansInsideJsonStrings(text, spans)) return applySpans(text, spans, run);
      }
      let parsed: unknown;
      let ok = true;
      try {
        parsed = JSON.parse(trimmed);
      } catch {
        ok = false;
      }
      if (ok) {
        // A tool returned JSON as text: mask it structurally, with a new root for field rules.
        const maskedValue = walk(parsed, undefined, path, [...roots, path.length], run);
        if (maskedValue === parsed) return text;
        const lead = text.slice(0, text.indexOf(trimmed[0]!));
        const tail = text.slice(lead.length + trimmed.length);
        return lead + JSON.stringify(maskedValue, null, jsonIndent(trimmed)) + tail;
      }
    }
    return scanText(text, name, run);
  };

  /**
   * A data: URI or a long base64 body in a text field: passed when it decodes as the media it
   * declares; otherwise its decoded text is masked and re-encoded.
   */
  const maskBase64Text = (text: string, name: FieldName | undefined, path: PathSegment[], roots: number[], run: Run): string => {
    const comma = text.startsWith("data:") ? text.indexOf(",") : -1;
    const mime = comma > 0 ? text.slice(5, text.indexOf(";")) : undefined;
    const body = comma > 0 ? text.slice(comma + 1) : text;
    const bytes = decodeBase64Field(body);
    // Only shaped like base64 (of a length base64 never has, say): text, scanned as text.
    if (bytes === undefined && comma < 0) return scanText(text, name, run);
    const masked = bytes === undefined ? maskNotBase64(body, path, roots, run) : maskDecodedMedia(body, bytes, mime, run);
    return masked === body ? text : text.slice(0, comma + 1) + masked;
  };

  /** `data`/`blob` fields: real media of the declared type passes; anything else is content. */
  const maskMedia = (value: string, mimeType: unknown, path: PathSegment[], roots: number[], run: Run): string => {
    const bytes = decodeBase64Field(value);
    return bytes === undefined ? maskNotBase64(value, path, roots, run) : maskDecodedMedia(value, bytes, mimeType, run);
  };

  /**
   * Not base64 at all: plain text posing as media. Masked as text, and sent on as base64 so
   * clients that validate the field still accept it. Text merely shaped like base64 is scanned
   * as plain text (maskString would hand it back here).
   */
  const maskNotBase64 = (value: string, path: PathSegment[], roots: number[], run: Run): string => {
    const masked = looksLikeBase64Blob(value) ? scanText(value, undefined, run) : maskString(value, undefined, path, roots, run);
    return masked === value ? value : Buffer.from(masked, "utf8").toString("base64");
  };

  const maskDecodedMedia = (value: string, bytes: Buffer, mimeType: unknown, run: Run): string => {
    if (isDeclaredMedia(bytes, mimeType)) return value;
    // latin1 maps byte for byte, so the masked text re-encodes to exactly the original bytes
    // around what was masked, whether the payload is UTF-8 text or binary.
    const text = bytes.toString("latin1");
    const masked = scanText(text, undefined, run);
    if (masked !== text) return Buffer.from(masked, "latin1").toString("base64");
    // Short text can be valid base64 by chance (`AKIA…` is): read the field as text too.
    return applySpans(value, findSpans(value, undefined), run);
  };

  /** An object key is content too: a secret or an address used as a key is masked like a value. */
  const maskKey = (key: string, name: FieldName, run: Run): string => {
    if (key.length < MIN_SCAN_LENGTH) return key;
    let spans = name.ownSpans;
    if (spans === undefined) {
      spans = textSpans(key, undefined);
      // Remembered with the name (names are bounded in number and length).
      if (name.verdicts !== undefined) name.ownSpans = spans.length === 0 ? NO_SPANS : Object.freeze([...spans]);
    }
    return spans.length === 0 ? key : applySpans(key, spans, run);
  };

  const refuse = (reason: "too_deep" | "too_many_values", path: PathSegment[]): never => {
    throw new MaskingRefusedError(reason, formatPath(path));
  };

  /**
   * A protocol field: never rewritten, still scanned. A credential in it refuses the message;
   * personal data (an address in a resource URI) stays, as the protocol needs it verbatim.
   */
  const scanProtocolField = (value: unknown, path: PathSegment[], run: Run): void => {
    // Iterative: a protocol field's subtree (capabilities, a reserved _meta value) can be as
    // deep as the upstream likes; the stack holds at most maxValues entries.
    const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: path.length }];
    while (stack.length > 0) {
      const { v, depth } = stack.pop()!;
      if (++run.values > maxValues) refuse("too_many_values", path);
      if (depth > maxDepth) refuse("too_deep", path);
      const strings: string[] = [];
      if (typeof v === "string") strings.push(v);
      else if (v !== null && typeof v === "object") {
        if (Array.isArray(v)) for (const item of v) stack.push({ v: item, depth: depth + 1 });
        else
          for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
            strings.push(k);
            stack.push({ v: item, depth: depth + 1 });
          }
      }
      for (const text of strings) {
        if (text.length < MIN_SCAN_LENGTH) continue;
        const decoded = decodeJsonEscapes(text);
        for (const t of decoded === undefined ? [text] : [text, decoded]) {
          for (const span of textSpans(t, undefined)) {
            if (categoryOf.get(span.type) === "personal") continue;
            if (run.exempt.has(span.type)) continue;
            throw new MaskingRefusedError("secret_in_protocol_field", formatPath(path), span.type);
          }
        }
      }
    }
  };

  const walk = (value: unknown, name: FieldName | undefined, path: PathSegment[], roots: number[], run: Run): unknown => {
    if (fields.length > 0 && path.length > 0) {
      const rule = fieldRuleFor(path, roots, name);
      if (rule && value !== null && value !== undefined) {
        if (record(run, rule.type)) return marker(rule.type, typeof value === "string" ? value : JSON.stringify(value));
        // Exempt for this caller: still look inside for other types.
        const outer = run.exemptedField;
        run.exemptedField = rule.type;
        const inner = walkValue(value, name, path, roots, run);
        run.exemptedField = outer;
        return inner;
      }
    }
    return walkValue(value, name, path, roots, run);
  };

  const walkValue = (value: unknown, name: FieldName | undefined, path: PathSegment[], roots: number[], run: Run): unknown => {
    if (++run.values > maxValues) refuse("too_many_values", path);
    if (typeof value === "string") {
      if (name !== undefined && name.secret && secretValueWorthMasking(value) && !value.startsWith("[MASKED")) {
        const structured = value.trimStart().startsWith("{") || value.trimStart().startsWith("[");
        if (!structured) {
          const inner = findSpans(value, name);
          const type = inner.length === 1 && inner[0]!.start === 0 && inner[0]!.end === value.length ? inner[0]!.type : "secret_assignment";
          return record(run, type) ? marker(type, value) : value;
        }
      }
      return maskString(value, name, path, roots, run);
    }
    if (value === null || typeof value !== "object") return value;
    if (path.length >= maxDepth) refuse("too_deep", path);
    if (Array.isArray(value)) {
      // A credential split across consecutive text items is cut out of each (split.ts) first.
      const items = (name?.lower === "content" || name?.lower === "contents") && value.length > 1 ? maskSplitSecrets(value, run) : value;
      let copy: unknown[] | undefined = items === value ? undefined : items;
      for (let i = 0; i < items.length; i++) {
        path.push(i);
        const item: unknown = items[i];
        const next = walk(item, name, path, roots, run);
        path.pop();
        if (next !== item) {
          copy ??= value.slice();
          copy[i] = next;
        }
      }
      return copy ?? value;
    }
    const obj = value as Record<string, unknown>;
    const atMessageRoot = roots.length === 1;
    const idKeyed = atMessageRoot && path.length === 2 && protocolFieldKind(path.slice(0, 1), path[1] as string, true) === "id-keyed";
    let copy: Record<string, unknown> | undefined;
    let renamed: Map<string, string> | undefined;
    for (const k of Object.keys(obj)) {
      const item = obj[k];
      const kind = protocolFieldKind(path, k, atMessageRoot);
      const field = nameOf(k);
      let next: unknown;
      path.push(k);
      if (kind === "protocol") {
        scanProtocolField(item, path, run);
        next = item;
      } else if (isMediaField(obj, k)) {
        next = maskMedia(item as string, obj.mimeType, path, roots, run);
      } else {
        next = walk(item, field, path, roots, run);
      }
      path.pop();
      if (next !== item) {
        copy ??= { ...obj };
        copy[k] = next;
      }
      if (kind === undefined && !idKeyed) {
        const mk = maskKey(k, field, run);
        if (mk !== k) (renamed ??= new Map()).set(k, mk);
      }
    }
    if (renamed === undefined) return copy ?? value;
    // Keys were masked: rebuild in the original order; two keys masked alike get a suffix so
    // neither value is lost.
    const source = copy ?? obj;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(source)) {
      let newKey = renamed.get(k) ?? k;
      for (let n = 2; Object.prototype.hasOwnProperty.call(out, newKey); n++) newKey = `${renamed.get(k) ?? k}#${n}`;
      out[newKey] = source[k];
    }
    return out;
  };

  /** `items` with the parts of every credential that crosses a text item boundary replaced by placeholders (a copy), or `items` itself. */
  const maskSplitSecrets = (items: unknown[], run: Run): unknown[] => {
    const cuts = findSplitCuts(items, (window) => detect(window, undefined).filter((span) => categoryOf.get(span.type) !== "personal"));
    if (cuts.length === 0) return items;
    const counted = new Map<number, boolean>();
    const kept = cuts.filter((c) => {
      let masked = counted.get(c.span);
      if (masked === undefined) counted.set(c.span, (masked = record(run, c.type)));
      return masked;
    });
    return kept.length === 0 ? items : applySplitCuts(items, kept, (c) => placeholder(c.type, c.value));
  };

  const newRun = (options?: MaskCallOptions): Run => ({
    hits: {},
    exempted: {},
    exempt: new Set(options?.exempt ?? []),
    exemptedField: undefined,
    values: 0,
    scope: options?.scope ?? "",
    issued: undefined,
  });

  /** Runs a walk; a refusal becomes a stand-in message plus the typed error. */
  const guarded = <T>(input: T, run: Run, body: () => T, standIn: (err: MaskingRefusedError) => T): MaskResult<T> => {
    let masked: T;
    try {
      masked = body();
    } catch (err) {
      if (!(err instanceof MaskingRefusedError)) throw err;
      const type = err.reason === "secret_in_protocol_field" ? "refused_protocol_field" : "refused_too_complex";
      return { masked: standIn(err), hits: { [type]: 1 }, exempted: {}, changed: true, refused: err };
    }
    const result: MaskResult<T> = { masked, hits: run.hits, exempted: run.exempted, changed: masked !== input };
    if (run.issued) result.issued = [...run.issued.values()];
    return result;
  };

  return {
    findSpans: (text: string, key?: string) => [...findSpans(text, key === undefined ? undefined : nameOf(key))],
    types: [...detectors.map((d) => d.id), ...fields.map((f) => f.type)],
    maskMessage<T>(message: T, callOptions?: MaskCallOptions): MaskResult<T> {
      const run = newRun(callOptions);
      return guarded(message, run, () => walk(message, undefined, [], [0], run) as T, (err) => refusalStandIn(message, err) as T);
    },
    maskText(text: string, callOptions?: MaskCallOptions): MaskResult<string> {
      const run = newRun(callOptions);
      return guarded(text, run, () => maskString(text, undefined, [], [0], run), (err) => `[MASKED:${err.reason}]`);
    },
  };
}

export { BUILTIN_DETECTOR_IDS };
export type { Span };
