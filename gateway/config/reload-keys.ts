// How a change to each key of the configuration file takes effect: live (a reload puts it in
// force before it answers) or at start only (a reload that changes it is refused whole, "restart
// to apply"). The longest listed prefix of a key decides; a key listed nowhere is read only at
// start, so a new key is never reported as applied before someone has made it live.
// test/config/reload-every-key.test.ts changes every key of the schema and checks this table.

export type ReloadMode = "live" | "restart";

export interface ReloadClass {
  /** A key path as in the schema: `connections[].policy`, `approvals.groups`. */
  key: string;
  mode: ReloadMode;
  /** Who reads it, and when: why it is live or not. */
  why: string;
}

export const RELOAD_CLASSES: readonly ReloadClass[] = [
  { key: "version", mode: "restart", why: "the file format" },
  { key: "publicUrl", mode: "restart", why: "token audiences and links are fixed at start" },
  { key: "server", mode: "restart", why: "the listening socket and proxy trust are set up at start" },
  { key: "database", mode: "restart", why: "the database and its pools are opened at start" },
  { key: "limits", mode: "restart", why: "the HTTP server's body limit, timeouts and authentication slots are set when it is built" },
  // Read by the session registry when it opens a session: sessions opened after the reload use them.
  { key: "limits.upstreamMessageBytes", mode: "live", why: "read when a session opens its upstream" },
  { key: "limits.upstreamTimeoutMs", mode: "live", why: "read when a session opens" },
  { key: "limits.notificationsPerSecond", mode: "live", why: "read when a session opens" },
  { key: "limits.clientBufferBytes", mode: "live", why: "read when a client stream opens" },
  { key: "sessions.idleTimeoutSeconds", mode: "live", why: "each connection's idle timeout, read by the idle sweep" },
  { key: "sessions.evictIdleAfterSeconds", mode: "live", why: "read when a session is opened at a quota or a cap" },
  { key: "admin.groups", mode: "live", why: "read on every admin request" },
  { key: "metrics", mode: "restart", why: "the /metrics route and its token are set up at start" },
  { key: "log.level", mode: "live", why: "set on the logger and every child logger alive" },
  { key: "log.format", mode: "restart", why: "the log's output stream is chosen at start" },
  { key: "log.requests", mode: "live", why: "read when a session opens: sessions opened after the reload follow it" },
  { key: "auth", mode: "restart", why: "the token verifier and its issuers are built at start" },
  { key: "keys", mode: "restart", why: "keys.upstreamJwt and keys.maskingHmac are read at start (rotate them through keys.ring)" },
  { key: "keys.ring", mode: "live", why: "each purpose's ring is replaced in place: the new active key signs, verify-only keys still check, retired ones are refused" },
  { key: "cluster", mode: "restart", why: "the relay listener and the liveness timer start with the process" },
  { key: "approvals", mode: "restart", why: "the approvals service, its timers and the Slack bot start with the process" },
  { key: "approvals.groups", mode: "live", why: "one record shared by the directories and the notifier, replaced in place" },
  { key: "approvals.holdFor", mode: "live", why: "read when a session opens: sessions opened after the reload hold for the new time" },
  { key: "approvals.reminderEvery", mode: "live", why: "read by each sweep" },
  { key: "approvals.escalation", mode: "live", why: "read by each sweep" },
  { key: "connections", mode: "live", why: "open sessions follow access, policy, masking, pinning and idle timeout; new sessions use the new upstream and limits; sessions of a removed connection are closed" },
  { key: "audit", mode: "restart", why: "the sealer, checkpoint signer and retention start with the process" },
  { key: "digest", mode: "restart", why: "the digest scheduler starts with the process" },
  { key: "console", mode: "restart", why: "the console's routes, logins and cookie key are set up at start" },
  { key: "oauth", mode: "restart", why: "the authorization server's routes, signing key and sweeps are set up at start" },
];

/** `connections[3].policy.rules[0]` → `connections[].policy.rules[]`. */
export function schemaPath(path: string): string {
  return path.replace(/\[\d+\]/g, "[]");
}

/** The class of a changed key path (concrete, as the diff names it), by its longest listed prefix. */
export function reloadClassOf(path: string): ReloadClass {
  const p = schemaPath(path);
  let best: ReloadClass | undefined;
  for (const c of RELOAD_CLASSES) {
    const covers = p === c.key || p.startsWith(`${c.key}.`) || p.startsWith(`${c.key}[`);
    if (covers && (!best || c.key.length > best.key.length)) best = c;
  }
  return best ?? { key: p.split(/[.[]/)[0] || p, mode: "restart", why: "not known to be live" };
}

/** Blocks whose mere presence is read at start (adding or removing one needs a restart, whatever is in it). */
const PRESENCE_AT_START = new Set(["approvals"]);

const isBlock = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Leaf paths of an object (arrays are leaves, as in the schema's keys). */
function leafPaths(value: Record<string, unknown>, path: string): string[] {
  return Object.entries(value).flatMap(([k, v]) => (isBlock(v) ? leafPaths(v, `${path}.${k}`) : [`${path}.${k}`]));
}

/**
 * The classes a change falls in. A block added or removed whole (`log: { level: debug }` where the
 * file had no `log`) is judged by the keys in it, since an absent block means its defaults; except a
 * block whose presence itself is read at start.
 */
export function reloadClassesOfChange(change: { path: string; before: unknown; after: unknown }): ReloadClass[] {
  const added = change.before === null || change.before === undefined ? change.after : change.after === null || change.after === undefined ? change.before : undefined;
  if (isBlock(added) && !PRESENCE_AT_START.has(schemaPath(change.path)) && Object.keys(added).length > 0) {
    return leafPaths(added, change.path).map(reloadClassOf);
  }
  return [reloadClassOf(change.path)];
}

