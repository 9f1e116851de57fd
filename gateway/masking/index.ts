/** Public surface of the masking engine. */
export { createMasker, BUILTIN_DETECTOR_IDS } from "./engine.js";
export type { Masker, MaskerOptions, MaskCallOptions, MaskResult, FieldRule, CustomPattern, Span } from "./engine.js";
export { compileLinearRegex, assertBacktrackSafe, UnsafeRegexError, defaultRegexEngine } from "../linear-regex.js";
export { JsonPathError } from "./json-path.js";
