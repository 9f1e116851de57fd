// A local stand-in for Slack's Web API, over real HTTP on loopback. It follows Slack's contract:
// POST /api/<method> with a bearer token, form-encoded or JSON arguments; answers HTTP 200 with
// `{ ok: true, ... }` or `{ ok: false, error: "<Slack's error name>" }`. Every call is recorded.
// It keeps the messages it was sent (chat.update of an unknown ts is `message_not_found`), the
// users and user groups a test declares, and can be told to fail a method for a while.
// It also plays Slack's side of Socket Mode: apps.connections.open returns a ws:// URL served here.
// Like Slack, it checks every message and view against Block Kit's documented limits
// (blockkit-limits.ts) and refuses one that breaks any: `invalid_blocks` (views: `invalid_arguments`),
// with the problems in response_metadata.messages. Refused calls are kept in `refused`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { messageProblems, viewProblems } from "./blockkit-limits.js";

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  token: string | undefined;
  at: number;
}

export interface FakeUser {
  id: string;
  email?: string;
  name?: string;
  deleted?: boolean;
  isBot?: boolean;
}

interface Failure {
  times: number;
  error: string;
  status: number;
}

export interface FakeSlack {
  apiUrl: string;
  calls: SlackCall[];
  /** Calls refused for breaking Block Kit's limits, with Slack's messages. */
  refused: Array<SlackCall & { problems: string[] }>;
  callsOf(method: string): SlackCall[];
  addUser(u: FakeUser): void;
  addUserGroup(id: string, users: string[]): void;
  /** The next `times` calls of `method` fail (`internal_error` by default; status 503 answers like Slack's edge). */
  failNext(method: string, times: number, error?: string, status?: number): void;
  waitFor(method: string, predicate?: (c: SlackCall) => boolean, timeoutMs?: number): Promise<SlackCall>;
  message(channel: string, ts: string): Record<string, unknown> | undefined;
  /** Files uploaded with files.getUploadURLExternal → upload URL → files.completeUploadExternal. */
  files: FakeFile[];
  /** Socket Mode: the connected client sockets, to send envelopes to. */
  sockets: WebSocket[];
  sendEnvelope(payload: Record<string, unknown>, type?: string): Promise<{ envelope_id: string; payload?: unknown }>;
  close(): Promise<void>;
}

export interface FakeFile {
  id: string;
  filename: string;
  /** The length announced to files.getUploadURLExternal. */
  length: number;
  /** The bytes received at the upload URL (raw body, or the file part of a multipart form). */
  bytes?: Buffer;
  /** Set by files.completeUploadExternal. */
  completed: boolean;
  title?: string;
  channel?: string;
  threadTs?: string;
}

/** Slack's upload endpoint takes the file as the raw body or as a multipart form's file part. */
async function readUpload(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const type = String(req.headers["content-type"] ?? "");
  if (!type.startsWith("multipart/form-data")) return body;
  const form = await new Response(body, { headers: { "content-type": type } }).formData();
  for (const [, v] of form) if (typeof v !== "string") return Buffer.from(await v.arrayBuffer());
  const first = [...form.values()][0];
  return Buffer.from(typeof first === "string" ? first : "");
}

export interface FakeSlackOptions {
  botToken: string;
  appToken?: string;
  teamId?: string;
  botUserId?: string;
}

async function readArgs(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  const type = String(req.headers["content-type"] ?? "");
  if (type.startsWith("application/json")) return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    // The SDK sends nested arguments (blocks, view) as JSON strings in the form.
    out[k] = /^[[{]/.test(v) ? (() => { try { return JSON.parse(v) as unknown; } catch { return v; } })() : v;
  }
  return out;
}

export async function startFakeSlack(opts: FakeSlackOptions): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const refused: FakeSlack["refused"] = [];
  const users = new Map<string, FakeUser>();
  const groups = new Map<string, string[]>();
  const failures = new Map<string, Failure>();
  const messages = new Map<string, Record<string, unknown>>();
  const files: FakeFile[] = [];
  const sockets: WebSocket[] = [];
  const pendingAcks = new Map<string, (m: { envelope_id: string; payload?: unknown }) => void>();
  let seq = 0;
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, "0")}`;
  const teamId = opts.teamId ?? "T0FAKE";

  const handle = (method: string, a: Record<string, unknown>, token: string | undefined): Record<string, unknown> => {
    const appMethod = method === "apps.connections.open";
    if (!token) return { ok: false, error: "not_authed" };
    if (token !== (appMethod ? opts.appToken : opts.botToken)) return { ok: false, error: "invalid_auth" };
    if (method === "chat.postMessage" || method === "chat.update" || method === "chat.postEphemeral") {
      if (typeof a.text === "string" && a.text.length > 40_000) return { ok: false, error: "msg_too_long" };
      const problems = messageProblems(a);
      if (problems.length > 0) {
        refused.push({ method, args: a, token, at: Date.now(), problems });
        return { ok: false, error: "invalid_blocks", errors: problems, response_metadata: { messages: problems.map((p) => `[ERROR] ${p}`) } };
      }
    }
    if (method === "views.open" || method === "views.update" || method === "views.push") {
      const problems = viewProblems(a.view);
      if (problems.length > 0) {
        refused.push({ method, args: a, token, at: Date.now(), problems });
        return { ok: false, error: "invalid_arguments", response_metadata: { messages: problems.map((p) => `[ERROR] ${p}`) } };
      }
    }
    const need = (...keys: string[]) => keys.find((k) => a[k] === undefined || a[k] === "");
    switch (method) {
      case "auth.test":
        return { ok: true, url: "https://fake.slack.test/", team: "Fake", user: "countersign", team_id: teamId, user_id: opts.botUserId ?? "UBOT", bot_id: "BBOT", is_enterprise_install: false };
      case "chat.postMessage": {
        if (need("channel")) return { ok: false, error: "channel_not_found" };
        if (need("text") && a.blocks === undefined) return { ok: false, error: "no_text" };
        const ts = nextTs();
        const message = { type: "message", text: a.text, blocks: a.blocks, ts, thread_ts: a.thread_ts, user: opts.botUserId ?? "UBOT" };
        messages.set(`${a.channel}/${ts}`, message);
        return { ok: true, channel: a.channel, ts, message };
      }
      case "chat.update": {
        if (need("channel", "ts")) return { ok: false, error: "invalid_arguments" };
        const key = `${a.channel}/${a.ts}`;
        if (!messages.has(key)) return { ok: false, error: "message_not_found" };
        messages.set(key, { ...messages.get(key), text: a.text, blocks: a.blocks });
        return { ok: true, channel: a.channel, ts: a.ts, text: a.text };
      }
      case "chat.postEphemeral":
        if (need("channel")) return { ok: false, error: "channel_not_found" };
        if (need("user")) return { ok: false, error: "user_not_in_channel" };
        return { ok: true, message_ts: nextTs() };
      case "chat.getPermalink":
        if (need("channel", "message_ts")) return { ok: false, error: "invalid_arguments" };
        if (!messages.has(`${a.channel}/${a.message_ts}`)) return { ok: false, error: "message_not_found" };
        return { ok: true, channel: a.channel, permalink: `https://fake.slack.test/archives/${a.channel}/p${String(a.message_ts).replace(".", "")}` };
      case "views.open":
        if (need("trigger_id")) return { ok: false, error: "invalid_trigger_id" };
        if (!a.view) return { ok: false, error: "invalid_arguments" };
        return { ok: true, view: { id: `V${++seq}`, ...(a.view as object) } };
      case "conversations.open": {
        const list = String(a.users ?? "").split(",").filter(Boolean);
        if (list.length === 0) return { ok: false, error: "users_list_not_supplied" };
        if (list.some((u) => !users.has(u))) return { ok: false, error: "user_not_found" };
        return { ok: true, channel: { id: `D${list.join("")}` } };
      }
      case "users.info": {
        const u = users.get(String(a.user));
        if (!u) return { ok: false, error: "user_not_found" };
        return { ok: true, user: { id: u.id, team_id: teamId, name: u.name ?? u.id, real_name: u.name, deleted: u.deleted ?? false, is_bot: u.isBot ?? false, profile: { real_name: u.name, ...(u.email ? { email: u.email } : {}) } } };
      }
      case "users.lookupByEmail": {
        const u = [...users.values()].find((x) => x.email?.toLowerCase() === String(a.email ?? "").toLowerCase());
        if (!u) return { ok: false, error: "users_not_found" };
        return { ok: true, user: { id: u.id, team_id: teamId, name: u.name ?? u.id, profile: { email: u.email } } };
      }
      case "usergroups.users.list": {
        const g = groups.get(String(a.usergroup));
        if (!g) return { ok: false, error: "no_such_subteam" };
        return { ok: true, users: g };
      }
      case "files.getUploadURLExternal": {
        const length = Number(a.length);
        if (need("filename")) return { ok: false, error: "invalid_arguments" };
        if (!Number.isInteger(length) || length <= 0) return { ok: false, error: "invalid_arguments" };
        const id = `F${String(++seq).padStart(8, "0")}`;
        files.push({ id, filename: String(a.filename), length, completed: false });
        return { ok: true, upload_url: `http://127.0.0.1:${port}/upload/${id}`, file_id: id };
      }
      case "files.completeUploadExternal": {
        const list = (Array.isArray(a.files) ? a.files : []) as Array<{ id?: string; title?: string }>;
        if (list.length === 0) return { ok: false, error: "invalid_arguments" };
        const found = list.map((f) => files.find((x) => x.id === f.id));
        if (found.some((f) => !f || !f.bytes)) return { ok: false, error: "file_not_found" };
        if (a.thread_ts !== undefined && !messages.has(`${a.channel_id}/${a.thread_ts}`)) return { ok: false, error: "invalid_thread_ts" };
        found.forEach((f, i) => {
          Object.assign(f!, { completed: true, title: list[i]!.title ?? f!.filename, channel: a.channel_id as string | undefined, threadTs: a.thread_ts as string | undefined });
        });
        return { ok: true, files: found.map((f) => ({ id: f!.id, title: f!.title, name: f!.filename, size: f!.bytes!.length })) };
      }
      case "apps.connections.open":
        return { ok: true, url: `${wsBase}/link/?ticket=${++seq}` };
      default:
        return { ok: false, error: "unknown_method" };
    }
  };

  // The handler's promise is caught: a failure ends that request, never the test process.
  const server: Server = createServer((req, res) => void handleRequest(req, res).catch((err: unknown) => res.destroy(err as Error)));
  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The upload URL handed out by files.getUploadURLExternal (on Slack: files.slack.com).
    const upload = /^\/upload\/(F\d+)$/.exec(req.url?.split("?")[0] ?? "");
    if (upload && req.method === "POST") {
      const file = files.find((f) => f.id === upload[1]);
      const bytes = await readUpload(req);
      if (!file || file.completed) return void res.writeHead(404).end();
      file.bytes = bytes;
      res.writeHead(200, { "content-type": "text/plain" }).end(`OK - ${bytes.length}`);
      return;
    }
    const m = /^\/api\/([A-Za-z.]+)$/.exec(req.url?.split("?")[0] ?? "");
    if (!m || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const method = m[1]!;
    const args = await readArgs(req);
    const auth = req.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice(7) : (args.token as string | undefined);
    calls.push({ method, args, token, at: Date.now() });
    const f = failures.get(method);
    if (f && f.times > 0) {
      f.times--;
      if (f.status !== 200) {
        res.writeHead(f.status, { "content-type": "application/json" }).end(JSON.stringify({ ok: false, error: f.error }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: false, error: f.error }));
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(handle(method, args, token)));
  }
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const wsBase = `ws://127.0.0.1:${port}`;

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (!req.url?.startsWith("/link/")) return void socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(ws);
      ws.on("message", (data) => {
        const msg = JSON.parse(String(data)) as { envelope_id: string; payload?: unknown };
        pendingAcks.get(msg.envelope_id)?.(msg);
        pendingAcks.delete(msg.envelope_id);
      });
      ws.on("close", () => sockets.splice(sockets.indexOf(ws), 1));
      ws.send(JSON.stringify({ type: "hello", num_connections: 1, debug_info: { host: "fake", approximate_connection_time: 3600 }, connection_info: { app_id: "AFAKE" } }));
    });
  });

  const fake: FakeSlack = {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    refused,
    sockets,
    callsOf: (method) => calls.filter((c) => c.method === method),
    addUser: (u) => void users.set(u.id, u),
    addUserGroup: (id, list) => void groups.set(id, list),
    failNext: (method, times, error = "internal_error", status = 200) => void failures.set(method, { times, error, status }),
    message: (channel, ts) => messages.get(`${channel}/${ts}`),
    files,
    async waitFor(method, predicate = () => true, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = calls.find((c) => c.method === method && predicate(c));
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`fake Slack: no ${method} call matched within ${timeoutMs} ms (calls: ${calls.map((c) => c.method).join(", ")})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    sendEnvelope(payload, type = "interactive") {
      const ws = sockets[0];
      if (!ws) return Promise.reject(new Error("no Socket Mode client connected"));
      const envelope_id = `env-${++seq}`;
      return new Promise((resolve) => {
        pendingAcks.set(envelope_id, resolve);
        ws.send(JSON.stringify({ envelope_id, type, payload, accepts_response_payload: type === "interactive" }));
      });
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return fake;
}
