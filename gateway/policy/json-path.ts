/**
 * The JSON-path subset rules use to point into a request's `params`:
 *   `$.arguments.sql`, `$.arguments.options.limit`, `$.arguments.files[0]`, `$.arguments.files[-1]`,
 *   `$.arguments.files[*].path`, `$['arguments']['odd key']`, `$.arguments.*`, `$..path`, `$.arguments..*`.
 * `$` is the request's `params` (so `$.name` is the tool or prompt name, `$.uri` the resource).
 * Names are case-sensitive, as JSON keys are. A path selects zero or more values.
 */

export type PathStep = { descendant: boolean } & ({ kind: "name"; name: string } | { kind: "index"; index: number } | { kind: "wildcard" });

export interface CompiledPath {
  readonly source: string;
  readonly steps: readonly PathStep[];
}

export class JsonPathError extends Error {}

const TOKEN = /\.\.|\.|\[\s*(\*|-?\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\]|[A-Za-z0-9_$@:-]+|\*/y;

export function compileJsonPath(source: string): CompiledPath {
  if (!source.startsWith("$")) throw new JsonPathError(`must start with "$" (the request's params), e.g. $.arguments.sql`);
  const steps: PathStep[] = [];
  let dot: "." | ".." | null = null;
  TOKEN.lastIndex = 1;
  while (TOKEN.lastIndex < source.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(source);
    if (!m || m.index !== at) throw new JsonPathError(`cannot read the path at position ${at}: use .name, ['name'], [0], [*] or ..name`);
    const token = m[0];
    if (token === "." || token === "..") {
      if (dot !== null) throw new JsonPathError(`unexpected "${token}" at position ${at}`);
      dot = token;
      continue;
    }
    const bracket = m[1];
    const descendant = dot === "..";
    if (bracket !== undefined) {
      if (dot === ".") throw new JsonPathError(`"." before "[" at position ${at}: write name[0] or ['name']`);
      if (bracket === "*") steps.push({ descendant, kind: "wildcard" });
      else if (/^-?\d+$/.test(bracket)) steps.push({ descendant, kind: "index", index: Number(bracket) });
      else {
        const quoted = bracket.startsWith("'") ? `"${bracket.slice(1, -1).replace(/\\'/g, "'").replace(/"/g, '\\"')}"` : bracket;
        steps.push({ descendant, kind: "name", name: JSON.parse(quoted) as string });
      }
    } else {
      if (dot === null) throw new JsonPathError(`expected "." or "[" at position ${at}`);
      steps.push(token === "*" ? { descendant, kind: "wildcard" } : { descendant, kind: "name", name: token });
    }
    dot = null;
  }
  if (dot !== null) throw new JsonPathError(`ends with "${dot}"`);
  return { source, steps };
}

function children(node: unknown, step: PathStep, out: unknown[]): void {
  if (step.kind === "wildcard") {
    if (Array.isArray(node)) out.push(...node);
    else if (node !== null && typeof node === "object") out.push(...Object.values(node));
  } else if (step.kind === "index") {
    if (Array.isArray(node)) {
      const i = step.index < 0 ? node.length + step.index : step.index;
      if (i >= 0 && i < node.length) out.push(node[i]);
    }
  } else if (node !== null && typeof node === "object" && !Array.isArray(node) && Object.hasOwn(node, step.name)) {
    out.push((node as Record<string, unknown>)[step.name]);
  }
}

/** `node` and everything below it, depth first. */
function selfAndDescendants(node: unknown, out: unknown[]): void {
  const stack = [node];
  while (stack.length > 0) {
    const current = stack.pop();
    out.push(current);
    if (Array.isArray(current)) for (let i = current.length - 1; i >= 0; i--) stack.push(current[i]);
    else if (current !== null && typeof current === "object") stack.push(...Object.values(current).reverse());
  }
}

/** The values the path selects in `root` (absent keys select nothing; `null` is a value). */
export function selectPath(path: CompiledPath, root: unknown): unknown[] {
  let current: unknown[] = [root];
  for (const step of path.steps) {
    const next: unknown[] = [];
    for (const node of current) {
      if (step.descendant) {
        const all: unknown[] = [];
        selfAndDescendants(node, all);
        for (const d of all) children(d, step, next);
      } else children(node, step, next);
    }
    current = next;
    if (current.length === 0) break;
  }
  return current.filter((v) => v !== undefined);
}
