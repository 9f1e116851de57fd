/**
 * Glob matching for tool, prompt and resource names, connections and subjects: `*` is any run of
 * characters (including none, `/` included), `?` is one character, everything else is literal and
 * case-sensitive. The names come from callers, so matching never backtracks: the two-pointer
 * algorithm below takes at most O(name × glob) steps, and a glob is short.
 */
export function globMatch(glob: string, name: string): boolean {
  let g = 0;
  let n = 0;
  let starG = -1;
  let starN = 0;
  while (n < name.length) {
    const c = glob[g];
    if (c === "*") {
      starG = g++;
      starN = n;
    } else if (g < glob.length && (c === "?" || c === name[n])) {
      g++;
      n++;
    } else if (starG >= 0) {
      // Let the last star absorb one more character and retry from there.
      g = starG + 1;
      n = ++starN;
    } else return false;
  }
  while (glob[g] === "*") g++;
  return g === glob.length;
}

export const anyGlobMatches = (globs: readonly string[], name: string): boolean => globs.some((g) => globMatch(g, name));
