// `countersign approvals list | show | approve | deny`: deciding held calls without Slack. The CLI
// talks to a running gateway's approvals API (routes.ts) with a bearer token, so the approver is
// the token's identity and the gateway applies the same rules as a Slack click.
//
// Break-glass: `--database --as <email>` writes the vote to the database directly, for when no
// gateway answers. Nothing authenticates the e-mail there (whoever can reach the database can
// claim any name), so such votes are recorded with via `break_glass` for review.
import { Option, type Command } from "commander";
import type { GatewayConfig } from "../config/load.js";
import type { ApprovalView } from "./routes.js";
import type { VoteOutcome } from "./types.js";

/** The API's view of a request. routes.js (with the authentication modules) loads only when used: every CLI command registers this one. */
async function approvalView(...args: Parameters<typeof import("./routes.js").approvalView>): Promise<ApprovalView> {
  return (await import("./routes.js")).approvalView(...args);
}

export interface CliHelpers {
  config(opts: { config?: string }): GatewayConfig;
  fail(message: string, code?: number): never;
  printTable(head: string[], rows: string[][]): void;
  evidenceDatabaseUrl(cfg: GatewayConfig): string;
  configOption: Option;
}

/** Exit codes: 0 done; 1 the gateway could not be reached; 2 bad input or no such request; 3 refused by a rule; 4 not authenticated. */
const EXIT = { unreachable: 1, usage: 2, refused: 3, unauthenticated: 4 } as const;

interface CommonOptions {
  config?: string;
  url?: string;
  token?: string;
  json?: boolean;
  database?: boolean;
  as?: string;
}

const STATUSES = ["pending", "approved", "denied", "expired"];

export function registerApprovalsCommand(program: Command, h: CliHelpers): void {
  const cmd = program
    .command("approvals")
    .description("list and decide calls held for approval (through the gateway, authenticated with a token)");

  const common = (c: Command) =>
    c
      .addOption(h.configOption)
      .option("--url <url>", "the gateway's base URL (default: $COUNTERSIGN_URL, else the configuration's publicUrl)")
      .option("--token <token>", "bearer token with audience <publicUrl>/approvals (default: $COUNTERSIGN_TOKEN)")
      .option("--json", "JSON for machines")
      .addOption(new Option("--database", "break-glass: use the database directly instead of the gateway (needs --as; recorded as break_glass)"))
      .addOption(new Option("--as <email>", "break-glass only: the approver's e-mail, trusted as given"));

  common(cmd.command("list").description("requests you may see (pending by default), newest first"))
    .option("--status <status>", "pending, approved, denied or expired", "pending")
    .option("--all", "every status")
    .option("--limit <n>", "at most this many", "50")
    .action(async (opts: CommonOptions & { status: string; all?: boolean; limit: string }) => {
      if (!opts.all && !STATUSES.includes(opts.status)) h.fail(`--status: '${opts.status}' is not one of ${STATUSES.join(", ")}`, EXIT.usage);
      const status = opts.all ? "all" : opts.status;
      const limit = Number(opts.limit) || 50;
      const body = opts.database
        ? await breakGlass(h, opts, false, async (svc) => ({
            approver: opts.as ?? null,
            requests: await Promise.all(
              (await svc.store.list({ status: status === "all" ? undefined : (status as "pending"), limit })).map(async (r) => approvalView(r, await breakGlassMayDecide(svc, r, opts.as))),
            ),
          }))
        : await api<{ approver: string; requests: ApprovalView[] }>(h, opts, "GET", `/approvals?status=${status}&limit=${limit}`);
      if (opts.json) return void process.stdout.write(JSON.stringify(body, null, 2) + "\n");
      if (body.requests.length === 0) return void process.stdout.write(`no ${status === "all" ? "" : `${status} `}approval requests${body.approver ? ` for ${body.approver}` : ""}\n`);
      h.printTable(
        ["ID", "STATUS", "CONNECTION", "TOOL", "REQUESTER", "GROUP", "VOTES", "EXPIRES (UTC)", "YOU MAY DECIDE"],
        body.requests.map((r) => [r.id, r.status, r.connection, r.tool, r.requester.email ?? r.requester.subject, r.escalationGroup ? `${r.approverGroup}+${r.escalationGroup}` : r.approverGroup, `${r.approveCount}/${r.approvalsNeeded}`, utc(r.expiresAt), r.mayDecide === null ? "-" : r.mayDecide ? "yes" : "no"]),
      );
    });

  common(cmd.command("show <id>").description("one request: who asked, what, why, and the votes so far")).action(async (id: string, opts: CommonOptions) => {
    const r = opts.database
      ? await breakGlass(h, opts, false, async (svc) => {
          const req = await svc.store.get(id);
          if (!req) h.fail(`no approval request '${id}': list them with \`countersign approvals list --database\``, EXIT.usage);
          return approvalView(req, await breakGlassMayDecide(svc, req, opts.as), await svc.store.votes(id), h.config(opts).publicUrl);
        })
      : await api<ApprovalView>(h, opts, "GET", `/approvals/${encodeURIComponent(id)}`);
    if (opts.json) return void process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    const lines = [
      `${r.id}  ${r.status}${r.decidedBy ? ` by ${r.decidedBy}` : ""}${r.decisionReason ? ` (${r.decisionReason})` : ""}`,
      `  call:          ${r.connection} / ${r.tool}`,
      `  requester:     ${r.requester.name ? `${r.requester.name} ` : ""}${r.requester.email ?? r.requester.subject} (${r.requester.kind}; groups ${r.requester.groups.join(", ") || "none"})`,
      `  rule:          ${r.rule.id ?? "-"}${r.rule.description ? ` — ${r.rule.description}` : ""}`,
      `  justification: ${r.justification ?? "-"}`,
      `  approvers:     ${r.approverGroup}${r.escalationGroup ? ` (escalated to ${r.escalationGroup})` : ""}; ${r.approveCount} of ${r.approvalsNeeded} approval(s)`,
      `  asked:         ${utc(r.createdAt)} UTC; expires ${utc(r.expiresAt)} UTC`,
      `  you may vote:  ${r.mayDecide === null ? "- (give --as)" : r.mayDecide ? "yes" : "no"}`,
      ...(r.consoleUrl ? [`  console:       ${r.consoleUrl}`] : []),
      `  arguments (masked):`,
      ...(JSON.stringify(r.arguments, null, 2) ?? "null").split("\n").map((l) => `    ${l}`),
      ...(r.votes && r.votes.length > 0 ? ["  votes:", ...r.votes.map((v) => `    ${utc(v.at)}  ${v.approver}  ${v.decision}${v.reason ? ` (${v.reason})` : ""}  via ${v.via}`)] : []),
    ];
    process.stdout.write(lines.join("\n") + "\n");
  });

  for (const decision of ["approve", "deny"] as const) {
    common(cmd.command(`${decision} <id>`).description(decision === "approve" ? "approve a held call" : "deny a held call (a reason is required)"))
      .option("--reason <text>", decision === "deny" ? "why (the requester sees it)" : "optional note")
      .action(async (id: string, opts: CommonOptions & { reason?: string }) => {
        const reason = opts.reason?.trim() || undefined;
        if (decision === "deny" && !reason) h.fail("deny needs --reason <text>: the requester sees it", EXIT.usage);
        const result = opts.database
          ? await breakGlass(h, opts, true, async (svc) => {
              const outcome = await svc.vote({ requestId: id, approver: { email: opts.as! }, decision, reason, via: "break_glass" });
              return breakGlassResult(h, outcome, opts.as!, id);
            })
          : await api<{ outcome: "recorded" | "decided"; request: ApprovalView }>(h, opts, "POST", `/approvals/${encodeURIComponent(id)}/${decision}`, reason ? { reason } : {});
        if (opts.json) return void process.stdout.write(JSON.stringify(result, null, 2) + "\n");
        const r = result.request;
        process.stdout.write(
          result.outcome === "recorded" ? `${r.id}: approval recorded (${r.approveCount} of ${r.approvalsNeeded})\n` : `${r.id}: ${r.status} by ${r.decidedBy}${r.status === "approved" ? `; ${afterApproval(r, h.config(opts).approvals?.holdForMs)}` : ""}\n`,
        );
      });
  }
}

/**
 * What happens to the approved call: a caller still inside the hold gets the answer now; one
 * whose hold ended was told "approval pending" and must make the same call again (it goes through once).
 */
function afterApproval(r: ApprovalView, holdForMs: number | undefined): string {
  if (r.forwarded) return "the held call went on";
  const holdEnds = Date.parse(r.createdAt) + (holdForMs ?? 0);
  const decidedAt = r.decidedAt ? Date.parse(r.decidedAt) : Date.now();
  return holdForMs !== undefined && decidedAt < holdEnds
    ? "the held call goes on (its caller is still waiting)"
    : `the caller was already answered "approval pending": the same call, made again, goes through once (until ${utc(r.expiresAt)} UTC)`;
}

/** With --database, whether the --as approver may vote (the gateway's rules; unknown without --as). */
async function breakGlassMayDecide(svc: import("./service.js").ApprovalService, r: import("./types.js").ApprovalRequest, as: string | undefined): Promise<boolean | null> {
  if (!as?.trim()) return null;
  const { isSelfApproval } = await import("./service.js");
  return r.status === "pending" && !isSelfApproval(r, as) && (await svc.mayDecide(r, { email: as }));
}

const utc = (iso: string) => iso.replace("T", " ").slice(0, 19);

/** A call to the gateway's approvals API; any error ends the command with its message. */
async function api<T>(h: CliHelpers, opts: CommonOptions, method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
  if (opts.as) h.fail("--as names the approver only with --database (break-glass); through the gateway the approver is the token's identity", EXIT.usage);
  const token = opts.token ?? process.env.COUNTERSIGN_TOKEN;
  if (!token) {
    h.fail(
      "no token: pass --token or set COUNTERSIGN_TOKEN to a token with audience <publicUrl>/approvals (with the dev issuer: `countersign token --approvals --sub <you> --email <your e-mail>`)",
      EXIT.usage,
    );
  }
  const base = (opts.url ?? process.env.COUNTERSIGN_URL ?? h.config(opts).publicUrl).replace(/\/+$/, "");
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    h.fail(`cannot reach the gateway at ${base}: ${(err as Error).message}; is it running? (--url or COUNTERSIGN_URL sets where)`, EXIT.unreachable);
  }
  const parsed = (await res.json().catch(() => undefined)) as (T & { error?: { message?: string; data?: { code?: string } } }) | undefined;
  if (res.ok && parsed) return parsed;
  const code = parsed?.error?.data?.code;
  const message = parsed?.error?.message ?? `HTTP ${res.status} with no details`;
  if (opts.json) process.stdout.write(JSON.stringify({ error: { code: code ?? null, status: res.status, message } }, null, 2) + "\n");
  if (code === "CS_ERR_NOT_FOUND") h.fail(`the gateway at ${base} serves no approvals API: its configuration has no approvals block`, EXIT.usage);
  const exit =
    code === "CS_ERR_UNAUTHENTICATED" || code === "CS_ERR_RATE_LIMITED"
      ? EXIT.unauthenticated
      : code === "CS_ERR_APPROVAL_NOT_FOUND" || code === "CS_ERR_DENY_REASON_REQUIRED" || res.status === 400
        ? EXIT.usage
        : res.status === 403 || res.status === 409
          ? EXIT.refused
          : EXIT.unreachable;
  h.fail(`${code ? `${code}: ` : ""}${message}`, exit);
}

async function breakGlass<T>(h: CliHelpers, opts: CommonOptions, needsApprover: boolean, fn: (svc: import("./service.js").ApprovalService) => Promise<T>): Promise<T> {
  if (opts.token || opts.url) h.fail("--database goes to the database, not the gateway: drop --url/--token", EXIT.usage);
  if (needsApprover && !opts.as?.trim()) h.fail("--database needs --as <email>: the approver's e-mail (break-glass: it is trusted as given and recorded as such)", EXIT.usage);
  const [{ ApprovalService }, { EmailDirectory }, { Recorder }, { openStore }, { createLogger }] = await Promise.all([
    import("./service.js"),
    import("./directory.js"),
    import("../audit/recorder.js"),
    import("../store/pools.js"),
    import("../log.js"),
  ]);
  const cfg = h.config(opts);
  const url = h.evidenceDatabaseUrl(cfg);
  process.stderr.write("countersign: break-glass: using the database directly; votes are recorded as via break_glass\n");
  const log = createLogger("silent");
  const store = openStore(url, { log, hotPoolSize: 1, backgroundPoolSize: 2 });
  const recorder = new Recorder(store.db, { commitTimeoutMs: cfg.database.commitTimeoutMs });
  const svc = new ApprovalService({ pool: store.background, recorder, directory: new EmailDirectory(cfg.approvals?.groups ?? {}), log });
  try {
    return await fn(svc);
  } finally {
    await svc.stop();
    await recorder.drain();
    await store.close();
  }
}

async function breakGlassResult(h: CliHelpers, outcome: VoteOutcome, as: string, id: string): Promise<{ outcome: "recorded" | "decided"; request: ApprovalView }> {
  switch (outcome.kind) {
    case "not_found":
      h.fail(`no approval request '${id}': list them with \`countersign approvals list --database\``, EXIT.usage);
    case "self_approval_refused":
      h.fail(`${as} asked for this call and cannot decide on it: another approver must (four-eyes rule)`, EXIT.refused);
    case "approver_unproven":
      h.fail(outcome.message, EXIT.refused);
    case "unauthorized":
      h.fail(`${as} is not in the approver group${outcome.groups.length > 1 ? "s" : ""} ${outcome.groups.join(", ")} (approvals.groups in the configuration)`, EXIT.refused);
    case "already_voted":
      h.fail(`${as} has already voted on ${id}`, EXIT.refused);
    case "already_decided":
    case "duplicate_action":
      h.fail(`${id} is already ${outcome.request.status}${outcome.request.decidedBy ? ` (by ${outcome.request.decidedBy})` : ""}`, EXIT.refused);
    case "recorded":
    case "decided":
      return { outcome: outcome.kind, request: await approvalView(outcome.request, false) };
  }
}
