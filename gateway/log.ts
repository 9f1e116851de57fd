// The gateway's structured log (pino, as Fastify uses). Credentials in headers are redacted at
// the logger, and payloads are never logged: the audit store holds them (masked).
import { pino, type Logger } from "pino";

export type { Logger };

export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers[\"x-api-key\"]",
  "headers.authorization",
  "headers.cookie",
  "*.password",
  "*.secret",
  "*.token",
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, base: { service: "countersign" } },
    destination ?? process.stdout,
  );
}
