-- CreateTable
CREATE TABLE "digests" (
    "id" BIGSERIAL NOT NULL,
    "week" TEXT NOT NULL,
    "timeZone" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "generatedAt" TIMESTAMPTZ(6) NOT NULL,
    "generatedBy" TEXT,
    "content" JSONB NOT NULL,
    "sha256" CHAR(64) NOT NULL,
    "signature" TEXT,
    "keyId" TEXT,
    "postedAt" TIMESTAMPTZ(6),
    "slackChannel" TEXT,
    "slackTs" TEXT,
    "slackFileId" TEXT,

    CONSTRAINT "digests_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "digests_week_timeZone_idx" ON "digests"("week", "timeZone");
