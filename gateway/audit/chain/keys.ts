// Checkpoint keys (Ed25519, node:crypto). Signing keys come from the configuration as secrets,
// each with an optional validity window; the key valid now with the latest start signs. Public
// keys of retired keys stay in the configuration with their windows, so `verify` accepts
// checkpoints signed before a rotation. Public keys are never read from the database: anyone
// who can write the database could otherwise add their own.
//
// Without configured keys:
// - embedded database (the quick start): a key is generated once and kept beside the data
//   directory (mode 0600), with a loud warning at start-up: whoever can read that file can forge
//   checkpoints, so it is for trying Countersign, not for evidence;
// - external database: no checkpoints are taken (never unsigned ones) and start-up warns that
//   a rewritten chain or a truncated tail cannot be detected; `verify` says the same.
// A configuration that asks for checkpoints (an `audit.checkpoint` block) without keys is refused
// at load.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { GatewayConfig } from "../../config/load.js";
import { revealValue } from "../../config/secret.js";

export interface VerifierKey {
  id: string;
  key: KeyObject;
  notBefore?: Date | undefined;
  notAfter?: Date | undefined;
}

export interface SignerKey {
  id: string;
  key: KeyObject;
}

export interface CheckpointKeys {
  signer?: SignerKey | undefined;
  verifiers: Map<string, VerifierKey>;
  /** Set when the key is the quick start's generated one: its file. */
  generatedKeyFile?: string | undefined;
  /** What start-up and `verify` should say loudly, if anything. */
  warning?: string | undefined;
}

export { parseEd25519PrivateKey, parseEd25519PublicKey } from "./key-pem.js";
import { parseEd25519PrivateKey, parseEd25519PublicKey } from "./key-pem.js";

export function quickstartKeyFile(config: GatewayConfig): string {
  return resolve(join(dirname(config.database.embeddedDataDir), "checkpoint-key.pem"));
}

function keyIdOf(publicKey: KeyObject): string {
  return `quickstart-${createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 12)}`;
}

/** The quick start's key, created (mode 0600) on first use when `create` is set. */
export function loadQuickstartKey(file: string, create: boolean): SignerKey | undefined {
  if (!existsSync(file)) {
    if (!create) return undefined;
    const { privateKey } = generateKeyPairSync("ed25519");
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  const key = parseEd25519PrivateKey(readFileSync(file, "utf8"));
  return { id: keyIdOf(createPublicKey(key)), key };
}

type CheckpointSettings = NonNullable<GatewayConfig["audit"]["checkpoint"]>;

/** The configured PEM keys as key objects; a key that is not Ed25519 is named by its key path. */
function parsedKeys(cp: CheckpointSettings) {
  const problems: string[] = [];
  const parse = <T>(path: string, read: () => T): T[] => {
    try {
      return [read()];
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
      return [];
    }
  };
  const keys = cp.keys.flatMap((k, i) => parse(`audit.checkpoint.keys[${i}].privateKey`, () => ({ ...k, privateKey: parseEd25519PrivateKey(k.privateKey.reveal()) })));
  const publicKeys = cp.publicKeys.flatMap((k, i) => parse(`audit.checkpoint.publicKeys[${i}].publicKey`, () => ({ ...k, publicKey: parseEd25519PublicKey(revealValue(k.publicKey)) })));
  if (problems.length > 0) throw new CheckpointKeyError(problems);
  return { keys, publicKeys };
}

/** Configured checkpoint keys that cannot be used, each problem starting with its key path. */
export class CheckpointKeyError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "CheckpointKeyError";
  }
}

/**
 * The keys for this configuration. `forSigning`: the gateway and `countersign checkpoint`
 * (may create the quick-start key); otherwise `verify` (reads only).
 */
export function loadCheckpointKeys(config: GatewayConfig, forSigning: boolean, now = new Date()): CheckpointKeys {
  const verifiers = new Map<string, VerifierKey>();
  const cp = config.audit.checkpoint && parsedKeys(config.audit.checkpoint);
  if (cp) {
    for (const k of cp.publicKeys) verifiers.set(k.id, { id: k.id, key: k.publicKey, notBefore: k.notBefore, notAfter: k.notAfter });
    for (const k of cp.keys) verifiers.set(k.id, { id: k.id, key: createPublicKey(k.privateKey), notBefore: k.notBefore, notAfter: k.notAfter });
    const current = cp.keys
      .filter((k) => (!k.notBefore || k.notBefore <= now) && (!k.notAfter || now < k.notAfter))
      .sort((a, b) => (b.notBefore?.getTime() ?? 0) - (a.notBefore?.getTime() ?? 0))[0];
    if (forSigning && !current) {
      throw new Error("audit.checkpoint.keys: no key is valid now (check notBefore/notAfter): the gateway will not run without a checkpoint key it may use");
    }
    return { signer: current ? { id: current.id, key: current.privateKey } : undefined, verifiers };
  }
  if (!config.database.url) {
    const file = quickstartKeyFile(config);
    const key = loadQuickstartKey(file, forSigning);
    if (key) verifiers.set(key.id, { id: key.id, key: createPublicKey(key.key) });
    return {
      signer: key,
      verifiers,
      generatedKeyFile: file,
      warning: `audit checkpoints are signed with a key generated for the quick start and kept in ${file}: anyone who can read it can forge checkpoints. For evidence, configure audit.checkpoint.keys (an Ed25519 key from a secret store) and publish its public key.`,
    };
  }
  return {
    verifiers,
    warning: "no audit checkpoint key is configured (audit.checkpoint.keys): the audit chain is sealed but no signed checkpoints are taken, so a rewritten chain or a truncated tail cannot be detected. Configure an Ed25519 key to get signed checkpoints.",
  };
}
