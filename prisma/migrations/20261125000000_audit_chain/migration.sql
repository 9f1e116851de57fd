-- CreateTable
CREATE TABLE "audit_chain" (
    "seq" BIGINT NOT NULL,
    "source" TEXT NOT NULL,
    "sourceId" TEXT NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "missing" BOOLEAN NOT NULL DEFAULT false,
    "sealedAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_chain_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "audit_unsealed" (
    "id" BIGSERIAL NOT NULL,
    "source" TEXT NOT NULL,
    "sourceId" TEXT NOT NULL,
    "queuedAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_unsealed_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_checkpoints" (
    "id" BIGSERIAL NOT NULL,
    "seq" BIGINT NOT NULL,
    "head" CHAR(64) NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "previous" CHAR(64),
    "keyId" TEXT NOT NULL,
    "signature" TEXT NOT NULL,

    CONSTRAINT "audit_checkpoints_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "audit_chain_sealedAt_idx" ON "audit_chain"("sealedAt");

-- CreateIndex
CREATE UNIQUE INDEX "audit_chain_source_sourceId_key" ON "audit_chain"("source", "sourceId");

-- CreateIndex
CREATE INDEX "audit_checkpoints_at_idx" ON "audit_checkpoints"("at");


-- Audited tables: every inserted row is queued for the sealer in the inserting transaction, so
-- it becomes visible to the sealer exactly when it commits, whatever order ids were taken in.
-- One statement-level trigger per table (one extra INSERT per batch, not per row). To add a
-- source table: one CREATE TRIGGER line like those below (the table needs an `id` column), and
-- its name in AUDITED_SOURCES (gateway/audit/chain/sources.ts).
-- The migration runner splits scripts at every semicolon, even inside a function body, so the
-- body is an escape string with each semicolon written as \073.
CREATE FUNCTION "audit_enqueue"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  INSERT INTO "audit_unsealed" ("source", "sourceId")
    SELECT TG_TABLE_NAME, n."id"::text FROM new_rows n ORDER BY n."id"\073
  RETURN NULL\073
END';

CREATE TRIGGER "messages_audit_enqueue" AFTER INSERT ON "messages" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "audit_enqueue"();
CREATE TRIGGER "events_audit_enqueue" AFTER INSERT ON "events" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "audit_enqueue"();

-- Rows recorded before the chain existed join it first, in the order they were recorded.
INSERT INTO "audit_unsealed" ("source", "sourceId")
  SELECT "source", "sourceId" FROM (
    SELECT 'messages' AS "source", "id"::text AS "sourceId", "at", "id" FROM "messages"
    UNION ALL
    SELECT 'events', "id"::text, "at", "id" FROM "events"
  ) AS history ORDER BY "at", "source", "id";
