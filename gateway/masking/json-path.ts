/**
 * The JSON-path subset used by field rules: `$.user.email`, `$..password`, `$.rows[*].ssn`,
 * `$['odd key']`, `$.items[0].token`, `$..*`. Names compare case-insensitively, because the
 * same field is spelt `Password` by one tool and `password` by the next.
 */
export type PathSegment = string | number;

interface Step {
  descendant: boolean;
  /** Lower-cased name, index, or "*" for any. */
  name: string | number;
}

export interface CompiledPath {
  readonly source: string;
  readonly steps: readonly Step[];
  /** The last step's name when it is a literal name: a quick filter before full matching. */
  readonly lastName: string | null;
}

export class JsonPathError extends Error {}

const TOKEN = /\.\.|\.|\[\s*(\*|\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\]|[^.[\]]+/y;

export function compileJsonPath(source: string): CompiledPath {
  if (!source.startsWith("$")) throw new JsonPathError(`JSON path ${JSON.stringify(source)} must start with "$"`);
  const steps: Step[] = [];
  let pendingDescendant: boolean | null = null;
  TOKEN.lastIndex = 1;
  while (TOKEN.lastIndex < source.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(source);
    if (!m || m.index !== at) throw new JsonPathError(`JSON path ${JSON.stringify(source)}: cannot parse at position ${at}`);
    const tok = m[0];
    if (tok === "..") {
      pendingDescendant = true;
      continue;
    }
    if (tok === ".") {
      pendingDescendant = false;
      continue;
    }
    const bracket = m[1];
    let name: string | number;
    if (bracket !== undefined) {
      name = bracket === "*" ? "*" : /^\d+$/.test(bracket) ? Number(bracket) : (JSON.parse(bracket.startsWith("'") ? `"${bracket.slice(1, -1).replace(/"/g, '\\"')}"` : bracket) as string).toLowerCase();
    } else {
      if (pendingDescendant === null) throw new JsonPathError(`JSON path ${JSON.stringify(source)}: expected "." or "[" at position ${at}`);
      name = tok === "*" ? "*" : tok.toLowerCase();
    }
    steps.push({ descendant: pendingDescendant === true, name });
    pendingDescendant = null;
  }
  if (pendingDescendant !== null) throw new JsonPathError(`JSON path ${JSON.stringify(source)} ends with "."`);
  if (steps.length === 0) throw new JsonPathError(`JSON path ${JSON.stringify(source)} selects the whole document; name a field`);
  const last = steps[steps.length - 1]!.name;
  return { source, steps, lastName: typeof last === "string" && last !== "*" ? last : null };
}

function stepMatches(step: Step, seg: PathSegment): boolean {
  if (step.name === "*") return true;
  if (typeof step.name === "number") return seg === step.name;
  return typeof seg === "string" && seg.toLowerCase() === step.name;
}

/** Whether the path (from a document root) is selected by the compiled JSON path. */
export function pathMatches(path: readonly PathSegment[], compiled: CompiledPath, from = 0): boolean {
  const match = (si: number, pi: number): boolean => {
    if (si === compiled.steps.length) return pi === path.length;
    const step = compiled.steps[si]!;
    if (!step.descendant) return pi < path.length && stepMatches(step, path[pi]!) && match(si + 1, pi + 1);
    for (let k = pi; k < path.length; k++) if (stepMatches(step, path[k]!) && match(si + 1, k + 1)) return true;
    return false;
  };
  return match(0, from);
}
