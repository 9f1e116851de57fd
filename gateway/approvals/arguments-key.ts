// Which key keys the stored arguments hash (canonical.ts), in order: approvals.argumentsKey; a key
// derived from keys.maskingHmac (a separate purpose, so a sub-key, never the masking key itself);
// in the quick start (embedded database) a key generated into .countersign/ beside the checkpoint
// key; otherwise none, with a warning, and the hash is a plain SHA-256.
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { GatewayConfig } from "../config/load.js";

export interface ArgumentsKey {
  key?: Buffer | undefined;
  source: "approvals.argumentsKey" | "keys.maskingHmac" | "generated" | "none";
  /** Where the generated key is kept. */
  file?: string | undefined;
  warning?: string | undefined;
}

export function quickstartArgumentsKeyFile(config: GatewayConfig): string {
  return resolve(join(dirname(config.database.embeddedDataDir), "approvals-arguments.key"));
}

export function loadArgumentsKey(config: GatewayConfig): ArgumentsKey {
  const configured = config.approvals?.argumentsKey?.reveal();
  if (configured) return { key: Buffer.from(configured, "utf8"), source: "approvals.argumentsKey" };
  const masking = config.keys.maskingHmac?.reveal();
  if (masking) return { key: createHmac("sha256", masking).update("countersign approvals arguments hash").digest(), source: "keys.maskingHmac" };
  if (!config.database.url) {
    const file = quickstartArgumentsKeyFile(config);
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
      chmodSync(file, 0o600);
    }
    return { key: Buffer.from(readFileSync(file, "utf8").trim(), "utf8"), source: "generated", file };
  }
  return {
    source: "none",
    warning:
      "no key for the approvals arguments hash (approvals.argumentsKey or keys.maskingHmac): held calls' arguments are stored as a plain SHA-256, so someone who reads the database can confirm a guessed argument value. Configure approvals.argumentsKey (the same secret on every replica).",
  };
}
