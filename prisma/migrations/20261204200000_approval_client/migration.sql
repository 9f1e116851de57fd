-- AlterTable
ALTER TABLE "approval_requests" ADD COLUMN     "client" JSONB;

