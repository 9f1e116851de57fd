// The gateway's structured log (pino, as Fastify uses). Credentials in headers are redacted at
// the logger, and payloads are never logged: the audit store holds them (masked).
// Two renderings of the same records: JSON lines for machines (the default when stdout is not a
// terminal), and one readable line per record for a person at a terminal (`log.format: pretty`).
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export type { Logger };

export type LogFormat = "pretty" | "json";

export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers[\"x-api-key\"]",
  "headers.authorization",
  "headers.cookie",
  "*.password",
  "*.secret",
  "*.token",
];

/** `auto` (or nothing): pretty on a terminal, JSON otherwise. */
export function resolveLogFormat(format: LogFormat | "auto" | undefined, stream: NodeJS.WritableStream = process.stdout): LogFormat {
  if (format === "pretty" || format === "json") return format;
  return (stream as { isTTY?: boolean }).isTTY ? "pretty" : "json";
}

// A pino child takes its parent's level when it is made and keeps it: a reload that changes
// log.level reaches the children still alive (a session's upstream log, the bot's) through this
// list. Bounded by the children alive: each leaves it when it is collected.
const childrenOf = new WeakMap<Logger, Set<WeakRef<Logger>>>();
const collected = new FinalizationRegistry<{ set: Set<WeakRef<Logger>>; ref: WeakRef<Logger> }>(({ set, ref }) => set.delete(ref));

/** Sets the level of `root` and of every child logger made from it that is still alive. */
export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const ref of childrenOf.get(root) ?? []) {
    const child = ref.deref();
    if (child) child.level = level;
  }
}

export function createLogger(level: string, destination?: NodeJS.WritableStream, format: LogFormat = "json"): Logger {
  const out = destination ?? process.stdout;
  const children = new Set<WeakRef<Logger>>();
  const onChild = (child: Logger) => {
    const ref = new WeakRef(child);
    children.add(ref);
    collected.register(child, { set: children, ref });
  };
  const root = pino(
    { level, onChild, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, base: { service: "countersign" } },
    format === "pretty" ? prettyStream(out, { colour: (out as { isTTY?: boolean }).isTTY === true && !process.env.NO_COLOR }) : out,
  );
  childrenOf.set(root, children);
  return root;
}

const LEVELS: Record<number, { name: string; colour: string }> = {
  10: { name: "TRACE", colour: "90" },
  20: { name: "DEBUG", colour: "36" },
  30: { name: "INFO ", colour: "32" },
  40: { name: "WARN ", colour: "33" },
  50: { name: "ERROR", colour: "31" },
  60: { name: "FATAL", colour: "35" },
};
/** Fields every record has, or that the line shows in its own place. */
const SHOWN = new Set(["level", "time", "msg", "service", "pid", "hostname"]);

/** `12:03:04.512 INFO  message  key=value key2="with space"`: one line per record, local time. */
export function formatPrettyLine(json: string, opts: { colour?: boolean } = {}): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = LEVELS[Number(rec.level)] ?? { name: String(rec.level).padEnd(5), colour: "0" };
  const t = new Date(typeof rec.time === "number" ? rec.time : Date.now());
  const time = `${String(t.getHours()).padStart(2, "0")}:${String(t.getMinutes()).padStart(2, "0")}:${String(t.getSeconds()).padStart(2, "0")}.${String(t.getMilliseconds()).padStart(3, "0")}`;
  const fields = Object.entries(rec)
    .filter(([k]) => !SHOWN.has(k))
    .map(([k, v]) => `${k}=${fieldValue(v)}`)
    .join(" ");
  const paint = (code: string, s: string) => (opts.colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  // A message is one line: control characters (newlines from an error text, ANSI escapes from an
  // upstream's stderr) are shown escaped, never interpreted by the terminal.
  const msg = escapeControl(String(rec.msg ?? ""));
  return `${paint("90", time)} ${paint(level.colour, level.name)} ${msg}${fields ? `  ${paint("90", escapeControl(fields))}` : ""}`;
}

function fieldValue(v: unknown): string {
  if (typeof v === "string") return /^[\w.:/@+-]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  if (typeof v === "object" && v !== null) return JSON.stringify(v);
  return String(v);
}

function escapeControl(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
}

function prettyStream(out: NodeJS.WritableStream, opts: { colour: boolean }): Writable {
  let partial = "";
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      const text = lines.filter(Boolean).map((l) => formatPrettyLine(l, opts) + "\n").join("");
      if (text) out.write(text);
      cb();
    },
  });
}
