// Builds the identity layer from the configuration: the token verifier (configured issuers plus
// the built-in dev issuer when enabled), the authenticator, the gateway's signer for upstream
// identity JWTs, and the discovery endpoints MCP clients and upstreams read.
import { CountersignError, sendError } from "../errors.js";
import { dirname, join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { ThrottledEvents } from "../audit/rejections.js";
import type { Recorder } from "../audit/recorder.js";
import type { GatewayConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import { Authenticator, resourceUrl } from "./authenticator.js";
import { DEV_ISSUER_PATH, devIssuerUrl, loadDevIssuerKey, type DevIssuerKey } from "./dev-issuer.js";
import { GatewaySigner } from "./upstream-identity.js";
import { upstreamJwtKeys } from "../keys/keyring.js";
import { loadSigningKey, OAUTH_ALG, type OAuthSigningKey } from "../oauth/signing-key.js";
import { IDP_ISSUER_CLAIM } from "../oauth/access-token.js";
import { TokenVerifier, type IssuerSettings } from "./verifier.js";

export interface IdentityLayer {
  authenticator: Authenticator;
  verifier: TokenVerifier;
  signer?: GatewaySigner | undefined;
  devIssuer?: { url: string; key: DevIssuerKey; keyFile: string } | undefined;
  /** The key of the gateway's own authorization server (oauth.enabled). */
  oauthKey?: OAuthSigningKey | undefined;
  registerRoutes(app: FastifyInstance, connections?: () => GatewayConfig["connections"]): void;
  stop(): void;
}

export function devIssuerKeyFile(config: GatewayConfig): string {
  return resolve(config.auth.devIssuer.keyFile ?? join(dirname(config.database.embeddedDataDir), "dev-issuer.jwk"));
}

export async function createIdentityLayer(config: GatewayConfig, recorder: Recorder, log: Logger): Promise<IdentityLayer> {
  const issuers: IssuerSettings[] = config.auth.issuers.map((i) => ({ ...i }));
  let devIssuer: IdentityLayer["devIssuer"];
  if (config.auth.devIssuer.enabled) {
    const keyFile = devIssuerKeyFile(config);
    const key = await loadDevIssuerKey(keyFile);
    const url = devIssuerUrl(config.publicUrl);
    devIssuer = { url, key, keyFile };
    issuers.push({
      issuer: url,
      label: "dev",
      algorithms: ["ES256"],
      groupsClaim: "groups",
      emailClaim: "email",
      nameClaim: "name",
      localJwks: { keys: [key.publicJwk] },
    });
    log.warn(
      { issuer: url, keyFile },
      "THE BUILT-IN DEV ISSUER IS ON: anyone who can read its key file can mint tokens. Use it for local trials only; configure auth.issuers for real use.",
    );
  }
  // The gateway as authorization server: its own tokens are trusted like an issuer's.
  const oauthKey = config.oauth.enabled ? await loadSigningKey(config.oauth.signingKey) : undefined;
  if (oauthKey) {
    issuers.push({
      issuer: config.publicUrl,
      label: "countersign",
      algorithms: [OAUTH_ALG],
      groupsClaim: "groups",
      emailClaim: "email",
      nameClaim: "name",
      localJwks: { keys: [oauthKey.publicJwk] },
      originalIssuerClaim: IDP_ISSUER_CLAIM,
    });
  }
  const anonymous = config.connections.filter((c) => c.access.anonymous).map((c) => c.name);
  if (anonymous.length > 0) log.warn({ connections: anonymous }, "anonymous access is allowed on these connections: callers without a token are admitted");

  const verifier = new TokenVerifier(issuers, {
    clockSkewSeconds: config.auth.clockSkewSeconds,
    jwksCooldownSeconds: config.auth.jwksCooldownSeconds,
  });
  const failures = new ThrottledEvents(recorder, "auth_failed");
  const denials = new ThrottledEvents(recorder, "access_denied");
  const authenticator = new Authenticator(
    verifier,
    { publicUrl: config.publicUrl, failedAttemptsPerMinute: config.auth.failedAttemptsPerMinute },
    failures,
    denials,
  );
  // keys.ring.upstreamJwt (or keys.upstreamJwt as one key); a reload replaces its keys in place.
  const signerKeys = upstreamJwtKeys(config);
  const signer = signerKeys ? new GatewaySigner(signerKeys, config.publicUrl) : undefined;

  // `connections`: the ones in force now (a reload may add some).
  const registerRoutes = (app: FastifyInstance, connections: () => GatewayConfig["connections"] = () => config.connections) => {
    // RFC 9728 protected resource metadata, one resource per connection; its Streamable HTTP and
    // SSE endpoints share the resource id.
    for (const front of ["mcp", "sse"]) {
      app.get<{ Params: { connection: string } }>(`/.well-known/oauth-protected-resource/${front}/:connection`, async (req, reply) => {
        const c = connections().find((x) => x.name === req.params.connection);
        if (!c) return sendError(reply, new CountersignError("CS_ERR_UNKNOWN_CONNECTION", `'${req.params.connection.slice(0, 200)}'`));
        return {
          resource: resourceUrl(config.publicUrl, c.name),
          // The gateway's own authorization server first: MCP clients take the first one.
          authorization_servers: oauthKey ? [config.publicUrl] : verifier.issuers.map((i) => i.issuer),
          bearer_methods_supported: ["header"],
          resource_name: c.description ?? c.name,
        };
      });
    }
    app.get("/.well-known/jwks.json", async () => signer?.jwks ?? { keys: [] });
    if (devIssuer) {
      const d = devIssuer;
      app.get(`${DEV_ISSUER_PATH}/.well-known/openid-configuration`, async () => ({
        issuer: d.url,
        jwks_uri: `${d.url}/jwks`,
        id_token_signing_alg_values_supported: ["ES256"],
        response_types_supported: [],
        subject_types_supported: ["public"],
        note: "Countersign's built-in dev issuer: tokens come from `countersign token`, not from an authorization flow.",
      }));
      app.get(`${DEV_ISSUER_PATH}/jwks`, async () => ({ keys: [d.key.publicJwk] }));
    }
  };

  return {
    authenticator,
    verifier,
    signer,
    devIssuer,
    oauthKey,
    registerRoutes,
    stop: () => {
      failures.stop();
      denials.stop();
    },
  };
}
