// Shared by the authorization server's tests: oidc-provider as the company IdP (with its own
// login pages), a client-side OAuth provider for the MCP SDK that keeps everything in memory,
// and a loopback callback server that catches the browser's redirect.
import { createServer, type Server } from "node:http";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import Provider from "oidc-provider";

export const CONSOLE_CLIENT = { id: "countersign-console", secret: `console-secret-${Math.random().toString(36).slice(2)}` };

/** oidc-provider on loopback: alice is in `dev`, dana in `auditors`. */
export async function startIdentityProvider(gatewayUrl: string): Promise<{ server: Server; issuer: string; close(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const issuer = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CONSOLE_CLIENT.id,
      client_secret: CONSOLE_CLIENT.secret,
      redirect_uris: [`${gatewayUrl}/console/login/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    }],
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@example.com`, name: id, groups: id === "alice" ? ["dev"] : id === "dana" ? ["auditors"] : [] }) }),
    claims: { openid: ["sub"], email: ["email"], profile: ["name"], groups: ["groups"] },
    scopes: ["openid", "email", "profile", "groups"],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
  });
  const handle = provider.callback();
  server.on("request", (req, res) => void Promise.resolve(handle(req, res)).catch((err: unknown) => res.destroy(err as Error)));
  return {
    server,
    issuer,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The MCP client's side: what a desktop app keeps between runs, here in memory. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  client?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier = "";
  authorizationUrl?: URL;
  constructor(readonly redirectUrl: string, readonly name = "Test Agent") {}

  get clientMetadata(): OAuthClientMetadata {
    return { client_name: this.name, redirect_uris: [this.redirectUrl], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/** A native app's loopback redirect listener: resolves each redirect it receives. */
export async function startCallbackServer(): Promise<{ url: string; next(): Promise<URL>; close(): Promise<void> }> {
  const waiting: Array<(u: URL) => void> = [];
  const received: URL[] = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    res.writeHead(200, { "content-type": "text/plain" }).end("You can close this window.");
    const w = waiting.shift();
    if (w) w(u);
    else received.push(u);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  return {
    url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/callback`,
    next: () => (received.length > 0 ? Promise.resolve(received.shift()!) : new Promise<URL>((r) => waiting.push(r))),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
