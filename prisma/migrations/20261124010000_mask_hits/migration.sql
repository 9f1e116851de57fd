-- AlterTable
ALTER TABLE "messages" ADD COLUMN     "maskHits" JSONB;

