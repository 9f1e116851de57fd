// Real upstream MCP servers as child processes (server-everything in its HTTP modes), and the
// raw HTTP side of MCP for tests that must see the bytes a client receives: a POST that reads
// either a JSON body or an SSE stream, and a tap on an SDK transport that records what the
// client sent and received.
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { EVERYTHING } from "./gateway.js";

import { freePort } from "./process.js";
export { freePort };

async function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port }, () => {
      sock.end();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

export async function waitFor<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface RunningUpstream {
  mode: "streamableHttp" | "sse";
  port: number;
  /** The MCP endpoint: http://127.0.0.1:<port>/mcp or /sse */
  url: string;
  child: ChildProcess;
  /** What the server wrote (it logs every request): for diagnosing failures. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts server-everything in an HTTP mode on a free loopback port and waits until it accepts connections. */
export async function startEverything(mode: "streamableHttp" | "sse"): Promise<RunningUpstream> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [EVERYTHING, mode], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: string[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(String(b)));
    child.stderr!.on("data", (b: Buffer) => out.push(String(b)));
    let exited = false;
    child.once("exit", () => (exited = true));
    try {
      await waitFor(async () => exited || (await acceptsConnections(port)), `server-everything ${mode} on port ${port}`);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
    if (exited) {
      // Another process took the port between the check and the bind: try another one.
      if (attempt < 3) continue;
      throw new Error(`server-everything ${mode} exited at start: ${out.join("")}`);
    }
    return {
      mode,
      port,
      url: `http://127.0.0.1:${port}/${mode === "sse" ? "sse" : "mcp"}`,
      child,
      output: () => out.join(""),
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        await gone;
        clearTimeout(t);
      },
    };
  }
}

// ── raw HTTP ───────────────────────────────────────────────────────────────────────────────────

/** The `data` of each event in an SSE body, parsed as JSON (comments and empty data skipped). */
export function parseSseMessages(text: string): unknown[] {
  const out: unknown[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).replace(/^ /, ""))
      .join("\n");
    if (data !== "") out.push(JSON.parse(data));
  }
  return out;
}

export interface RawReply {
  status: number;
  headers: Headers;
  /** The JSON-RPC messages of the answer: the JSON body (a batch spread out) or every SSE event. */
  messages: unknown[];
  text: string;
}

/**
 * POSTs a JSON text as an MCP client would (accepting JSON or SSE) and reads the whole answer.
 * The POST's SSE stream ends once every request in it has been answered.
 */
export async function rawPost(url: string | URL, body: string, headers: Record<string, string> = {}): Promise<RawReply> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body,
  });
  const text = await res.text();
  const type = res.headers.get("content-type") ?? "";
  let messages: unknown[] = [];
  if (type.includes("text/event-stream")) messages = parseSseMessages(text);
  else if (text.trim() !== "") {
    const parsed = JSON.parse(text) as unknown;
    messages = Array.isArray(parsed) ? parsed : [parsed];
  }
  return { status: res.status, headers: res.headers, messages, text };
}

/** initialize + notifications/initialized over raw HTTP; returns the session id and the initialize response. */
export async function rawInitialize(url: string | URL, protocolVersion: string, clientInfo = { name: "raw-client", version: "1.0.0" }) {
  const init = await rawPost(url, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion, capabilities: {}, clientInfo } }));
  if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status}: ${init.text}`);
  const sessionId = init.headers.get("mcp-session-id") ?? "";
  const response = init.messages.find((m) => (m as { id?: unknown }).id === 1) as { result: { protocolVersion: string } & Record<string, unknown> };
  const negotiated = response.result.protocolVersion;
  const h = { "mcp-session-id": sessionId, "mcp-protocol-version": negotiated };
  const ack = await rawPost(url, JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), h);
  if (ack.status !== 202) throw new Error(`notifications/initialized: HTTP ${ack.status}: ${ack.text}`);
  return { sessionId, response, headers: h };
}

export async function rawDelete(url: string | URL, sessionId: string): Promise<number> {
  const res = await fetch(url, { method: "DELETE", headers: { "mcp-session-id": sessionId } });
  await res.arrayBuffer();
  return res.status;
}

// ── the client's view ──────────────────────────────────────────────────────────────────────────

export interface Tapped {
  direction: "in" | "out";
  message: JSONRPCMessage;
}

/**
 * Records every message an SDK transport sends ("in": client → server, as the gateway records
 * it) and every message it hands to the client ("out"), in the order the client saw them.
 * Call before `client.connect(transport)`.
 */
export function tapTransport<T extends Transport>(transport: T): { transport: T; seen: Tapped[] } {
  const seen: Tapped[] = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    seen.push({ direction: "in", message: structuredClone(message) });
    return send(message, options);
  };
  let handler: Transport["onmessage"];
  Object.defineProperty(transport, "onmessage", {
    configurable: true,
    get: () => handler,
    set: (fn: Transport["onmessage"]) => {
      handler =
        fn &&
        ((message, extra) => {
          seen.push({ direction: "out", message: structuredClone(message) });
          fn(message, extra);
        });
    },
  });
  return { transport, seen };
}
