// The gateway's keyring, built in the composition root from keys.ring and re-applied by each
// reload: one KeyRing per purpose. A purpose without a configured ring falls back to the single
// key the configuration had before the keyring (a ring of one, with a fixed id), and, with no
// key at all, to a key of this process only, with a warning: such a key is not shared by the
// replicas and does not survive a restart.
import { createHmac, randomBytes } from "node:crypto";
import { loadArgumentsKey } from "../approvals/arguments-key.js";
import { GatewaySigner, type SignerKeyInput } from "../auth/upstream-identity.js";
import type { GatewayConfig } from "../config/load.js";
import { LEGACY_KEY_IDS, PROCESS_KEY_ID } from "./ids.js";
import { KeyRing, type RingKey } from "./ring.js";

/** The purposes the ring keys. */
export const RING_PURPOSES = ["requestState", "console", "relay", "masking"] as const;
export type RingPurpose = (typeof RING_PURPOSES)[number];


export interface Keyring {
  requestState: KeyRing;
  console: KeyRing;
  /** Used only with cluster.internalPort; without a configured key, a key of this process only that nothing uses. */
  relay: KeyRing;
  /**
   * Masking tags, pseudonyms and the pseudonym map. The maskers are rebuilt by a reload with the
   * active key (maskingKey); the pseudonym map restores under every key that still verifies.
   */
  masking: KeyRing;
}

interface Planned {
  keys: RingKey[];
  source: string;
  /** Said at start: a purpose keyed by this process only. */
  warning?: string | undefined;
}

/**
 * A ring key is used exactly as the purpose's single key was (each consumer narrows it to its job
 * with its own context), so a single key moves into a ring unchanged: listed under its ring-of-one
 * id (LEGACY_KEY_IDS), what it signed before stays valid.
 */
function keyOf(purpose: RingPurpose, material: string | Buffer): Buffer {
  return purpose === "requestState" ? createHmac("sha256", material).update("countersign stateless requestState v1").digest() : Buffer.from(material);
}

function configured(config: GatewayConfig, purpose: RingPurpose): Planned | undefined {
  const ring = config.keys.ring[purpose];
  if (!ring || ring.length === 0) return undefined;
  return { keys: ring.map((k) => ({ id: k.id, key: keyOf(purpose, k.secret.reveal()), state: k.state })), source: `keys.ring.${purpose}` };
}

/** What each purpose's ring holds for a configuration (throws on a ring that cannot be built). */
function plan(config: GatewayConfig): Record<RingPurpose, Planned> {
  const one = (purpose: RingPurpose, key: Buffer, source: string): Planned => ({ keys: [{ id: LEGACY_KEY_IDS[purpose], key, state: "active" }], source });
  const processOnly = (warning: string): Planned => ({ keys: [{ id: PROCESS_KEY_ID, key: randomBytes(32), state: "active" }], source: "this process only", warning });

  const args = loadArgumentsKey(config);
  const requestState = configured(config, "requestState")
    // The seal key the stateless front derived before the keyring, so states sealed then still open.
    ?? (args.key ? one("requestState", keyOf("requestState", args.key), args.source)
      : processOnly("keys.ring.requestState: none configured (nor approvals.argumentsKey or keys.maskingHmac): the requestState of a held stateless call is sealed with a key of this process only, so another replica, or this one after a restart, refuses it. Configure keys.ring.requestState (the same secret on every replica)."));
  const sessionKey = config.console.sessionKey?.reveal();
  // The quick start (embedded database) is one process: its console key needs no warning.
  const consoleOnly = processOnly("keys.ring.console: none configured (nor console.sessionKey): console logins are signed with a key of this process only; a restart logs everyone out and other replicas refuse them. Configure keys.ring.console.");
  const console = configured(config, "console")
    ?? (sessionKey ? one("console", Buffer.from(sessionKey), "console.sessionKey") : { ...consoleOnly, warning: config.console.enabled && config.database.url ? consoleOnly.warning : undefined });
  const clusterSecret = config.cluster.secret?.reveal();
  // Without a key nothing relays (the configuration requires one with cluster.internalPort).
  const relay = configured(config, "relay") ?? (clusterSecret ? one("relay", Buffer.from(clusterSecret), "cluster.secret") : { ...processOnly(""), warning: undefined });
  // Without a key, masking tags carry no HMAC and the pseudonym map is this process's (as before the keyring).
  const maskingHmac = config.keys.maskingHmac?.reveal();
  const masking = configured(config, "masking") ?? (maskingHmac ? one("masking", Buffer.from(maskingHmac), "keys.maskingHmac") : { ...processOnly(""), warning: undefined });
  return { requestState, console, relay, masking };
}

/** The key the maskers tag and derive pseudonyms with: the active masking key; none when none is configured. */
export function maskingKey(config: GatewayConfig): Buffer | undefined {
  const ring = configured(config, "masking");
  if (ring) return ring.keys.find((k) => k.state === "active")?.key;
  const maskingHmac = config.keys.maskingHmac?.reveal();
  return maskingHmac ? Buffer.from(maskingHmac) : undefined;
}

export function buildKeyring(config: GatewayConfig, warn: (line: string) => void = () => {}): Keyring {
  const p = plan(config);
  for (const purpose of RING_PURPOSES) if (p[purpose].warning) warn(p[purpose].warning);
  const ring = (purpose: RingPurpose) => new KeyRing(purpose, p[purpose].keys, p[purpose].source);
  return { requestState: ring("requestState"), console: ring("console"), relay: ring("relay"), masking: ring("masking") };
}

/**
 * A reload: each configured ring replaces its purpose's keys in place (live). A purpose that keeps
 * its fallback keeps the keys it has (a key of this process only stays the same key).
 */
export function applyKeyring(keyring: Keyring, config: GatewayConfig): void {
  for (const purpose of RING_PURPOSES) {
    const next = configured(config, purpose);
    if (next) keyring[purpose].replace(next.keys, next.source);
  }
}

/** Problems a reload would meet applying this configuration's rings (none: it applies). */
export function keyringProblems(config: GatewayConfig): string[] {
  const problems: string[] = [];
  for (const purpose of RING_PURPOSES) {
    try {
      const next = configured(config, purpose);
      if (next) new KeyRing(purpose, next.keys, next.source);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

/** Each purpose's source and key ids with their states, for the log (never a key). */
export function describeKeyring(keyring: Keyring): Record<RingPurpose, { source: string; keys: string }> {
  const out = {} as Record<RingPurpose, { source: string; keys: string }>;
  for (const purpose of RING_PURPOSES) out[purpose] = { source: keyring[purpose].source, keys: keyring[purpose].describe().map((k) => `${k.id} (${k.state})`).join(", ") };
  return out;
}

/** The upstream identity JWT keys (asymmetric, so not a KeyRing): keys.ring.upstreamJwt, else keys.upstreamJwt; none: no signer. */
export function upstreamJwtKeys(config: GatewayConfig): SignerKeyInput[] | undefined {
  const ring = config.keys.ring.upstreamJwt;
  if (ring && ring.length > 0) return ring.map((k, i) => ({ pem: k.secret.reveal(), id: k.id, state: k.state, path: `keys.ring.upstreamJwt[${i}].secret` }));
  const single = config.keys.upstreamJwt?.reveal();
  return single ? [{ pem: single }] : undefined;
}

/** Problems a reload would meet replacing the upstream identity keys (a signer exists only if one was configured at start). */
export function upstreamJwtProblems(config: GatewayConfig, signerAtStart: boolean): string[] {
  const keys = config.keys.ring.upstreamJwt;
  if (!keys || keys.length === 0) return [];
  if (!signerAtStart) return ["keys.ring.upstreamJwt: no identity JWT key was configured at start: restart to apply"];
  try {
    new GatewaySigner(upstreamJwtKeys(config)!, config.publicUrl);
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}
