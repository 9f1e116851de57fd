// Signing a digest with the audit chain's checkpoint key (Ed25519): the bytes signed are the
// RFC 8785 (canonical JSON) form of the digest's content, and `sha256` is their digest. Anyone
// with the published public key can check a digest file: canonicalize `digest`, verify.
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { canonicalize } from "json-canonicalize";
import type { SignerKey } from "../audit/chain/keys.js";
import type { DigestContent } from "./digest.js";

export interface DigestSeal {
  sha256: string;
  /** Base64 Ed25519 signature; null when no checkpoint key is configured. */
  signature: string | null;
  keyId: string | null;
  /** SPKI PEM of the signing key, for people reading the file (trust the published key, not this). */
  publicKey: string | null;
}

export function digestBytes(content: DigestContent): Buffer {
  return Buffer.from(canonicalize(content), "utf8");
}

export function sealDigest(content: DigestContent, signer: SignerKey | undefined): DigestSeal {
  const bytes = digestBytes(content);
  return {
    sha256: createHash("sha256").update(bytes).digest("hex"),
    signature: signer ? sign(null, bytes, signer.key).toString("base64") : null,
    keyId: signer?.id ?? null,
    publicKey: signer ? createPublicKey(signer.key).export({ type: "spki", format: "pem" }).toString() : null,
  };
}

/** Whether `signature` is a valid signature of the content by `publicKey`. */
export function verifyDigestSignature(content: DigestContent, signature: string, publicKey: KeyObject): boolean {
  try {
    return verify(null, digestBytes(content), publicKey, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}
