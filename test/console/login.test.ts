// Which logins the console offers: the quick start's one-click logins only with the dev issuer on
// a loopback bind (anyone who reaches a public bind could otherwise be anyone), and browser login
// only through issuers the gateway already trusts.
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../../gateway/config/load.js";
import { devUsersOf } from "../../gateway/console/login.js";

const base = {
  version: 1,
  database: { url: { env: "DB" } },
  auth: { devIssuer: { enabled: true } },
  approvals: { groups: { oncall: { emails: ["bob@example.com"] } } },
  connections: [{ name: "everything", upstream: { type: "stdio", command: "node" } }],
};
const parse = (extra: Record<string, unknown>) => parseConfigText(stringify({ ...base, ...extra }), "test.yaml", { DB: "postgresql://x@localhost/x" });

describe("console logins offered", () => {
  it("offers alice and each approver of the quick start on a loopback bind, nothing on a public one", () => {
    expect(devUsersOf(parse({ server: { host: "127.0.0.1" } }), true).map((u) => [u.subject, u.groups])).toEqual([["alice", ["dev"]], ["bob", ["oncall"]]]);
    expect(devUsersOf(parse({ server: { host: "0.0.0.0" }, metrics: { enabled: false } }), true)).toEqual([]);
    expect(devUsersOf(parse({ server: { host: "127.0.0.1" } }), false)).toEqual([]);
  });

  it("refuses a browser login through an issuer that is not in auth.issuers", () => {
    const refused = () => parse({ console: { login: [{ issuer: "https://idp.example.com", clientId: "c" }] } });
    expect(refused).toThrow(ConfigError);
    expect(refused).toThrow(/console\.login\[0\]\.issuer: 'https:\/\/idp\.example\.com' is not one of auth\.issuers/);
    const ok = parse({ auth: { issuers: [{ issuer: "https://idp.example.com", label: "okta", groupsClaim: "roles" }] }, console: { login: [{ issuer: "https://idp.example.com", clientId: "c" }] } });
    expect(ok.console.login[0]).toMatchObject({ label: "okta", clientId: "c", groupsClaim: "roles", scopes: ["openid", "email", "profile"] });
  });
});
