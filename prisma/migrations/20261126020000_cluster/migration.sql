-- Several replicas: where peers relay a session's requests, and the request id that joins the
-- audit records with the log lines of the request that caused them.
ALTER TABLE "instances" ADD COLUMN "relayUrl" TEXT;

-- AlterTable
ALTER TABLE "messages" ADD COLUMN "requestId" TEXT;

-- AlterTable
ALTER TABLE "events" ADD COLUMN "requestId" TEXT;
