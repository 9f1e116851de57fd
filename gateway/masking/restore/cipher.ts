/**
 * The reverse map's keys, derived (HKDF-SHA256) from the masking key material, one per purpose:
 * AES-256-GCM for the originals, HMAC for scope and value digests. The key id is a digest of the
 * sealing key, so rows sealed under a rotated key are recognised (and left unrestored).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";

export interface MapKeys {
  seal: Buffer;
  digest: Buffer;
  keyId: string;
}

export function deriveMapKeys(material: string | Uint8Array): MapKeys {
  if (material.length < 16) throw new Error("the masking key material (keys.maskingHmac) must be at least 16 bytes to key the pseudonym map");
  const seal = Buffer.from(hkdfSync("sha256", material, "countersign/masking", "pseudonym map seal v1", 32));
  const digest = Buffer.from(hkdfSync("sha256", material, "countersign/masking", "pseudonym map digest v1", 32));
  return { seal, digest, keyId: `k1-${createHash("sha256").update(seal).digest("hex").slice(0, 16)}` };
}

export function keyedDigest(keys: MapKeys, ...parts: string[]): string {
  const h = createHmac("sha256", keys.digest);
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
}

/** nonce(12) ∥ ciphertext ∥ tag(16); `aad` binds the row (scope and pseudonym) to its value. */
export function seal(keys: MapKeys, plaintext: string, aad: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", keys.seal, nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** The original, or undefined when the row was altered, moved to another scope or sealed with another key. */
export function open(keys: MapKeys, sealed: Buffer, aad: string): string | undefined {
  if (sealed.length < 28) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", keys.seal, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}
