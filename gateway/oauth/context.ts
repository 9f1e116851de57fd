// What the authorization server's routes share: the store, the signing key, the client lookup
// (registered, or a client ID metadata document), and the one way a refusal is recorded.
import type { FastifyReply, FastifyRequest } from "fastify";
import { ThrottledEvents } from "../audit/rejections.js";
import type { Recorder } from "../audit/recorder.js";
import type { EventReason } from "../audit/events.js";
import { resourceUrl } from "../auth/authenticator.js";
import type { ConnectionConfig, GatewayConfig } from "../config/load.js";
import type { Db } from "../store/client.js";
import { buildKeyring } from "../keys/keyring.js";
import type { KeyRing } from "../keys/ring.js";
import type { Logger } from "../log.js";
import { ClientMetadataDocuments, isClientIdUrl } from "./client-metadata-document.js";
import { RequestSealer } from "./authorization-request.js";
import { OAuthRefusal } from "./refusal.js";
import type { OAuthSigningKey } from "./signing-key.js";
import { OAuthStore, type RegisteredClient } from "../store/oauth.js";

export interface AuthorizationServerDeps {
  config: GatewayConfig;
  db: Db;
  recorder: Recorder;
  log: Logger;
  key: OAuthSigningKey;
  /** The configuration in force (connections and their access change on reload). */
  current?: (() => GatewayConfig) | undefined;
  /** The keyring's console keys: they sign the authorization request carried to the consent page. */
  consoleKeys?: KeyRing | undefined;
}

export interface OAuthContext {
  deps: AuthorizationServerDeps;
  issuer: string;
  store: OAuthStore;
  sealer: RequestSealer;
  /** The connection (as configured now) whose resource URL this is, if any. */
  connectionOf(resource: unknown): ConnectionConfig | undefined;
  client(clientId: unknown): Promise<RegisteredClient>;
  /** Records a refusal (throttled: a flood costs no write each) and returns it. */
  refused(req: FastifyRequest, refusal: OAuthRefusal, detail?: Record<string, unknown>, where?: { subject?: string | null; connection?: string | null }): OAuthRefusal;
  /** Records a grant; throws when the audit store cannot (nothing is granted unrecorded). */
  granted(req: FastifyRequest, reason: EventReason<"oauth">, detail: Record<string, unknown>, where?: { subject?: string | null; connection?: string | null }): Promise<void>;
  sendError(reply: FastifyReply, refusal: OAuthRefusal): FastifyReply;
  stop(): void;
}

export function createOAuthContext(deps: AuthorizationServerDeps): OAuthContext {
  const { config } = deps;
  const store = new OAuthStore(deps.db);
  const documents = new ClientMetadataDocuments(config.oauth.clientMetadataDocuments);
  const events = new ThrottledEvents(deps.recorder, "oauth");
  // Requests travel signed with a key derived from the console's keys, so every replica accepts them.
  const sealKeys = deps.consoleKeys ?? buildKeyring(config).console;

  return {
    deps,
    issuer: config.publicUrl,
    store,
    sealer: new RequestSealer(sealKeys),
    connectionOf: (resource) => (typeof resource === "string" ? (deps.current?.() ?? config).connections.find((c) => resourceUrl(config.publicUrl, c.name) === resource) : undefined),
    async client(clientId) {
      if (typeof clientId !== "string" || clientId.length === 0 || clientId.length > 2000) throw new OAuthRefusal("invalid_client", "client_id is missing or too long", "authorize_refused");
      if (isClientIdUrl(clientId)) {
        if (config.oauth.clientMetadataDocuments.allowedHosts.length === 0) throw new OAuthRefusal("invalid_client", "client ID metadata documents are not accepted here (oauth.clientMetadataDocuments.allowedHosts is empty)", "client_metadata_refused");
        return documents.client(clientId);
      }
      const c = await store.useClient(clientId);
      if (!c) throw new OAuthRefusal("invalid_client", "unknown client_id: register first", "authorize_refused");
      return c;
    },
    refused(req, refusal, detail = {}, where = {}) {
      if (refusal.recorded) return refusal;
      refusal.recorded = true;
      events.record(refusal.reason, { requestId: req.id, subject: where.subject ?? null, connection: where.connection ?? null }, {
        remoteAddress: req.ip,
        error: refusal.error,
        why: refusal.description,
        ...detail,
      });
      return refusal;
    },
    async granted(req, reason, detail, where = {}) {
      await deps.recorder.event({ type: "oauth", reason, subject: where.subject ?? null, connection: where.connection ?? null, requestId: req.id, detail: { remoteAddress: req.ip, ...detail } });
    },
    sendError(reply, refusal) {
      return reply.code(refusal.status).headers({ "cache-control": "no-store", ...refusal.headers }).type("application/json").send(refusal.body);
    },
    stop: () => events.stop(),
  };
}
