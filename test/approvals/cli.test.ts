// The fallback without Slack: `countersign approvals list | approve | deny`, run as a real
// process against the database, with the same rules (no self-approval, approver groups).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { pino } from "pino";
import { Recorder } from "../../gateway/audit/recorder.js";
import { createDb, type Db } from "../../gateway/db/client.js";
import { ApprovalService } from "../../gateway/approvals/service.js";
import { EmailDirectory } from "../../gateway/approvals/directory.js";
import { createTestDatabase, ROOT, type TestDatabase } from "../helpers/postgres.js";
import { baseRequest, createSessionRow } from "./harness.js";

const run = promisify(execFile);
let db: TestDatabase;
let prisma: Db;
let recorder: Recorder;
let service: ApprovalService;
let dir: string;
let configFile: string;
let sessionId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url);
  recorder = new Recorder(prisma, { commitTimeoutMs: 5000 });
  service = new ApprovalService({ databaseUrl: db.url, recorder, directory: new EmailDirectory({}), log: pino({ level: "silent" }) });
  await service.start();
  sessionId = await createSessionRow(db.url);
  dir = mkdtempSync(join(tmpdir(), "cs-approvals-cli-"));
  configFile = join(dir, "countersign.yaml");
  writeFileSync(
    configFile,
    `version: 1
connections:
  - name: prod-db
    upstream: { type: stdio, command: node }
    access: { anonymous: true }
approvals:
  groups:
    oncall: { emails: [alice@example.com, bob@example.com, carol@example.com] }
`,
  );
});
afterAll(async () => {
  await service?.stop();
  await recorder?.drain();
  await prisma?.$disconnect();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ["--import", "tsx", join(ROOT, "gateway", "cli.ts"), ...args, "--config", configFile], { cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

it("lists pending requests and decides with the same rules as Slack", async () => {
  const { request } = await service.request(baseRequest(sessionId, { approvalsNeeded: 2 }));
  const list = await cli("approvals", "list");
  expect(list.code).toBe(0);
  expect(list.stdout).toContain(request.id);
  expect(list.stdout).toContain("alice@example.com");

  const self = await cli("approvals", "approve", request.id, "--as", "Alice@Example.com");
  expect(self.code).toBe(3);
  expect(self.stderr).toContain("four-eyes");
  const outsider = await cli("approvals", "approve", request.id, "--as", "eve@example.com");
  expect(outsider.code).toBe(3);
  expect(outsider.stderr).toContain("not in the approver group");
  const noReason = await cli("approvals", "deny", request.id, "--as", "bob@example.com");
  expect(noReason.code).toBe(2);

  const waiting = service.waitForDecision(request.id, undefined, 20_000);
  expect((await cli("approvals", "approve", request.id, "--as", "bob@example.com")).stdout).toContain("1 of 2");
  expect((await cli("approvals", "approve", request.id, "--as", "bob@example.com")).code).toBe(3);
  const done = await cli("approvals", "approve", request.id, "--as", "carol@example.com");
  expect(done.stdout).toContain("approved by carol@example.com");
  // The gateway's waiter is released by the CLI's decision (NOTIFY).
  expect((await waiting).status).toBe("approved");
  const json = JSON.parse((await cli("approvals", "list", "--all", "--json")).stdout) as Array<{ id: string; status: string }>;
  expect(json.find((r) => r.id === request.id)?.status).toBe("approved");
  const events = await prisma.event.findMany({ where: { type: "approval", detail: { path: ["requestId"], equals: request.id } } });
  expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(["self_approval_refused", "unauthorized_click", "vote", "already_voted", "approved"]));
}, 60_000);
