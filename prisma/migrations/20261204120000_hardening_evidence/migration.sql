-- An approval is bound to the whole call it was asked for: caller (issuer + subject), connection,
-- method, tool or URI, arguments, rule and approver group. The identical-retry key, and the one
-- pending request it allows, gain method, rule and group: an approval of `prompts/get deploy` (or
-- one given by another group, under another rule) can no longer release `tools/call deploy`.
DROP INDEX IF EXISTS "approval_requests_pending_call_key";
CREATE UNIQUE INDEX "approval_requests_pending_call_key" ON "approval_requests"("requesterIssuer", "requesterSubject", "connection", "method", "tool", "argumentsHash", (coalesce("ruleId", '')), "approverGroup") WHERE "status" = 'pending';

