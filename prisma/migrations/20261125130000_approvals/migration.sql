-- CreateTable
CREATE TABLE "approval_requests" (
    "id" TEXT NOT NULL,
    "sessionId" TEXT,
    "connection" TEXT NOT NULL,
    "method" TEXT NOT NULL DEFAULT 'tools/call',
    "tool" TEXT NOT NULL,
    "argumentsHash" TEXT NOT NULL,
    "maskedArguments" JSONB NOT NULL,
    "requesterSubject" TEXT NOT NULL,
    "requesterIssuer" TEXT NOT NULL,
    "requesterKind" TEXT NOT NULL,
    "requesterEmail" TEXT,
    "requesterName" TEXT,
    "requesterGroups" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "ruleId" TEXT,
    "ruleDescription" TEXT,
    "approverGroup" TEXT NOT NULL,
    "approvalsNeeded" INTEGER NOT NULL DEFAULT 1,
    "approveCount" INTEGER NOT NULL DEFAULT 0,
    "justification" TEXT,
    "createdAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(6) NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "decidedAt" TIMESTAMPTZ(6),
    "decidedBy" TEXT,
    "decisionReason" TEXT,
    "forwardedAt" TIMESTAMPTZ(6),
    "slackChannel" TEXT,
    "slackTs" TEXT,
    "slackPermalink" TEXT,
    "requesterDmChannel" TEXT,
    "requesterDmTs" TEXT,
    "slackState" TEXT NOT NULL DEFAULT 'pending',
    "slackAttempts" INTEGER NOT NULL DEFAULT 0,
    "slackError" TEXT,
    "slackClaimedAt" TIMESTAMPTZ(6),
    "slackDecisionShownAt" TIMESTAMPTZ(6),
    "remindedAt" TIMESTAMPTZ(6),
    "reminderCount" INTEGER NOT NULL DEFAULT 0,
    "escalatedAt" TIMESTAMPTZ(6),
    "escalationGroup" TEXT,

    CONSTRAINT "approval_requests_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "approval_votes" (
    "id" BIGSERIAL NOT NULL,
    "requestId" TEXT NOT NULL,
    "approver" TEXT NOT NULL,
    "slackUserId" TEXT,
    "decision" TEXT NOT NULL,
    "reason" TEXT,
    "actionKey" TEXT,
    "via" TEXT NOT NULL DEFAULT 'slack',
    "at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "approval_votes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "approval_requests_status_expiresAt_idx" ON "approval_requests"("status", "expiresAt");

-- CreateIndex
CREATE INDEX "approval_requests_requesterSubject_connection_tool_argument_idx" ON "approval_requests"("requesterSubject", "connection", "tool", "argumentsHash");

-- CreateIndex
CREATE INDEX "approval_requests_createdAt_idx" ON "approval_requests"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "approval_votes_actionKey_key" ON "approval_votes"("actionKey");

-- CreateIndex
CREATE UNIQUE INDEX "approval_votes_requestId_approver_key" ON "approval_votes"("requestId", "approver");

-- AddForeignKey
ALTER TABLE "approval_votes" ADD CONSTRAINT "approval_votes_requestId_fkey" FOREIGN KEY ("requestId") REFERENCES "approval_requests"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- One pending request per identical call (same caller, connection, tool and arguments): a retry
-- racing its first attempt finds the existing request instead of opening a second one.
CREATE UNIQUE INDEX "approval_requests_pending_call_key" ON "approval_requests"("requesterIssuer", "requesterSubject", "connection", "tool", "argumentsHash") WHERE "status" = 'pending';

-- Sweeps (expiry, reminders, escalation, Slack sync) read only open work.
CREATE INDEX "approval_requests_slack_sync_idx" ON "approval_requests"("status") WHERE "slackDecisionShownAt" IS NULL;

