// What `countersign config` checks beyond the schema: problems that make a configuration unusable
// on this machine (a stdio command that is not there), and warnings for a configuration that looks
// like production but lacks the keys that make its evidence trustworthy.
import type { GatewayConfig } from "./load.js";
import { commandResolves } from "../upstream-health.js";

/** Each problem starts with the key path it is about. */
export function configProblems(cfg: GatewayConfig): string[] {
  const problems: string[] = [];
  cfg.connections.forEach((c, i) => {
    if (c.upstream.type === "stdio" && !commandResolves(c.upstream.command, c.upstream.cwd)) {
      const how = c.upstream.command.includes("/") ? "no executable file at that path" : "not found on PATH";
      problems.push(`connections[${i}].upstream.command: '${c.upstream.command}' (connection ${c.name}): ${how}`);
    }
  });
  return problems;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/** Production-like: it listens beyond this machine and trusts a real identity provider. */
export function looksLikeProduction(cfg: GatewayConfig): boolean {
  return !LOOPBACK.test(cfg.server.host) && cfg.auth.issuers.length > 0 && !cfg.auth.devIssuer.enabled;
}

export function configWarnings(cfg: GatewayConfig): string[] {
  if (!looksLikeProduction(cfg)) return [];
  const warnings: string[] = [];
  const where = `(listens on ${cfg.server.host} with a real issuer)`;
  if (!cfg.audit.checkpoint?.keys.length) {
    warnings.push(`audit.checkpoint.keys: none ${where}: the audit chain is not signed, so nothing proves the records were not rewritten; configure an Ed25519 key from your secret store`);
  }
  if (!cfg.keys.maskingHmac) {
    warnings.push(`keys.maskingHmac: none ${where}: masked values get no stable HMAC tag, and replicas cannot correlate them; set it from your secret store (the same for every replica)`);
  }
  if (!cfg.keys.ring.requestState && !cfg.approvals?.argumentsKey && !cfg.keys.maskingHmac) {
    warnings.push(`keys.ring.requestState: none ${where}: held stateless calls' requestState is sealed with a key of one process, so another replica or a restart refuses it; configure keys.ring.requestState (see README, Keys and rotation)`);
  }
  if (cfg.console.enabled && !cfg.keys.ring.console && !cfg.console.sessionKey) {
    warnings.push(`keys.ring.console: none ${where}: console logins are signed with a key of one process, so a restart logs everyone out and other replicas refuse them; configure keys.ring.console`);
  }
  return warnings;
}
