// Prisma CLI configuration. The WebAssembly schema engine ("js") runs migrations through the
// pg driver adapter, so no native engine has to be downloaded (see README, "Database").
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL! }),
});
