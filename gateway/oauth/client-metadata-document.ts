// Client ID metadata documents: a client whose id is an https URL publishes its metadata there.
// Fetching a URL a stranger names is an SSRF risk, so: https only, only from configured hosts,
// to an address checked to be public (and the connection pinned to that checked address, so a
// second DNS answer cannot swap it), no redirects, a size limit and a time limit.
import { lookup } from "node:dns/promises";
import { request } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { LRUCache } from "lru-cache";
import type { OAuthConfig } from "./config.js";
import { isPublicAddress } from "./public-address.js";
import { redirectUriProblem } from "./redirect-uri.js";
import { OAuthRefusal } from "./refusal.js";
import type { RegisteredClient } from "../store/oauth.js";

type Settings = OAuthConfig["clientMetadataDocuments"];

const refuse = (why: string) => new OAuthRefusal("invalid_client", `client metadata document refused: ${why}`, "client_metadata_refused");

/** Whether a client id is a URL (a metadata document) rather than a registered id. */
export function isClientIdUrl(clientId: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(clientId);
}

export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const h = host.toLowerCase();
  return allowed.some((a) => a === h || (a.startsWith("*.") && h.endsWith(a.slice(1)) && h.length > a.length - 1));
}

export class ClientMetadataDocuments {
  // Bound: 500 documents, each kept 5 minutes; only documents that passed every check are cached.
  readonly #cache = new LRUCache<string, RegisteredClient>({ max: 500, ttl: 5 * 60_000 });
  constructor(private readonly settings: Settings) {}

  async client(clientId: string): Promise<RegisteredClient> {
    const hit = this.#cache.get(clientId);
    if (hit) return hit;
    const doc = await fetchDocument(clientId, this.settings);
    const client = clientFromDocument(clientId, doc);
    this.#cache.set(clientId, client);
    return client;
  }
}

function clientFromDocument(clientId: string, text: string): RegisteredClient {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw refuse("not JSON");
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw refuse("not a JSON object");
  const d = doc as Record<string, unknown>;
  if (d.client_id !== clientId) throw refuse("its client_id is not the URL it was fetched from");
  if (!Array.isArray(d.redirect_uris) || d.redirect_uris.length === 0 || d.redirect_uris.length > 10) throw refuse("redirect_uris must list 1 to 10 URIs");
  for (const uri of d.redirect_uris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw refuse(problem);
  }
  if (d.token_endpoint_auth_method !== undefined && d.token_endpoint_auth_method !== "none") throw refuse("only public clients (token_endpoint_auth_method none) may use a metadata document");
  const name = typeof d.client_name === "string" ? d.client_name.slice(0, 100) : undefined;
  return { clientId, clientName: name, redirectUris: d.redirect_uris as string[] };
}

export async function fetchDocument(url: string, s: Settings): Promise<string> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw refuse("the client id is not a URL");
  }
  if (url.length > 2000) throw refuse("the URL is too long");
  if (u.protocol !== "https:") throw refuse("only https URLs are fetched");
  if (u.username || u.password || u.hash) throw refuse("the URL must not carry credentials or a fragment");
  if (u.pathname === "/") throw refuse("the URL must have a path");
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (!hostAllowed(host, s.allowedHosts)) throw refuse(`host ${host} is not in oauth.clientMetadataDocuments.allowedHosts`);

  const deadline = AbortSignal.timeout(s.timeoutMs);
  let address: { address: string; family: number };
  if (isIP(host)) address = { address: host, family: isIP(host) };
  else {
    let all: Array<{ address: string; family: number }>;
    try {
      all = await Promise.race([
        lookup(host, { all: true, verbatim: true }),
        new Promise<never>((_, reject) => deadline.addEventListener("abort", () => reject(new Error("timeout")), { once: true })),
      ]);
    } catch (err) {
      throw refuse(`cannot resolve ${host} (${(err as Error).message})`);
    }
    if (all.length === 0) throw refuse(`cannot resolve ${host}`);
    // Every answer must be public: the fetch uses the first, but a mixed answer is a warning sign.
    if (!s.allowPrivateAddresses && all.some((a) => !isPublicAddress(a.address))) throw refuse(`${host} resolves to a private or reserved address`);
    address = all[0]!;
  }
  if (!s.allowPrivateAddresses && !isPublicAddress(address.address)) throw refuse(`${host} is a private or reserved address`);

  // The connection goes to the address checked above, whatever a later DNS answer says.
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [address]);
    else callback(null, address.address, address.family);
  };

  return new Promise<string>((resolve, reject) => {
    // A slow server (headers or body) is cut at the deadline, whatever stage the response is in.
    deadline.addEventListener("abort", () => {
      req.destroy();
      reject(refuse(`not received within ${s.timeoutMs} ms`));
    }, { once: true });
    const req = request(u, { method: "GET", headers: { accept: "application/json" }, lookup: pinned, signal: deadline, ...(s.ca ? { ca: s.ca.reveal() } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.destroy();
        return reject(refuse(`HTTP ${status}: redirects are not followed`));
      }
      if (status !== 200) {
        res.destroy();
        return reject(refuse(`HTTP ${status}`));
      }
      const declared = Number(res.headers["content-length"] ?? 0);
      if (declared > s.maxBytes) {
        res.destroy();
        return reject(refuse(`larger than ${s.maxBytes} bytes`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > s.maxBytes) {
          res.destroy();
          reject(refuse(`larger than ${s.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", (err) => reject(deadline.aborted ? refuse(`not received within ${s.timeoutMs} ms`) : refuse(err.message)));
    });
    req.on("error", (err) => reject(deadline.aborted ? refuse(`not received within ${s.timeoutMs} ms`) : refuse(`cannot fetch (${err.message})`)));
    req.end();
  });
}
