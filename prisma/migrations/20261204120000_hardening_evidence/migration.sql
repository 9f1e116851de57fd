-- An approval is bound to the whole call it was asked for: caller (issuer + subject), connection,
-- method, tool or URI, arguments, rule and approver group. The identical-retry key, and the one
-- pending request it allows, gain method, rule and group: an approval of `prompts/get deploy` (or
-- one given by another group, under another rule) can no longer release `tools/call deploy`.
DROP INDEX IF EXISTS "approval_requests_pending_call_key";
CREATE UNIQUE INDEX "approval_requests_pending_call_key" ON "approval_requests"("requesterIssuer", "requesterSubject", "connection", "method", "tool", "argumentsHash", (coalesce("ruleId", '')), "approverGroup") WHERE "status" = 'pending';

-- Who a session belonged to, who asked for a held call and who voted on it join the audit chain
-- (gateway/audit/chain/sources.ts: for sessions and approval requests the chain seals the columns
-- fixed when the row is written). Entries already sealed are untouched, so existing evidence keeps
-- verifying, rows written before this migration join the chain after what is already queued, in
-- the order they were written.
CREATE TRIGGER "sessions_audit_enqueue" AFTER INSERT ON "sessions" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "audit_enqueue"();
CREATE TRIGGER "approval_requests_audit_enqueue" AFTER INSERT ON "approval_requests" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "audit_enqueue"();
CREATE TRIGGER "approval_votes_audit_enqueue" AFTER INSERT ON "approval_votes" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "audit_enqueue"();

INSERT INTO "audit_unsealed" ("source", "sourceId")
  SELECT "source", "sourceId" FROM (
    SELECT 'sessions' AS "source", "id" AS "sourceId", "createdAt" AS "at", 0 AS "k", 0::bigint AS "n" FROM "sessions"
    UNION ALL
    SELECT 'approval_requests', "id", "createdAt", 1, 0 FROM "approval_requests"
    UNION ALL
    SELECT 'approval_votes', "id"::text, "at", 2, "id" FROM "approval_votes"
  ) AS history ORDER BY "at", "k", "n", "sourceId";
