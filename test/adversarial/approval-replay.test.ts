// Hostile caller replaying an approval: once a call is approved, every variant of it (another
// method, tool or URI, rule, approver group, connection, caller, issuer or arguments) opens its
// own pending request and cannot claim the approved one's forward; the approved call itself is
// forwarded once. Then hostile approvers: every spelling of the requester's identity is refused.
// Real Postgres, the approvals service as the gateway uses it.
import { openStore, type Store } from "../../gateway/store/pools.js";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Recorder } from "../../gateway/audit/recorder.js";
import { ApprovalService } from "../../gateway/approvals/service.js";
import type { NewApprovalRequest } from "../../gateway/approvals/types.js";
import { EmailDirectory } from "../../gateway/approvals/directory.js";
import { createDb, type Db } from "../../gateway/store/client.js";
import { createLogger } from "../../gateway/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
let prisma: Db;
let store: Store;
let recorder: Recorder;
let service: ApprovalService;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url);
  store = openStore(db.url, { log: createLogger("silent"), backgroundPoolSize: 3 });
  recorder = new Recorder(prisma, { commitTimeoutMs: 5000 });
  service = new ApprovalService({ pool: store.background, recorder, directory: new EmailDirectory({ oncall: { emails: ["bob@example.com", "alice@example.com"] }, dba: { emails: ["bob@example.com"] } } as never), log: createLogger("silent"), listen: false });
  await service.start();
});
afterAll(async () => {
  await service?.stop();
  await recorder?.drain();
  await prisma?.$disconnect();
  await store?.close();
  await db?.drop();
});

const base = (): NewApprovalRequest => ({
  connection: "ops",
  method: "prompts/get",
  tool: "deploy",
  arguments: { env: "prod", version: 7 },
  maskedArguments: { env: "prod", version: 7 },
  requester: { subject: "alice", issuer: "https://idp.example.com", kind: "user", email: "alice@example.com", groups: ["dev"] },
  rule: { id: "deploys-need-oncall" },
  approverGroup: "oncall",
  approvalsNeeded: 1,
  timeoutMs: 600_000,
});

type Variant = (r: NewApprovalRequest) => NewApprovalRequest;
const variants: Record<string, Variant> = {
  method: (r) => ({ ...r, method: "tools/call" }),
  methodResource: (r) => ({ ...r, method: "resources/read", tool: "deploy" }),
  tool: (r) => ({ ...r, tool: "deploy-all" }),
  toolCase: (r) => ({ ...r, tool: "Deploy" }),
  rule: (r) => ({ ...r, rule: { id: "deploys-need-dba" } }),
  defaultRule: (r) => ({ ...r, rule: { id: null } }),
  group: (r) => ({ ...r, approverGroup: "dba" }),
  connection: (r) => ({ ...r, connection: "ops-2" }),
  subject: (r) => ({ ...r, requester: { ...r.requester, subject: "mallory" } }),
  issuer: (r) => ({ ...r, requester: { ...r.requester, issuer: "https://evil.example.com" } }),
  arguments: (r) => ({ ...r, arguments: { env: "prod", version: 8 } }),
  extraArgument: (r) => ({ ...r, arguments: { env: "prod", version: 7, force: true } }),
};

it("an approval releases only its own call, once, whatever part of the call a replay changes", async () => {
  const { request: approved } = await service.request(base());
  expect((await service.vote({ requestId: approved.id, approver: { email: "bob@example.com" }, decision: "approve", via: "slack" })).kind).toBe("decided");
  await fc.assert(
    fc.asyncProperty(fc.subarray(Object.keys(variants), { minLength: 1, maxLength: 3 }), async (changed) => {
      const input = changed.reduce((r, k) => variants[k]!(r), base());
      const { request, created } = await service.request(input);
      // A new request, or (for a combination seen in an earlier run) that combination's own pending one.
      expect(request.id, changed.join("+")).not.toBe(approved.id);
      expect(request.status, changed.join("+")).toBe("pending");
      expect(typeof created).toBe("boolean");
      expect(await service.claimForward(request.id)).toBe(false);
    }),
    { numRuns: 40, seed: 13 },
  );
  // The identical call, keys in another order, gets the approval: forwarded once.
  const same = await service.request({ ...base(), arguments: { version: 7, env: "prod" } });
  expect(same.request.id).toBe(approved.id);
  expect(await service.claimForward(approved.id)).toBe(true);
  expect(await service.claimForward(approved.id)).toBe(false);
  const row = await prisma.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM approval_requests WHERE "forwardedAt" IS NOT NULL`);
  expect(Number(row[0]!.n)).toBe(1);
});

it("every spelling of the requester's identity is refused; an e-mail-less requester cannot be approved from an e-mail alone", async () => {
  const { request } = await service.request({ ...base(), arguments: { n: "self" } });
  const selves = ["alice@example.com", "ALICE@example.com", " alice@example.com ", "Alice@Example.COM", "alice"];
  for (const email of selves) {
    expect((await service.vote({ requestId: request.id, approver: { email }, decision: "approve", via: "slack" })).kind, email).toBe("self_approval_refused");
  }
  // Her token, with any e-mail claim or another spelling of it.
  const token = { subject: "alice", issuer: "https://idp.example.com" };
  expect((await service.vote({ requestId: request.id, approver: { email: "bob@example.com", ...token }, decision: "approve", via: "api" })).kind).toBe("self_approval_refused");

  const { request: noMail } = await service.request({ ...base(), arguments: { n: "nomail" }, requester: { subject: "alice", issuer: "https://idp.example.com", kind: "user", groups: [] } });
  for (const email of ["alice@example.com", "bob@example.com", "slack:UALICE"]) {
    const o = await service.vote({ requestId: noMail.id, approver: { email }, decision: "approve", via: "slack" });
    expect(["approver_unproven", "unauthorized"], email).toContain(o.kind);
  }
  // Another issuer's token is not shown to be someone else either.
  const foreign = await service.vote({ requestId: noMail.id, approver: { email: "bob@example.com", subject: "alice", issuer: "https://other-idp.example.com" }, decision: "approve", via: "api" });
  expect(foreign.kind).toBe("approver_unproven");
  const rows = await prisma.$queryRawUnsafe<Array<{ status: string; approveCount: number }>>(`SELECT status, "approveCount" FROM approval_requests WHERE id = ANY($1::text[])`, [request.id, noMail.id]);
  expect(rows.map((r) => [r.status, r.approveCount])).toEqual([
    ["pending", 0],
    ["pending", 0],
  ]);
  expect(await prisma.approvalVote.count({ where: { requestId: { in: [request.id, noMail.id] } } })).toBe(0);
});
