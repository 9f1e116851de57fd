// The cluster settings: off by default; with the relay port on, a shared secret is required (from
// the file's reference or COUNTERSIGN_CLUSTER_SECRET); the advertised URL defaults to the pod's IP.
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../gateway/config/load.js";

const BASE = `
version: 1
server: { host: 0.0.0.0, port: 8080 }
metrics: { enabled: false }
connections:
  - name: everything
    access: { anonymous: true }
    upstream: { type: stdio, command: node }
`;
const SECRET = "s".repeat(40);

function problems(text: string, env: Record<string, string>): string[] {
  try {
    parseConfigText(text, "test.yaml", env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("cluster configuration", () => {
  it("is off by default: no relay listener, no secret needed", () => {
    const cfg = parseConfigText(BASE, "test.yaml", {});
    expect(cfg.cluster.internalPort).toBe(0);
    expect(cfg.cluster.secret).toBeUndefined();
  });

  it("takes the port from COUNTERSIGN_INTERNAL_PORT, the secret from COUNTERSIGN_CLUSTER_SECRET and the address from POD_IP", () => {
    const cfg = parseConfigText(BASE, "test.yaml", { COUNTERSIGN_INTERNAL_PORT: "8081", COUNTERSIGN_CLUSTER_SECRET: SECRET, POD_IP: "10.1.2.3" });
    expect(cfg.cluster).toMatchObject({ internalPort: 8081, internalHost: "0.0.0.0", advertiseUrl: "http://10.1.2.3:8081", deadAfterSeconds: 20 });
    expect(cfg.cluster.secret?.reveal()).toBe(SECRET);
    // The secret never prints itself.
    expect(JSON.stringify(cfg.cluster)).not.toContain(SECRET);
  });

  it("uses the file's settings and secret reference; the environment wins for the port and the URL", () => {
    const text = `${BASE}cluster:\n  internalPort: 9000\n  internalHost: 127.0.0.1\n  secret: { env: MY_RELAY_SECRET }\n`;
    const fromFile = parseConfigText(text, "test.yaml", { MY_RELAY_SECRET: SECRET });
    expect(fromFile.cluster).toMatchObject({ internalPort: 9000, internalHost: "127.0.0.1", advertiseUrl: "http://127.0.0.1:9000" });
    const overridden = parseConfigText(text, "test.yaml", { MY_RELAY_SECRET: SECRET, COUNTERSIGN_INTERNAL_PORT: "9100", COUNTERSIGN_ADVERTISE_URL: "http://gw-0.gw:9100/" });
    expect(overridden.cluster).toMatchObject({ internalPort: 9100, advertiseUrl: "http://gw-0.gw:9100" });
  });

  it("refuses a relay port without a shared secret, or with a short one, naming the key", () => {
    expect(problems(BASE, { COUNTERSIGN_INTERNAL_PORT: "8081" })).toEqual([expect.stringMatching(/^cluster\.secret: .*COUNTERSIGN_CLUSTER_SECRET/)]);
    expect(problems(BASE, { COUNTERSIGN_INTERNAL_PORT: "8081", COUNTERSIGN_CLUSTER_SECRET: "short" })).toEqual([expect.stringMatching(/^cluster\.secret: too short/)]);
    expect(problems(`${BASE}cluster: { internalPort: 8081, secret: { env: UNSET_RELAY_SECRET } }\n`, {})).toEqual([expect.stringMatching(/^cluster\.secret: environment variable UNSET_RELAY_SECRET is not set/)]);
    expect(problems(BASE, { COUNTERSIGN_INTERNAL_PORT: "eighty" })[0]).toMatch(/^cluster\.internalPort: .*COUNTERSIGN_INTERNAL_PORT/);
  });
});
