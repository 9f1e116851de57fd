// RFC 8414 authorization server metadata for the gateway's own authorization server. The issuer
// is the public URL; every endpoint lives under it.
import type { OAuthConfig } from "./config.js";

export const OAUTH_PATHS = { authorize: "/oauth/authorize", token: "/oauth/token", register: "/oauth/register", jwks: "/oauth/jwks" } as const;

export function authorizationServerMetadata(publicUrl: string, config: OAuthConfig): Record<string, unknown> {
  return {
    issuer: publicUrl,
    authorization_endpoint: `${publicUrl}${OAUTH_PATHS.authorize}`,
    token_endpoint: `${publicUrl}${OAUTH_PATHS.token}`,
    ...(config.registration.enabled ? { registration_endpoint: `${publicUrl}${OAUTH_PATHS.register}` } : {}),
    jwks_uri: `${publicUrl}${OAUTH_PATHS.jwks}`,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["none"],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: config.clientMetadataDocuments.allowedHosts.length > 0,
    service_documentation: "https://github.com/countersign/countersign#mcp-clients-log-in-through-the-browser",
  };
}
