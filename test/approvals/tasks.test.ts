// MCP tasks (2025-11-25) for held calls: a client that sends task-augmented calls gets a task at
// once instead of a held request; its status follows the approval, and tasks/result returns the
// upstream's real result (masked, recorded) once approved, or the tool error once denied. Tasks
// belong to the caller's identity. A client that does not use tasks keeps the old hold. A real SDK
// client, a real gateway, real upstreams (the logging fixture, whose log shows what it received, and
// server-everything, which runs tasks itself); decisions go through the approvals service.
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, CreateTaskResultSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { startTestGateway, everythingStdio, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { loggingServerStdio, forwardedCalls } from "../helpers/process.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "../helpers/held-calls.js";
import { waitFor } from "../helpers/upstreams.js";

const EMAIL = ["dana.whitfield", "example-corp.com"].join("@");

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let upstreamLog: string;

const received = () => (existsSync(upstreamLog) ? readFileSync(upstreamLog, "utf8") : "");
const forwarded = (marker: string) => forwardedCalls(upstreamLog, marker);

const rule = DEPLOYS_NEED_ONCALL;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-tasks-"));
  upstreamLog = join(scratch, "received.log");
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: quickApprovals(["bob@example.com", "carol@example.com"], "2s"),
    connections: [
      { name: "ops", access: { groups: ["dev"] }, upstream: loggingServerStdio(upstreamLog), policy: { rules: [rule] }, masking: { personalData: "placeholder" } },
      { name: "everything", access: { groups: ["dev"] }, upstream: everythingStdio(), policy: { rules: [rule] } },
      { name: "plain", access: { groups: ["dev"] }, upstream: loggingServerStdio(upstreamLog) },
      // Support sees e-mail addresses unmasked when it says why; the record stays masked.
      {
        name: "support",
        access: { groups: ["dev"] },
        upstream: loggingServerStdio(upstreamLog),
        policy: { rules: [rule] },
        masking: { personalData: "placeholder", exemptions: [{ groups: ["support"], types: ["email"], justificationRequired: true }] },
      },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function connect(subject: string, opts: { tasks?: boolean; connection?: string; groups?: string[]; justification?: string } = {}) {
  const d = gw.identity.devIssuer!;
  const connection = opts.connection ?? "ops";
  const token = await signDevToken(d.key, d.url, {
    subject,
    email: `${subject}@example.com`,
    groups: opts.groups ?? ["dev"],
    audience: [`${gw.config.publicUrl}/mcp/${connection}`],
    ttlSeconds: 600,
  });
  const c = new Client({ name: "tasks-test", version: "1" }, opts.tasks === false ? {} : { capabilities: { tasks: { list: {}, cancel: {} } } });
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(opts.justification ? { "x-countersign-justification": opts.justification } : {}) };
  await c.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection), { requestInit: { headers } }));
  return c;
}

/** Sends a task-augmented tools/call; the answer is the task. */
async function callAsTask(client: Client, args: Record<string, unknown>, name = "echo") {
  const created = await client.request({ method: "tools/call", params: { name, arguments: args } }, CreateTaskResultSchema, { task: { ttl: 120_000 } });
  return created;
}

const approvalIdOf = (statusMessage: string | undefined) => /request (apr_\w+)/.exec(statusMessage ?? "")?.[1] ?? "";
const vote = (requestId: string, email: string, decision: "approve" | "deny", reason?: string) =>
  gw.approvals!.service.vote({ requestId, approver: { email }, decision, reason, via: "cli" });
const textOf = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]!.text;

async function rpcError(p: Promise<unknown>): Promise<McpError> {
  try {
    await p;
  } catch (err) {
    return err as McpError;
  }
  throw new Error("expected an error");
}

describe("a tasks-capable client", () => {
  it("is offered tasks: the capability, and task support on each tool", async () => {
    const client = await connect("alice");
    expect(client.getServerCapabilities()?.tasks).toMatchObject({ list: {}, cancel: {}, requests: { tools: { call: {} } } });
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === "echo")?.execution?.taskSupport).toBe("optional");
    await client.close();
  });

  it("gets a task at once for a held call; approved, tasks/result returns the upstream's real result, masked, forwarded once", async () => {
    const client = await connect("alice");
    const created = await callAsTask(client, { message: `deploy t1 to ${EMAIL}` });
    expect(created.task.taskId).toMatch(/^cst_[\w-]{32}$/);
    expect(created.task.status).toBe("working");
    expect(created.task.statusMessage).toMatch(/^waiting for approval by oncall, request apr_\w+, expires \d{4}-/);
    const approvalId = approvalIdOf(created.task.statusMessage);

    const polled = await client.experimental.tasks.getTask(created.task.taskId);
    expect(polled.status).toBe("working");
    expect(forwarded("deploy t1")).toBe(0);

    // tasks/result waits for the outcome: asked before the decision, answered after it.
    const result = client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema, { timeout: 30_000 });
    expect((await vote(approvalId, "bob@example.com", "approve")).kind).toBe("decided");
    const r = await result;
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toBe("Echo: deploy t1 to [MASKED:email]");
    expect(r._meta?.["io.modelcontextprotocol/related-task"]).toEqual({ taskId: created.task.taskId });
    expect((await client.experimental.tasks.getTask(created.task.taskId)).status).toBe("completed");

    // The upstream got the call exactly once, as sent; the record holds only the masked view.
    expect(forwarded("deploy t1")).toBe(1);
    expect(received()).toContain(EMAIL);
    const rows = await gw.db.$queryRawUnsafe<Array<{ method: string | null; origin: string; direction: string; payload: string }>>(
      `SELECT method, origin, direction, payload::text AS payload FROM messages WHERE payload::text LIKE '%deploy t1%' OR payload::text LIKE $1 ORDER BY id`,
      `%${created.task.taskId}%`,
    );
    // Recorded: the task handed out, the gateway's forward, the status polls and the result.
    expect(rows.some((m) => m.method === "tools/call" && m.origin === "gateway" && m.direction === "out" && m.payload.includes('"working"'))).toBe(true);
    expect(rows.some((m) => m.method === "tools/call" && m.origin === "gateway" && m.direction === "in")).toBe(true);
    expect(rows.some((m) => m.method === "tasks/result" && m.direction === "out" && m.payload.includes("[MASKED:email]"))).toBe(true);
    expect(rows.some((m) => m.method === "tasks/get" && m.direction === "in")).toBe(true);
    expect(rows.every((m) => !m.payload.includes(EMAIL))).toBe(true);
    await client.close();
  });

  it("tasks/result honours the caller's masking exemption, records the unmasked delivery, and keeps the record masked", async () => {
    const client = await connect("sam", { connection: "support", groups: ["dev", "support"], justification: "ticket SUP-77: customer asked for their address" });
    const created = await callAsTask(client, { message: `deploy t9 to ${EMAIL}` });
    const result = client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema, { timeout: 30_000 });
    expect((await vote(approvalIdOf(created.task.statusMessage), "bob@example.com", "approve")).kind).toBe("decided");
    expect(textOf(await result)).toBe(`Echo: deploy t9 to ${EMAIL}`); // exempted: delivered unmasked
    const delivery = await waitFor(
      () => gw.db.event.findFirst({ where: { type: "unmasked_delivery", connection: "support", subject: "sam" } }),
      "the unmasked delivery's event",
    );
    expect(delivery.detail).toMatchObject({ types: { email: 1 }, justification: "ticket SUP-77: customer asked for their address", taskId: created.task.taskId });
    const recorded = await gw.db.$queryRawUnsafe<Array<{ payload: string }>>(`SELECT payload::text AS payload FROM messages WHERE method = 'tasks/result' AND payload::text LIKE '%deploy t9%'`);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.payload).toContain("[MASKED:email]");
    expect(recorded[0]!.payload).not.toContain(EMAIL);
    await client.close();
  });

  it("denied: the task fails with who and why, tasks/result is the same tool error as a plain call's, nothing is forwarded", async () => {
    const client = await connect("alice");
    const created = await callAsTask(client, { message: "deploy t2" });
    await vote(approvalIdOf(created.task.statusMessage), "carol@example.com", "deny", "freeze until Monday");
    const failed = await waitFor(async () => {
      const t = await client.experimental.tasks.getTask(created.task.taskId);
      return t.status === "failed" ? t : undefined;
    }, "the task to fail");
    expect(failed.statusMessage).toContain("carol@example.com");
    expect(failed.statusMessage).toContain("freeze until Monday");
    const r = await client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema);
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("denied by carol@example.com: freeze until Monday");
    expect(forwarded("deploy t2")).toBe(0);
    await client.close();
  });

  it("keeps tasks to their owner: another identity cannot read, wait on, cancel or list them", async () => {
    const alice = await connect("alice");
    const mallory = await connect("mallory");
    const created = await callAsTask(alice, { message: "deploy t3" });
    const id = created.task.taskId;
    for (const attempt of [
      mallory.experimental.tasks.getTask(id),
      mallory.experimental.tasks.getTaskResult(id, CallToolResultSchema),
      mallory.experimental.tasks.cancelTask(id),
    ]) {
      const err = await rpcError(attempt);
      expect(err.code).toBe(-32602);
      expect(err.message).toContain("No task with this id is yours");
    }
    expect((await mallory.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).not.toContain(id);
    // The owner still has it, from another session too.
    const again = await connect("alice");
    expect((await again.experimental.tasks.getTask(id)).status).toBe("working");
    expect((await again.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(id);
    await Promise.all([alice.close(), mallory.close(), again.close()]);
  });

  it("cancelling a held task ends the wait; the approval stays for the identical call, forwarded once", async () => {
    const client = await connect("alice");
    const created = await callAsTask(client, { message: "deploy t4" });
    const approvalId = approvalIdOf(created.task.statusMessage);
    const cancelled = await client.experimental.tasks.cancelTask(created.task.taskId);
    expect(cancelled.status).toBe("cancelled");
    const twice = await rpcError(client.experimental.tasks.cancelTask(created.task.taskId));
    expect(twice.code).toBe(-32602);
    const r = await client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema);
    expect(textOf(r)).toContain(`Approval request ${approvalId} stays open`);

    await vote(approvalId, "bob@example.com", "approve");
    await new Promise((res) => setTimeout(res, 500));
    expect(forwarded("deploy t4")).toBe(0);
    const retry = await client.callTool({ name: "echo", arguments: { message: "deploy t4" } }, undefined, { timeout: 30_000 });
    expect(textOf(retry)).toBe("Echo: deploy t4");
    expect(forwarded("deploy t4")).toBe(1);
    await client.close();
  });

  it("outlives its session: a new session of the owner reads why it ended, and the identical call gets the decision", async () => {
    const d = gw.identity.devIssuer!;
    const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
    const first = new Client({ name: "tasks-test", version: "1" }, { capabilities: { tasks: { list: {}, cancel: {} } } });
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    await first.connect(transport);
    const created = await callAsTask(first, { message: "deploy t8" });
    const approvalId = approvalIdOf(created.task.statusMessage);
    await transport.terminateSession();
    await first.close();

    const second = await connect("alice");
    const ended = await waitFor(async () => {
      const t = await second.experimental.tasks.getTask(created.task.taskId);
      return t.status === "failed" ? t : undefined;
    }, "the task to end with its session");
    expect(ended.statusMessage).toContain("the session ended before a decision");
    expect(textOf(await second.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema))).toContain(approvalId);
    await vote(approvalId, "bob@example.com", "approve");
    const retry = await callAsTask(second, { message: "deploy t8" });
    const r = await second.experimental.tasks.getTaskResult(retry.task.taskId, CallToolResultSchema, { timeout: 30_000 });
    expect(textOf(r)).toBe("Echo: deploy t8");
    expect(forwarded("deploy t8")).toBe(1);
    await second.close();
  });

  it("runs an allowed task-augmented call as a gateway task when the upstream has no tasks", async () => {
    const client = await connect("alice");
    const created = await callAsTask(client, { message: "status t5" });
    expect(created.task.taskId).toMatch(/^cst_/);
    const r = await client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema, { timeout: 30_000 });
    expect(textOf(r)).toBe("Echo: status t5");
    expect((await client.experimental.tasks.getTask(created.task.taskId)).status).toBe("completed");
    expect(forwarded("status t5")).toBe(1);
    // The upstream never saw a task: the gateway forwarded the call without one.
    const line = received().split("\n").find((l) => l.includes("status t5"))!;
    expect(JSON.parse(line).msg.params.task).toBeUndefined();
    await client.close();
  });

  it("passes task-augmented calls through to an upstream that runs them as tasks, and holds the rest as its own", async () => {
    const client = await connect("alice", { connection: "everything" });
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === "simulate-research-query")?.execution?.taskSupport).toBe("required");
    expect(tools.find((t) => t.name === "echo")?.execution?.taskSupport).toBe("optional");

    const upstreamTask = await callAsTask(client, { topic: "gateways" }, "simulate-research-query");
    expect(upstreamTask.task.taskId).not.toMatch(/^cst_/);
    const held = await callAsTask(client, { message: "deploy t6" });
    expect(held.task.taskId).toMatch(/^cst_/);
    const listed = (await client.experimental.tasks.listTasks()).tasks.map((t) => t.taskId);
    expect(listed).toEqual(expect.arrayContaining([upstreamTask.task.taskId, held.task.taskId]));

    const research = await client.experimental.tasks.getTaskResult(upstreamTask.task.taskId, CallToolResultSchema, { timeout: 30_000 });
    expect(research.isError).toBeFalsy();
    expect(JSON.stringify(research.content)).toContain("gateways");

    await vote(approvalIdOf(held.task.statusMessage), "bob@example.com", "approve");
    const echoed = await client.experimental.tasks.getTaskResult(held.task.taskId, CallToolResultSchema, { timeout: 30_000 });
    expect(textOf(echoed)).toBe("Echo: deploy t6");
    await client.close();
  });
});

describe("a client that does not use tasks", () => {
  it("keeps the hold: the call waits, and returns the real result when approved in time", async () => {
    const client = await connect("alice", { tasks: false });
    const call = client.callTool({ name: "echo", arguments: { message: "deploy t7" } }, undefined, { timeout: 30_000 });
    const id = await waitFor(async () => {
      const rows = await gw.db.$queryRawUnsafe<Array<{ id: string }>>(`SELECT id FROM approval_requests WHERE "maskedArguments"::text LIKE '%deploy t7%'`);
      return rows[0]?.id;
    }, "the approval request");
    await vote(id, "bob@example.com", "approve");
    const r = await call;
    expect("task" in r).toBe(false);
    expect(textOf(r)).toBe("Echo: deploy t7");
    await client.close();
  });

  it("sees the upstream's capabilities untouched where no rule can hold a call", async () => {
    const client = await connect("alice", { connection: "plain" });
    expect(client.getServerCapabilities()?.tasks).toBeUndefined();
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === "echo")?.execution).toBeUndefined();
    await client.close();
  });
});
