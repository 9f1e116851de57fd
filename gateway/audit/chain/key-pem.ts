// Reading Ed25519 checkpoint keys from PEM text, with errors fit for a configuration message.
// Kept apart from keys.ts (which reads the configuration) so that the configuration loader can
// validate keys without importing what imports it.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";

/** Parses a PKCS#8 PEM Ed25519 private key; throws with a message fit for a config error. */
export function parseEd25519PrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error("not a PEM private key (expected PKCS#8, e.g. from `openssl genpkey -algorithm ed25519`)");
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`an ${key.asymmetricKeyType} key: checkpoints are signed with Ed25519`);
  return key;
}

export function parseEd25519PublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error("not a PEM public key (expected SPKI, e.g. from `openssl pkey -pubout`)");
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`an ${key.asymmetricKeyType} key: checkpoints are signed with Ed25519`);
  return key;
}

