-- An approval is bound to everything the decision was about: one pending request per caller,
-- connection, method, tool or URI, arguments, rule and approver group (it was per caller,
-- connection, tool and arguments, so an approval of one method or rule released another).
DROP INDEX "approval_requests_pending_call_key";
CREATE UNIQUE INDEX "approval_requests_pending_call_key" ON "approval_requests"("requesterIssuer", "requesterSubject", "connection", "method", "tool", "argumentsHash", COALESCE("ruleId", ''), "approverGroup") WHERE "status" = 'pending';
