-- Tool pinning (gateway/pinning): the accepted definition of each tool per connection, and each
-- change from a pin reported once. The changes themselves are recorded as events (chained).

-- CreateTable
CREATE TABLE "tool_pins" (
    "connection" TEXT NOT NULL,
    "tool" TEXT NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "definition" JSONB NOT NULL,
    "pinnedAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "pinnedBy" TEXT NOT NULL,
    "currentHash" CHAR(64) NOT NULL,
    "currentDefinition" JSONB NOT NULL,
    "currentSeenAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "currentSessionId" TEXT,

    CONSTRAINT "tool_pins_pkey" PRIMARY KEY ("connection","tool")
);

-- CreateTable
CREATE TABLE "tool_pin_changes" (
    "connection" TEXT NOT NULL,
    "tool" TEXT NOT NULL,
    "pinnedHash" CHAR(64) NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "sessionId" TEXT,
    "seenAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tool_pin_changes_pkey" PRIMARY KEY ("connection","tool","pinnedHash","hash")
);

