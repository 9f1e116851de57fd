// The authorization server's small rules, each on its own: which addresses count as public (no
// SSRF through client metadata documents), which redirect URIs may be registered and match, and
// when the configuration turns the authorization server on or refuses it.
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../../gateway/config/load.js";
import { hostAllowed } from "../../gateway/oauth/client-metadata-document.js";
import { isPublicAddress } from "../../gateway/oauth/public-address.js";
import { redirectUriMatches, redirectUriProblem } from "../../gateway/oauth/redirect-uri.js";

describe("public addresses", () => {
  it("refuses loopback, private, link-local, shared, reserved and multicast ranges, also inside IPv6", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
      "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "ff02::1", "not an address"]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) expect(isPublicAddress(a), a).toBe(true);
  });

  it("matches allowed hosts exactly or by a *. suffix, never by a look-alike", () => {
    expect(hostAllowed("vscode.dev", ["vscode.dev"])).toBe(true);
    expect(hostAllowed("a.example.com", ["*.example.com"])).toBe(true);
    expect(hostAllowed("example.com", ["*.example.com"])).toBe(false);
    expect(hostAllowed("evilexample.com", ["*.example.com"])).toBe(false);
    expect(hostAllowed("vscode.dev.evil.example", ["vscode.dev"])).toBe(false);
  });
});

describe("redirect URIs", () => {
  it("registers https, loopback http and private-use schemes only", () => {
    for (const ok of ["https://app.example/cb", "http://127.0.0.1/cb", "http://[::1]:8000/cb", "http://localhost:3000/cb", "com.example.app:/cb"]) expect(redirectUriProblem(ok), ok).toBeUndefined();
    for (const bad of ["http://example.com/cb", "javascript:alert(1)", "data:text/html,x", "https://a.example/cb#x", "https://u:p@a.example/cb", "myapp:/cb", "", 42]) expect(redirectUriProblem(bad), String(bad)).toBeDefined();
  });

  it("matches exactly, letting only a loopback http port vary", () => {
    const registered = ["http://127.0.0.1:3000/callback", "https://app.example/cb"];
    expect(redirectUriMatches(registered, "http://127.0.0.1:51234/callback")).toBe(true);
    expect(redirectUriMatches(registered, "https://app.example/cb")).toBe(true);
    expect(redirectUriMatches(registered, "https://app.example:8443/cb")).toBe(false);
    expect(redirectUriMatches(registered, "https://app.example/cb/")).toBe(false);
    expect(redirectUriMatches(registered, "http://127.0.0.1:51234/callback?x=1")).toBe(false);
    expect(redirectUriMatches(registered, "http://localhost:3000/callback")).toBe(false);
    expect(redirectUriMatches(registered, "https://127.0.0.1:3000/callback")).toBe(false);
  });
});

describe("configuration", () => {
  const base = { version: 1, database: { url: { env: "DB" } }, connections: [{ name: "everything", upstream: { type: "stdio", command: "node" } }] };
  const parse = (extra: Record<string, unknown>) => parseConfigText(stringify({ ...base, ...extra }), "test.yaml", { DB: "postgresql://x@localhost/x", S: "s".repeat(40) });

  it("is on by default in the quick start only (the dev issuer on a loopback bind)", () => {
    expect(parse({ auth: { devIssuer: { enabled: true } } }).oauth.enabled).toBe(true);
    expect(parse({ auth: { devIssuer: { enabled: true } }, server: { host: "0.0.0.0" }, metrics: { enabled: false } }).oauth.enabled).toBe(false);
    expect(parse({ auth: { issuers: [{ issuer: "https://idp.example.com" }] } }).oauth.enabled).toBe(false);
  });

  it("refuses to turn it on with no way for people to log in, or for several replicas without a shared key", () => {
    expect(() => parse({ auth: { issuers: [{ issuer: "https://idp.example.com" }] }, oauth: { enabled: true } })).toThrow(/oauth\.enabled: nobody could log in/);
    expect(() => parse({ auth: { devIssuer: { enabled: true } }, console: { enabled: false }, oauth: { enabled: true } })).toThrow(ConfigError);
    expect(() => parse({ auth: { devIssuer: { enabled: true } }, cluster: { internalPort: 8081, secret: { env: "S" } }, oauth: { enabled: true } })).toThrow(/oauth\.signingKey/);
    expect(parse({ auth: { devIssuer: { enabled: true } }, cluster: { internalPort: 8081, secret: { env: "S" } } }).oauth.enabled).toBe(false);
  });
});
