// A stdio MCP server as a child process, one per client session (a stdio server accepts one
// initialize). The child gets an explicit environment, never the gateway's own: it must not see
// the database URL, Slack tokens or signing keys. Messages are newline-delimited JSON.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { Logger } from "../../log.js";
import { CountersignError } from "../../errors.js";
import { revealValue, type ConfigValue } from "../../config/secret.js";
import type { JsonRpcMessage } from "../jsonrpc.js";
import type { UpstreamEvents, UpstreamTransport } from "./types.js";

export interface StdioOptions {
  command: string;
  args: string[];
  cwd?: string | undefined;
  env: Record<string, ConfigValue>;
  maxMessageBytes: number;
  log: Logger;
  /** Masks what the child writes to stderr before it reaches the log, an error or the store. */
  redact?: ((text: string) => string) | undefined;
}

/** The base every child gets; the config adds to it. */
const BASE_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT"];

export function childEnvironment(extra: Record<string, ConfigValue>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of BASE_ENV) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  for (const [k, v] of Object.entries(extra)) env[k] = revealValue(v);
  return env;
}

export class StdioUpstream implements UpstreamTransport {
  readonly kind = "stdio" as const;
  readonly upstreamSessionId = undefined;
  #child?: ChildProcessWithoutNullStreams;
  #closing = false;
  #stderrTail: string[] = [];

  constructor(private readonly opts: StdioOptions, private readonly events: UpstreamEvents) {}

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    const { command, args, cwd, env } = this.opts;
    const child = spawn(command, args, { cwd, env: childEnvironment(env), stdio: ["pipe", "pipe", "pipe"] });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err) =>
        reject(new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `cannot start '${command}': ${(err as NodeJS.ErrnoException).code ?? err.message}`)),
      );
    });
    child.stdin.on("error", () => {}); // a dead child's stdin: reported through 'exit'
    this.#readStdout(child);
    this.#readStderr(child);
    child.on("exit", (code, signal) => {
      if (this.#closing) return this.events.closed("closed", "closed by the gateway");
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      const tail = this.#stderrTail.slice(-3).join(" | ");
      this.events.closed("exited", `the server process ended (${how})${tail ? `; last output: ${tail}` : ""}`);
    });
  }

  async send(msg: JsonRpcMessage): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null || !child.stdin.writable) {
      throw new CountersignError("CS_ERR_UPSTREAM_EXITED", "the server process is not running");
    }
    // Backpressure: a child that does not read its stdin makes the sender wait for `drain` (or the
    // child's end), instead of the gateway buffering without bound.
    if (!child.stdin.write(JSON.stringify(msg) + "\n")) await drained(child.stdin);
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.#closing = true;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.stdin.end();
    // The MCP stdio shutdown sequence: close stdin, then SIGTERM, then SIGKILL.
    const term = setTimeout(() => child.kill("SIGTERM"), 1000);
    const kill = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }

  #readStdout(child: ChildProcessWithoutNullStreams): void {
    const max = this.opts.maxMessageBytes;
    let parts: Buffer[] = [];
    let length = 0;
    let oversized = false;
    let head = "";
    let tail = Buffer.alloc(0);
    const line = (buf: Buffer) => {
      if (oversized) {
        const tailText = Buffer.concat([tail, buf]).subarray(-256).toString("utf8");
        this.#oversized(head, tailText, length + buf.length);
        oversized = false;
        return;
      }
      const text = buf.toString("utf8").trim();
      if (text === "") return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        this.opts.log.warn({ line: (this.opts.redact ?? String)(text.slice(0, 200)) }, "upstream wrote a line that is not JSON; ignored");
        this.events.failure(new CountersignError("CS_ERR_UPSTREAM_HTTP", "the server wrote a line that is not JSON"), []);
        return;
      }
      this.events.message(parsed, buf.length);
    };
    child.stdout.on("data", (chunk: Buffer) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl);
        if (oversized) {
          tail = Buffer.concat([tail, piece]).subarray(-256);
          length += piece.length;
        } else if (length + piece.length > max) {
          oversized = true;
          head = Buffer.concat([...parts, piece]).subarray(0, 256).toString("utf8");
          tail = Buffer.concat([...parts, piece]).subarray(-256);
          length += piece.length;
          parts = [];
        } else {
          parts.push(piece);
          length += piece.length;
        }
        if (nl === -1) break;
        const whole = oversized ? Buffer.alloc(0) : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        if (oversized) {
          this.#oversized(head, tail.toString("utf8"), length);
          oversized = false;
        } else line(whole);
        parts = [];
        length = 0;
        start = nl + 1;
      }
    });
  }

  /** An over-limit message is dropped; if its id can be read, that request gets a clear error. */
  #oversized(head: string, tail: string, bytes: number): void {
    const id = /"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*[,}]/.exec(head)?.[1] ?? /"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*}\s*$/.exec(tail)?.[1];
    const requestIds = id === undefined ? [] : [JSON.parse(id) as string | number];
    this.events.failure(
      new CountersignError("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE", `${bytes} bytes, limit ${this.opts.maxMessageBytes}`, { keyPath: "limits.upstreamMessageBytes" }),
      requestIds,
    );
  }

  #readStderr(child: ChildProcessWithoutNullStreams): void {
    let buffered = "";
    child.stderr.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) !== -1) {
        const raw = buffered.slice(0, nl).trimEnd().slice(0, 2000);
        const text = this.opts.redact ? this.opts.redact(raw) : raw;
        buffered = buffered.slice(nl + 1);
        if (!text) continue;
        this.#stderrTail.push(text);
        if (this.#stderrTail.length > 10) this.#stderrTail.shift();
        this.opts.log.info({ stderr: text }, "upstream stderr");
      }
      if (buffered.length > 64 * 1024) buffered = buffered.slice(-2000);
    });
  }
}

/** Resolves when the stream drains, or ends or fails (the send then fails by the child's exit). */
function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    stream.on("error", done);
  });
}
