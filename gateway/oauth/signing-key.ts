// The key that signs the gateway's own access tokens (ES256): oauth.signingKey when configured
// (the same on every replica), else a new key per process. Its public half joins the verifier's
// trusted issuers, so the data path accepts the gateway's tokens like any issuer's.
import { createPrivateKey, createHash } from "node:crypto";
import { exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from "jose";
import type { Secret } from "../config/secret.js";

export const OAUTH_ALG = "ES256";

export interface OAuthSigningKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

export async function loadSigningKey(configured: Secret | undefined): Promise<OAuthSigningKey> {
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  if (configured) {
    const pem = configured.reveal();
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("oauth.signingKey: expected a PKCS#8 PEM EC P-256 private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)");
    privateKey = await importPKCS8(pem, OAUTH_ALG, { extractable: true });
    const { d: _private, ...pub } = await exportJWK(privateKey);
    publicJwk = pub;
  } else {
    const pair = await generateKeyPair(OAUTH_ALG, { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = await exportJWK(pair.publicKey);
  }
  // The key id is derived from the public key: every replica with the same key names it alike.
  const kid = `cs-${createHash("sha256").update(`${publicJwk.x}.${publicJwk.y}`).digest("base64url").slice(0, 16)}`;
  return { privateKey, publicJwk: { ...publicJwk, kid, alg: OAUTH_ALG, use: "sig" }, kid };
}
