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

/** A browser's cookie jar, for driving the console's forms with fetch. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair!.indexOf("=");
      const value = pair!.slice(eq + 1);
      if (value === "" || /max-age=0/i.test(c)) this.#cookies.delete(pair!.slice(0, eq));
      else this.#cookies.set(pair!.slice(0, eq), value);
    }
  }
  get header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";

/**
 * A person in a browser, without the browser: logs in with the quick start's one-click login as
 * `subject`, then answers the consent page of `authorizeUrl`. Returns the final redirect (to the
 * client) or the response that stopped the flow.
 */
export async function consentAs(base: string, subject: string, authorizeUrl: string, decision: "allow" | "deny" = "allow", headers: Record<string, string> = {}): Promise<{ status: number; location?: string | undefined; body: string }> {
  const jar = new CookieJar();
  const go = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(url, base), { ...init, redirect: "manual", headers: { ...headers, ...(init.headers as Record<string, string>), cookie: jar.header } });
    jar.take(res);
    return { status: res.status, location: res.headers.get("location") ?? undefined, body: await res.text() };
  };
  let consentPath = authorizeUrl;
  if (!authorizeUrl.startsWith("/console/oauth/consent")) {
    const authorize = await go(authorizeUrl);
    if (authorize.status !== 302 || !authorize.location?.startsWith("/console/oauth/consent")) return authorize;
    consentPath = authorize.location;
  }
  const login = await go(`/console/login?next=${encodeURIComponent(consentPath)}`);
  const form = (fields: Record<string, string>) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() });
  const loggedIn = await go("/console/login/dev", form({ _csrf: csrfOf(login.body), subject, next: consentPath }));
  if (loggedIn.status !== 302) return loggedIn;
  const consent = await go(consentPath);
  if (consent.status !== 200) return consent;
  const request = /name="request" value="([^"]+)"/.exec(consent.body)?.[1] ?? "";
  return go("/console/oauth/consent", form({ _csrf: csrfOf(consent.body), request, decision }));
}
