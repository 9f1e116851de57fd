/** Public surface of the masking engine. */
export { createMasker, BUILTIN_DETECTOR_IDS } from "./engine.js";
export type { Masker, MaskerOptions, MaskCallOptions, MaskResult, FieldRule, CustomPattern, Span, IssuedPseudonym } from "./engine.js";
export { MaskingRefusedError } from "./refusal.js";
export { maskingScope } from "./scope.js";
export { derivePseudonymKey, isPseudonym, pseudonymFor, PSEUDONYM_TYPES } from "./pseudonym.js";
export { compileLinearRegex, assertBacktrackSafe, UnsafeRegexError, defaultRegexEngine } from "../linear-regex.js";
export { JsonPathError } from "./json-path.js";
