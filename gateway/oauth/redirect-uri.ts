// Redirect URIs: which a client may register, and whether a request's URI is one registered.
// Exact string match, except for loopback http URIs of native apps, whose port may vary
// (RFC 8252 §7.3: the app listens on whatever port is free when it starts).
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);
const MAX_LENGTH = 2000;

/** Why a URI cannot be registered, or undefined when it can. */
export function redirectUriProblem(uri: unknown): string | undefined {
  if (typeof uri !== "string" || uri.length === 0 || uri.length > MAX_LENGTH) return "each redirect URI must be a string of at most 2000 characters";
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return `'${uri.slice(0, 100)}' is not an absolute URI`;
  }
  if (u.hash || uri.includes("#")) return "a redirect URI must not have a fragment";
  if (u.username || u.password) return "a redirect URI must not carry credentials";
  if (u.protocol === "https:") return undefined;
  if (u.protocol === "http:") return LOOPBACK_HOSTS.has(u.hostname) ? undefined : "plain http is allowed only for loopback redirect URIs (127.0.0.1, [::1], localhost)";
  // Private-use schemes of native apps name a domain the app's author controls (RFC 8252 §7.1).
  if (/^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(u.protocol)) return undefined;
  return `the scheme ${u.protocol} is not allowed: use https, http on a loopback address, or a private-use scheme such as com.example.app:`;
}

/** Whether `requested` is one of `registered` (loopback http: any port). */
export function redirectUriMatches(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  let r: URL;
  try {
    r = new URL(requested);
  } catch {
    return false;
  }
  if (r.protocol !== "http:" || !LOOPBACK_HOSTS.has(r.hostname)) return false;
  return registered.some((uri) => {
    try {
      const g = new URL(uri);
      return g.protocol === "http:" && g.hostname === r.hostname && g.pathname === r.pathname && g.search === r.search && !r.hash && !r.username && !r.password;
    } catch {
      return false;
    }
  });
}
