// Approval requests and votes in Postgres. Every transition is guarded by the current status in
// the same statement (or under the request's row lock), so whatever races (concurrent clicks,
// Slack retries, replayed payloads, several replicas), exactly one decision is taken, and an
// approved call is claimed for forwarding exactly once. Decisions are announced with NOTIFY in
// the deciding transaction, so waiters on every replica learn of them at commit.
import pg from "pg";
import type { ApprovalClient, ApprovalRequest, ApprovalStatus, ApprovalVote, NewApprovalRequest, SlackRefs, VoteInput } from "../approvals/types.js";

export const NOTIFY_CHANNEL = "countersign_approvals";

type Row = Record<string, unknown>;

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : v instanceof Date ? v : new Date(String(v)));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** How much of each caller-supplied client value is kept. */
const CLIENT_LIMITS = { name: 100, version: 40, remoteAddress: 64, userAgent: 200 } as const;

/** The caller's client as stored: known keys only, strings only, clipped; null when nothing is left. */
export function clientOf(v: unknown): ApprovalClient | null {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const out: ApprovalClient = {};
  for (const [key, max] of Object.entries(CLIENT_LIMITS) as Array<[keyof ApprovalClient, number]>) {
    const value = (v as Record<string, unknown>)[key];
    if (typeof value === "string" && value.trim()) out[key] = value.trim().slice(0, max);
  }
  return Object.keys(out).length > 0 ? out : null;
}

export function toRequest(r: Row): ApprovalRequest {
  return {
    id: String(r.id),
    sessionId: str(r.sessionId),
    connection: String(r.connection),
    method: String(r.method),
    tool: String(r.tool),
    argumentsHash: String(r.argumentsHash),
    maskedArguments: r.maskedArguments,
    requester: {
      subject: String(r.requesterSubject),
      issuer: String(r.requesterIssuer),
      kind: r.requesterKind as ApprovalRequest["requester"]["kind"],
      email: str(r.requesterEmail) ?? undefined,
      name: str(r.requesterName) ?? undefined,
      groups: (r.requesterGroups as string[] | null) ?? [],
    },
    ruleId: str(r.ruleId),
    ruleDescription: str(r.ruleDescription),
    approverGroup: String(r.approverGroup),
    approvalsNeeded: Number(r.approvalsNeeded),
    approveCount: Number(r.approveCount),
    justification: str(r.justification),
    createdAt: date(r.createdAt)!,
    expiresAt: date(r.expiresAt)!,
    status: r.status as ApprovalStatus,
    decidedAt: date(r.decidedAt),
    decidedBy: str(r.decidedBy),
    decisionReason: str(r.decisionReason),
    forwardedAt: date(r.forwardedAt),
    slack: {
      channel: str(r.slackChannel),
      ts: str(r.slackTs),
      permalink: str(r.slackPermalink),
      requesterDmChannel: str(r.requesterDmChannel),
      requesterDmTs: str(r.requesterDmTs),
      state: String(r.slackState),
      attempts: Number(r.slackAttempts),
      error: str(r.slackError),
    },
    reminderCount: Number(r.reminderCount),
    escalatedAt: date(r.escalatedAt),
    escalationGroup: str(r.escalationGroup),
    client: clientOf(r.client),
  };
}

const NOTIFY = `SELECT pg_notify('${NOTIFY_CHANNEL}', $1)`;

export type VoteResult =
  | { kind: "not_found" }
  | { kind: "duplicate_action" | "already_decided" | "already_voted"; request: ApprovalRequest }
  /** The request had run past its expiry: this call expired it. */
  | { kind: "expired_now"; request: ApprovalRequest }
  | { kind: "recorded" | "decided"; request: ApprovalRequest };

export class ApprovalStore {
  constructor(readonly pool: pg.Pool) {}

  /**
   * Opens a request, or returns the open one for an identical call (same caller, connection,
   * method, tool or URI, canonical arguments, rule and approver group) within its lifetime. An approved request that was already forwarded
   * is spent, and an expired one is over: the call then opens a new request.
   */
  async open(id: string, input: NewApprovalRequest, argumentsHash: string): Promise<{ request: ApprovalRequest; created: boolean }> {
    // The whole call: caller, connection, method, tool or URI, arguments, rule and approver group.
    const key = [input.requester.issuer, input.requester.subject, input.connection, input.method ?? "tools/call", input.tool, argumentsHash, input.rule.id ?? "", input.approverGroup];
    for (let attempt = 0; attempt < 3; attempt++) {
      // A pending request past its expiry is expired first, so it does not hold the unique slot.
      await this.pool.query(
        `UPDATE approval_requests SET status = 'expired', "decidedAt" = now(), "decisionReason" = 'expired'
         WHERE "requesterIssuer" = $1 AND "requesterSubject" = $2 AND connection = $3 AND method = $4 AND tool = $5 AND "argumentsHash" = $6
           AND coalesce("ruleId", '') = $7 AND "approverGroup" = $8
           AND status = 'pending' AND "expiresAt" <= now()
         RETURNING pg_notify('${NOTIFY_CHANNEL}', id)`,
        key,
      );
      const existing = await this.pool.query(
        `SELECT * FROM approval_requests
         WHERE "requesterIssuer" = $1 AND "requesterSubject" = $2 AND connection = $3 AND method = $4 AND tool = $5 AND "argumentsHash" = $6
           AND coalesce("ruleId", '') = $7 AND "approverGroup" = $8
           AND "expiresAt" > now() AND status IN ('pending', 'approved', 'denied')
           AND NOT (status = 'approved' AND "forwardedAt" IS NOT NULL)
         ORDER BY "createdAt" DESC LIMIT 1`,
        key,
      );
      if (existing.rows[0]) return { request: toRequest(existing.rows[0] as Row), created: false };
      const inserted = await this.pool.query(
        `INSERT INTO approval_requests (id, "sessionId", connection, method, tool, "argumentsHash", "maskedArguments",
           "requesterSubject", "requesterIssuer", "requesterKind", "requesterEmail", "requesterName", "requesterGroups",
           "ruleId", "ruleDescription", "approverGroup", "approvalsNeeded", justification, "expiresAt", client)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, now() + make_interval(secs => $19::double precision / 1000), $20::jsonb)
         ON CONFLICT DO NOTHING RETURNING *`,
        [
          id, input.sessionId ?? null, input.connection, input.method ?? "tools/call", input.tool, argumentsHash, JSON.stringify(input.maskedArguments ?? null),
          input.requester.subject, input.requester.issuer, input.requester.kind, input.requester.email?.toLowerCase() ?? null, input.requester.name ?? null, input.requester.groups,
          input.rule.id, input.rule.description ?? null, input.approverGroup, input.approvalsNeeded, input.justification ?? null, input.timeoutMs,
          JSON.stringify(clientOf(input.client)),
        ],
      );
      if (inserted.rows[0]) return { request: toRequest(inserted.rows[0] as Row), created: true };
      // Lost a race with an identical call: read the winner's request on the next pass.
    }
    throw new Error("could not open or find the approval request (identical calls kept racing)");
  }

  async get(id: string): Promise<ApprovalRequest | undefined> {
    const r = await this.pool.query(`SELECT * FROM approval_requests WHERE id = $1`, [id]);
    return r.rows[0] ? toRequest(r.rows[0] as Row) : undefined;
  }

  async votes(id: string): Promise<ApprovalVote[]> {
    const r = await this.pool.query(`SELECT * FROM approval_votes WHERE "requestId" = $1 ORDER BY id`, [id]);
    return r.rows.map((v: Row) => ({
      approver: String(v.approver),
      slackUserId: str(v.slackUserId),
      decision: v.decision as ApprovalVote["decision"],
      reason: str(v.reason),
      via: String(v.via),
      at: date(v.at)!,
    }));
  }

  async list(opts: { status?: ApprovalStatus | undefined; limit: number }): Promise<ApprovalRequest[]> {
    const r = opts.status
      ? await this.pool.query(`SELECT * FROM approval_requests WHERE status = $1 ORDER BY "createdAt" DESC LIMIT $2`, [opts.status, opts.limit])
      : await this.pool.query(`SELECT * FROM approval_requests ORDER BY "createdAt" DESC LIMIT $1`, [opts.limit]);
    return r.rows.map((x: Row) => toRequest(x));
  }

  /** Requests among `ids` that are decided (for waiters). */
  async decided(ids: string[]): Promise<ApprovalRequest[]> {
    if (ids.length === 0) return [];
    const r = await this.pool.query(`SELECT * FROM approval_requests WHERE id = ANY($1::text[]) AND status <> 'pending'`, [ids]);
    return r.rows.map((x: Row) => toRequest(x));
  }

  /**
   * One vote, under the request's row lock: checks the action was not processed before, the
   * request is still pending (and not past expiry), the approver has not voted; records the vote
   * and, when it decides, the decision and a NOTIFY, all in one transaction.
   */
  async vote(v: VoteInput, approverKey: string): Promise<VoteResult> {
    const c = await this.pool.connect();
    let open = false;
    try {
      await c.query("BEGIN");
      open = true;
      const locked = await c.query(`SELECT *, "expiresAt" <= now() AS "pastExpiry" FROM approval_requests WHERE id = $1 FOR UPDATE`, [v.requestId]);
      const row = locked.rows[0] as Row | undefined;
      if (!row) {
        await c.query("ROLLBACK");
        open = false;
        return { kind: "not_found" };
      }
      const finish = async (kind: "duplicate_action" | "already_decided" | "already_voted") => {
        await c.query("ROLLBACK");
        open = false;
        return { kind, request: toRequest(row) };
      };
      if (v.actionKey) {
        const seen = await c.query(`SELECT 1 FROM approval_votes WHERE "actionKey" = $1`, [v.actionKey]);
        if (seen.rowCount) return finish("duplicate_action");
      }
      if (row.status === "pending" && row.pastExpiry === true) {
        const expired = await c.query(
          `UPDATE approval_requests SET status = 'expired', "decidedAt" = now(), "decisionReason" = 'expired' WHERE id = $1 AND status = 'pending' RETURNING *`,
          [v.requestId],
        );
        await c.query(NOTIFY, [v.requestId]);
        await c.query("COMMIT");
        open = false;
        return { kind: "expired_now", request: toRequest(expired.rows[0] as Row) };
      }
      if (row.status !== "pending") return finish("already_decided");
      const prior = await c.query(`SELECT 1 FROM approval_votes WHERE "requestId" = $1 AND approver = $2`, [v.requestId, approverKey]);
      if (prior.rowCount) return finish("already_voted");
      await c.query(
        `INSERT INTO approval_votes ("requestId", approver, "slackUserId", decision, reason, "actionKey", via) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [v.requestId, approverKey, v.approver.slackUserId ?? null, v.decision, v.reason ?? null, v.actionKey ?? null, v.via],
      );
      const updated =
        v.decision === "deny"
          ? await c.query(
              `UPDATE approval_requests SET status = 'denied', "decidedAt" = now(), "decidedBy" = $2, "decisionReason" = $3
               WHERE id = $1 AND status = 'pending' RETURNING *`,
              [v.requestId, approverKey, v.reason ?? null],
            )
          : await c.query(
              `UPDATE approval_requests SET "approveCount" = "approveCount" + 1,
                 status = CASE WHEN "approveCount" + 1 >= "approvalsNeeded" THEN 'approved' ELSE status END,
                 "decidedAt" = CASE WHEN "approveCount" + 1 >= "approvalsNeeded" THEN now() ELSE NULL END,
                 "decidedBy" = CASE WHEN "approveCount" + 1 >= "approvalsNeeded" THEN $2 ELSE NULL END
               WHERE id = $1 AND status = 'pending' RETURNING *`,
              [v.requestId, approverKey],
            );
      const after = toRequest(updated.rows[0] as Row);
      if (after.status !== "pending") await c.query(NOTIFY, [v.requestId]);
      await c.query("COMMIT");
      open = false;
      return { kind: after.status === "pending" ? "recorded" : "decided", request: after };
    } catch (err) {
      if (open) await c.query("ROLLBACK").catch(() => {});
      // A concurrent delivery of the same action won the unique actionKey: it is a duplicate.
      if ((err as { code?: string }).code === "23505") {
        const request = await this.get(v.requestId);
        if (request) return { kind: (err as { constraint?: string }).constraint?.includes("actionKey") ? "duplicate_action" : "already_voted", request };
      }
      throw err;
    } finally {
      c.release();
    }
  }

  /** The single claim that lets one replica forward an approved call: true once, false after. */
  async claimForward(id: string): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE approval_requests SET "forwardedAt" = now() WHERE id = $1 AND status = 'approved' AND "forwardedAt" IS NULL RETURNING id`,
      [id],
    );
    return r.rowCount === 1;
  }

  /** Undoes a claim whose forward never went out, so the identical retry can still use the approval. */
  async releaseForward(id: string): Promise<void> {
    await this.pool.query(`UPDATE approval_requests SET "forwardedAt" = NULL WHERE id = $1 AND status = 'approved'`, [id]);
  }

  /** Expires what is due; each row is returned to exactly one caller (replica). */
  async expireDue(): Promise<ApprovalRequest[]> {
    const r = await this.pool.query(
      `UPDATE approval_requests SET status = 'expired', "decidedAt" = now(), "decisionReason" = 'expired'
       WHERE status = 'pending' AND "expiresAt" <= now()
       RETURNING *, pg_notify('${NOTIFY_CHANNEL}', id) AS notified`,
    );
    return r.rows.map((x: Row) => toRequest(x));
  }

  async claimReminders(everyMs: number): Promise<ApprovalRequest[]> {
    const r = await this.pool.query(
      `UPDATE approval_requests SET "remindedAt" = now(), "reminderCount" = "reminderCount" + 1
       WHERE status = 'pending' AND "slackTs" IS NOT NULL AND "expiresAt" > now()
         AND coalesce("remindedAt", "createdAt") <= now() - make_interval(secs => $1::double precision / 1000)
       RETURNING *`,
      [everyMs],
    );
    return r.rows.map((x: Row) => toRequest(x));
  }

  async claimEscalations(afterMs: number, group: string): Promise<ApprovalRequest[]> {
    const r = await this.pool.query(
      `UPDATE approval_requests SET "escalatedAt" = now(), "escalationGroup" = $2
       WHERE status = 'pending' AND "escalatedAt" IS NULL AND "approverGroup" <> $2 AND "expiresAt" > now()
         AND "createdAt" <= now() - make_interval(secs => $1::double precision / 1000)
       RETURNING *`,
      [afterMs, group],
    );
    return r.rows.map((x: Row) => toRequest(x));
  }

  /**
   * Slack work nobody holds a lease on: messages never posted (the poster crashed, or Slack was
   * down) and decisions the message does not show yet (decided on another replica or in the CLI).
   */
  async claimSlackWork(maxAttempts: number, leaseMs: number, limit = 20): Promise<ApprovalRequest[]> {
    const r = await this.pool.query(
      `UPDATE approval_requests SET "slackClaimedAt" = now()
       WHERE id IN (
         SELECT id FROM approval_requests
         WHERE "slackDecisionShownAt" IS NULL
           AND (("status" = 'pending' AND "slackTs" IS NULL AND "slackAttempts" < $1 AND "expiresAt" > now()
                -- a new request is posted by the replica that opened it; the sweep takes over only if that fails
                AND ("slackAttempts" > 0 OR "createdAt" < now() - interval '10 seconds'))
             OR ("status" <> 'pending' AND "decidedAt" > now() - interval '1 day'))
           AND ("slackClaimedAt" IS NULL OR "slackClaimedAt" < now() - make_interval(secs => $2::double precision / 1000))
         ORDER BY "createdAt" LIMIT $3
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [maxAttempts, leaseMs, limit],
    );
    return r.rows.map((x: Row) => toRequest(x));
  }

  /** A lease on one request's Slack message, for the replica about to post or update it. */
  async claimSlack(id: string, leaseMs: number): Promise<ApprovalRequest | undefined> {
    const r = await this.pool.query(
      `UPDATE approval_requests SET "slackClaimedAt" = now()
       WHERE id = $1 AND "slackDecisionShownAt" IS NULL
         AND ("slackClaimedAt" IS NULL OR "slackClaimedAt" < now() - make_interval(secs => $2::double precision / 1000))
       RETURNING *`,
      [id, leaseMs],
    );
    return r.rows[0] ? toRequest(r.rows[0] as Row) : undefined;
  }

  async slackPosted(id: string, refs: SlackRefs): Promise<void> {
    await this.pool.query(
      `UPDATE approval_requests SET "slackChannel" = $2, "slackTs" = $3, "slackPermalink" = $4, "requesterDmChannel" = $5, "requesterDmTs" = $6,
         "slackState" = 'posted', "slackError" = NULL, "slackAttempts" = "slackAttempts" + 1
       WHERE id = $1`,
      [id, refs.channel, refs.ts, refs.permalink ?? null, refs.requesterDmChannel ?? null, refs.requesterDmTs ?? null],
    );
  }

  async slackFailed(id: string, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE approval_requests SET "slackState" = CASE WHEN "slackTs" IS NULL THEN 'failed' ELSE "slackState" END, "slackError" = $2, "slackAttempts" = "slackAttempts" + 1 WHERE id = $1`,
      [id, error.slice(0, 500)],
    );
  }

  async decisionShown(id: string): Promise<void> {
    await this.pool.query(`UPDATE approval_requests SET "slackDecisionShownAt" = now(), "slackError" = NULL, "slackClaimedAt" = NULL WHERE id = $1`, [id]);
  }

  /**
   * The copy of the request posted in the escalation group's own channel, found in its recorded
   * `approval/notified` event (kept there rather than in a column of its own).
   */
  async escalationMessage(id: string, sessionId: string | null): Promise<{ channel: string; ts: string } | undefined> {
    const r = await this.pool.query(
      `SELECT detail FROM events WHERE type = 'approval' AND reason = 'notified' AND "sessionId" IS NOT DISTINCT FROM $2
         AND detail->>'requestId' = $1 AND detail->>'escalation' = 'true'
       ORDER BY id DESC LIMIT 1`,
      [id, sessionId],
    );
    const d = r.rows[0]?.detail as { channel?: string; ts?: string } | undefined;
    return d?.channel && d.ts ? { channel: d.channel, ts: d.ts } : undefined;
  }

  async releaseSlack(id: string): Promise<void> {
    await this.pool.query(`UPDATE approval_requests SET "slackClaimedAt" = NULL WHERE id = $1`, [id]);
  }
}
