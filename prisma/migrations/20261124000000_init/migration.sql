-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "instances" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "version" TEXT NOT NULL,
    "startedAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "stoppedAt" TIMESTAMPTZ(6),

    CONSTRAINT "instances_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sessions" (
    "id" TEXT NOT NULL,
    "connection" TEXT NOT NULL,
    "frontTransport" TEXT NOT NULL,
    "upstreamKind" TEXT NOT NULL,
    "upstreamSessionId" TEXT,
    "protocolVersion" TEXT,
    "clientInfo" JSONB,
    "serverInfo" JSONB,
    "ownerInstanceId" TEXT NOT NULL,
    "remoteAddress" TEXT,
    "userAgent" TEXT,
    "subject" TEXT,
    "issuer" TEXT,
    "email" TEXT,
    "name" TEXT,
    "groups" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "clientId" TEXT,
    "createdAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closedAt" TIMESTAMPTZ(6),
    "closeReason" TEXT,

    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "messages" (
    "id" BIGSERIAL NOT NULL,
    "sessionId" TEXT,
    "connection" TEXT NOT NULL,
    "direction" TEXT NOT NULL,
    "origin" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "jsonrpcId" TEXT,
    "method" TEXT,
    "size" INTEGER NOT NULL,
    "payload" JSONB NOT NULL,
    "subject" TEXT,
    "at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "events" (
    "id" BIGSERIAL NOT NULL,
    "type" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "sessionId" TEXT,
    "connection" TEXT,
    "subject" TEXT,
    "detail" JSONB,
    "at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "sessions_connection_createdAt_idx" ON "sessions"("connection", "createdAt");

-- CreateIndex
CREATE INDEX "sessions_createdAt_idx" ON "sessions"("createdAt");

-- CreateIndex
CREATE INDEX "sessions_subject_idx" ON "sessions"("subject");

-- CreateIndex
CREATE INDEX "messages_sessionId_id_idx" ON "messages"("sessionId", "id");

-- CreateIndex
CREATE INDEX "messages_connection_at_idx" ON "messages"("connection", "at");

-- CreateIndex
CREATE INDEX "messages_method_idx" ON "messages"("method");

-- CreateIndex
CREATE INDEX "events_type_at_idx" ON "events"("type", "at");

-- CreateIndex
CREATE INDEX "events_sessionId_idx" ON "events"("sessionId");

-- AddForeignKey
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_ownerInstanceId_fkey" FOREIGN KEY ("ownerInstanceId") REFERENCES "instances"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "sessions"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "events" ADD CONSTRAINT "events_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "sessions"("id") ON DELETE SET NULL ON UPDATE CASCADE;

