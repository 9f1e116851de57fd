-- CreateTable
CREATE TABLE "masking_pseudonyms" (
    "scopeHash" CHAR(64) NOT NULL,
    "pseudonym" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "sealed" BYTEA NOT NULL,
    "valueHash" CHAR(64) NOT NULL,
    "ambiguous" BOOLEAN NOT NULL DEFAULT false,
    "keyId" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "masking_pseudonyms_pkey" PRIMARY KEY ("scopeHash","pseudonym")
);

-- CreateIndex
CREATE INDEX "masking_pseudonyms_scopeHash_createdAt_idx" ON "masking_pseudonyms"("scopeHash", "createdAt");

-- CreateIndex
CREATE INDEX "masking_pseudonyms_expiresAt_idx" ON "masking_pseudonyms"("expiresAt");

