// Applies the migrations in prisma/migrations with the Prisma CLI (`prisma migrate deploy`),
// which runs offline through its WebAssembly schema engine (prisma.config.ts).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { PACKAGE_ROOT } from "../paths.js";

export interface MigrateResult {
  output: string;
}

export async function migrateDatabase(url: string): Promise<MigrateResult> {
  const require = createRequire(import.meta.url);
  const cli = require.resolve("prisma/build/index.js", { paths: [PACKAGE_ROOT] });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, "migrate", "deploy"], {
      cwd: PACKAGE_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATABASE_URL: url, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (err) => reject(new Error(`cannot run the Prisma CLI for migrations: ${err.message}`)));
    child.on("close", (code) => {
      if (code === 0) resolve({ output });
      else reject(new Error(`migrations failed (prisma migrate deploy exited with ${code}):\n${output.trim()}`));
    });
  });
}
