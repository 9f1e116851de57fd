// Generators of hostile spellings shared by the adversarial suite: one target written many ways
// (case of scheme and host, dot-segment detours, escapes of unreserved characters, surrounding
// whitespace, Unicode composition).
import fc from "fast-check";

const casing = (s: string) => fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(""));
const escaping = (s: string) =>
  fc.array(fc.integer({ min: 0, max: 2 }), { minLength: s.length, maxLength: s.length }).map((how) =>
    [...s].map((c, i) => (/[a-z0-9]/i.test(c) && how[i] ? `%${c.charCodeAt(0).toString(16)[how[i] === 1 ? "toLowerCase" : "toUpperCase"]()}` : c)).join(""),
  );
const detour = fc.array(fc.constantFrom("./", "x/../", "%2E/", "a/b/../../", "q/%2e%2E/", "z/%2E./"), { maxLength: 3 }).map((d) => d.join(""));
const space = fc.constantFrom("", " ", "\t", "\n", "\u00a0", "\u2003", "\ufeff");

/** Spellings of demo://resource/static/document/<n>. */
export const uriSpellings: fc.Arbitrary<string> = fc
  .tuple(casing("demo"), casing("resource"), detour, escaping("static"), detour, escaping("document"), fc.stringMatching(/^[1-9][0-9]?$/), space, space)
  .map(([scheme, host, d1, st, d2, doc, leaf, pre, post]) => `${pre}${scheme}://${host}/${d1}${st}/${d2}${doc}/${leaf}${post}`);

/** Spellings of a tool or prompt name: surrounding whitespace of every kind, and its NFD form. */
export const nameSpellings = (name: string): fc.Arbitrary<string> =>
  fc.tuple(space, space, fc.boolean()).map(([a, b, nfd]) => `${a}${nfd ? name.normalize("NFD") : name}${b}`).filter((s) => s !== name);
