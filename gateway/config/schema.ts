// The configuration file's schema. It is the single source of truth: the loader validates with
// it and `npm run schema` publishes it as JSON Schema (gateway/config/countersign.schema.json)
// for editors and for the Helm chart.
//
// Each slice resolves to the plain options its module reads (durations in milliseconds, defaults
// that depend on other keys filled in), so the types the gateway uses are this schema's output
// (z.output), never a second, hand-written declaration. Secret references come out as
// SecretReference: the loader resolves them (load.ts), and nothing here builds runtime objects.
import { resolve } from "node:path";
import { z } from "zod";
import { Cron } from "croner";
import { parseDuration, policySchema } from "../policy/schema.js";

export const CONFIG_VERSION = 1;

/** A secret reference as written ({ env: NAME } or { file: /path }), marked so the loader finds every one. */
export class SecretReference {
  constructor(readonly ref: { env: string } | { file: string }) {}
  /** Where the value comes from, for messages: `env NAME` or `file /path`. */
  get origin(): string {
    return "env" in this.ref ? `env ${this.ref.env}` : `file ${this.ref.file}`;
  }
}

const secretRef = z
  .union([
    z.strictObject({ env: z.string().min(1).describe("Name of an environment variable holding the value") }),
    z.strictObject({ file: z.string().min(1).describe("Path of a file holding the value (trailing newline removed)") }),
  ])
  .describe("A reference to a secret: { env: NAME } or { file: /path }. Secrets are never written literally in the file.")
  .transform((ref) => new SecretReference(ref));

const valueOrSecret = z.union([z.string(), secretRef]);

/** One purpose's keys: exactly one active (signs, seals), verify-only ones still check, retired ones are refused. */
const ringKeys = z
  .array(
    z.strictObject({
      id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '-' or '_' (at most 64): it travels with what the key signs").describe("The key's id, carried by what it signs or seals"),
      secret: secretRef.describe("At least 32 random characters, the same on every replica"),
      state: z.enum(["active", "verify-only", "retired"]).default("active").describe("active: signs and seals (exactly one); verify-only: still checks what it made; retired: what it made is refused (revocation)"),
    }),
  )
  .min(1)
  .max(16)
  .superRefine((keys, ctx) => {
    const active = keys.filter((k) => k.state === "active").length;
    if (active !== 1) ctx.addIssue({ code: "custom", message: `exactly one key must be active (found ${active}): the active key signs, verify-only keys still check` });
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      if (seen.has(k.id)) ctx.addIssue({ code: "custom", path: [i, "id"], message: `duplicate key id '${k.id}'` });
      seen.add(k.id);
    });
  })
  .optional();

const keyRing = z
  .strictObject({
    requestState: ringKeys.describe("Seals the requestState of held stateless (2026-07-28) calls; default: derived from approvals.argumentsKey or keys.maskingHmac"),
    console: ringKeys.describe("Signs console login cookies, CSRF tokens and login state; default: console.sessionKey"),
    relay: ringKeys.describe("Signs requests relayed between replicas; default: cluster.secret"),
    upstreamJwt: ringKeys.describe("PKCS#8 PEM private keys (Ed25519, EC or RSA) that sign identity JWTs for upstreams, the id as the JWT kid: the active key signs, verify-only keys stay in the JWKS; default: keys.upstreamJwt"),
    masking: ringKeys.describe("Keys masking tags, pseudonyms and the pseudonym map; pseudonyms issued under a verify-only key are still restored; default: keys.maskingHmac"),
  })
  .prefault({});

const connectionName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "must be lower-case letters, digits, '-' or '_' (it becomes part of a URL)");

const httpUrl = z.url({ protocol: /^https?$/, error: "not a URL (expected http:// or https://)" });

const tls = z
  .strictObject({
    ca: secretRef.optional().describe("PEM bundle of certificate authorities to trust for this upstream"),
    cert: secretRef.optional().describe("Client certificate (PEM) for mutual TLS"),
    key: secretRef.optional().describe("Client private key (PEM) for mutual TLS"),
    rejectUnauthorized: z.boolean().default(true),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: "cert and key must be given together",
  });

const stdioUpstream = z.strictObject({
  type: z.literal("stdio"),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  cwd: z.string().optional(),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not an environment variable name"), valueOrSecret)
    .default({})
    .describe("The child's environment on top of a minimal base (PATH, HOME, LANG); the gateway's own environment is never passed"),
  shared: z
    .boolean()
    .default(false)
    .describe(
      "One child process serves every session of this connection (ids remapped per session), for servers that keep no per-client state. The gateway is then the child's one client: it declares no client capabilities, and messages that belong to no session (log lines, resource updates) are not delivered",
    ),
});

const httpUpstream = <T extends "streamable_http" | "sse">(type: T) =>
  z.strictObject({
    type: z.literal(type),
    url: httpUrl,
    headers: z.record(z.string().min(1), valueOrSecret).default({}).describe("Headers sent to the upstream (credentials go here, as secret references)"),
    tls: tls.optional(),
  });

const upstream = z.discriminatedUnion("type", [stdioUpstream, httpUpstream("streamable_http"), httpUpstream("sse")], {
  error: (issue) =>
    issue.code === "invalid_union" ? "upstream.type must be one of: stdio, streamable_http, sse" : undefined,
});

/** Asymmetric algorithms only: never `none`, never HMAC (a public key must not become a shared secret). */
export const JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

const claimPath = z.string().regex(/^[A-Za-z0-9_:\/.-]+$/, "a claim name or dotted path such as realm_access.roles");

const issuer = z.strictObject({
  issuer: httpUrl.describe("The issuer exactly as in the tokens' `iss` claim"),
  label: z.string().optional().describe("A short name for logs and records, e.g. okta or ci"),
  discoveryUrl: httpUrl.optional().describe("Default: <issuer>/.well-known/openid-configuration"),
  jwksUri: httpUrl.optional().describe("Skip discovery and use this JWKS"),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional()
    .describe("Accepted `aud` values; default: the connection's resource URL (<publicUrl>/mcp/<name>)"),
  algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(["RS256", "PS256", "ES256", "EdDSA"]),
  groupsClaim: claimPath.default("groups"),
  emailClaim: claimPath.default("email"),
  nameClaim: claimPath.default("name"),
});

const auth = z
  .strictObject({
    issuers: z.array(issuer).default([]),
    clockSkewSeconds: z.int().min(0).max(300).default(30),
    jwksCooldownSeconds: z.int().min(1).default(30).describe("An unknown key id refetches the JWKS at most once per this interval"),
    devIssuer: z
      .strictObject({
        enabled: z.boolean().default(false).describe("Countersign's own small issuer for local use; never for production"),
        keyFile: z.string().optional().describe("Where its private key is kept (default: <embeddedDataDir>/../dev-issuer.jwk)"),
      })
      .prefault({}),
    failedAttemptsPerMinute: z.int().min(1).default(30).describe("Per source address; beyond it, requests get 429 without verification"),
  })
  .prefault({});

const glob = z.string().min(1).regex(/^[A-Za-z0-9_*?.:\/-]+$/, "a tool name or glob (letters, digits, _ - . : / and * ?)");

const access = z
  .strictObject({
    anonymous: z.boolean().default(false).describe("Accept callers without a token (recorded as anonymous with their address)"),
    groups: z.array(z.string().min(1)).optional().describe("Groups that may use this connection; absent: any authenticated caller"),
    tools: z
      .array(
        z.strictObject({
          groups: z.array(z.string().min(1)).min(1),
          allow: z.array(glob).optional(),
          deny: z.array(glob).optional(),
        }),
      )
      .default([])
      .describe("Per-group tool rules: a tool denied by any rule that applies is refused; if rules that apply list `allow`, the tool must match one"),
  })
  .prefault({});

const upstreamIdentity = z.strictObject({
  headers: z
    .strictObject({
      subject: z.string().default("X-Countersign-Subject"),
      email: z.string().default("X-Countersign-Email"),
      groups: z.string().default("X-Countersign-Groups"),
      issuer: z.string().default("X-Countersign-Issuer"),
    })
    .optional()
    .describe("Send the caller's identity as plain headers (only for upstreams reachable solely through the gateway)"),
  jwt: z
    .strictObject({
      header: z.string().default("X-Countersign-Identity"),
      audience: z.string().optional().describe("Default: the upstream URL (stdio: the connection name)"),
      ttlSeconds: z.int().min(10).max(3600).default(300),
    })
    .optional()
    .describe("Send the caller's identity as a short-lived JWT signed by the gateway (JWKS at /.well-known/jwks.json); stdio children get it in COUNTERSIGN_IDENTITY"),
});

const masking = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Mask what flows back to callers and what is recorded (on by default)"),
    personalData: z
      .enum(["pseudonym", "placeholder"])
      .default("pseudonym")
      .describe("Personal data (e-mail, phone, IP, card, IBAN, SSN) as format-preserving pseudonyms per caller (default) or as [MASKED:<type>]; credentials are always [MASKED:<type>]"),
    disable: z.array(z.string().min(1)).default([]).describe("Built-in detectors to turn off, e.g. [ip_address]"),
    ip: z.strictObject({ enabled: z.boolean().default(true), v6: z.boolean().default(true) }).prefault({}),
    fields: z
      .array(z.strictObject({ path: z.string().min(2).describe("JSON path such as $..password or $.user.email"), type: z.string().optional() }))
      .default([]),
    patterns: z
      .array(
        z.strictObject({
          id: z.string().regex(/^[a-z0-9_]+$/, "lower-case letters, digits and _ (it labels [MASKED:<id>])"),
          pattern: z.string().min(1),
          flags: z.string().regex(/^[imsu]*$/, "only the flags i, m, s, u").optional(),
          group: z.int().min(0).optional(),
        }),
      )
      .default([])
      .describe("Custom patterns; rejected at load if they can backtrack catastrophically"),
    exemptions: z
      .array(
        z.strictObject({
          groups: z.array(z.string().min(1)).min(1),
          types: z.array(z.string().min(1)).min(1).describe("Detector ids or field-rule types delivered unmasked to these groups"),
          justificationRequired: z.boolean().default(true),
        }),
      )
      .default([])
      .describe("Role-aware exemptions: the record stays masked; each unmasked delivery is recorded with the caller's reason"),
  })
  .prefault({});


const durationText = z
  .string()
  .regex(/^(\d+)(ms|s|m|h|d)$/, "a duration such as 0s, 45s, 15m or 2h");

const approverGroup = z
  .strictObject({
    emails: z.array(z.email()).default([]).describe("Approvers by e-mail (a Slack user is matched by its profile e-mail or slack.users)"),
    slackUserGroups: z
      .array(z.string().regex(/^S[A-Z0-9]+$/, "a Slack user group id such as S0123ABCD"))
      .default([])
      .describe("Slack user groups whose members approve (looked up live with usergroups.users.list)"),
    channel: z.string().min(1).optional().describe("Slack channel id for this group's approval messages (default: slack.channel)"),
  })
  .refine((g) => g.emails.length > 0 || g.slackUserGroups.length > 0, { message: "an approver group needs emails or slackUserGroups" });

const approvals = z
  .strictObject({
    groups: z.record(z.string().min(1), approverGroup).default({}).describe("Approver groups named by policy rules (approval.group)"),
    holdFor: durationText.default("45s").describe("How long a held call waits in the session before it returns 'approval pending' (0s: defer at once)"),
    reminderEvery: durationText.optional().describe("Remind the channel of a pending request at this interval"),
    escalation: z
      .strictObject({
        after: durationText.describe("Escalate a request still pending after this long"),
        group: z.string().min(1).describe("The approver group that is asked next (its members may then decide too)"),
      })
      .optional(),
    sweepIntervalMs: z.int().min(50).max(60_000).default(1000).describe("How often each replica looks for expired requests, reminders and unsynced messages"),
    pollIntervalMs: z.int().min(50).max(60_000).default(1000).describe("Polling fallback when Postgres notifications are unavailable"),
    listen: z
      .boolean()
      .default(true)
      .describe("Learn of decisions taken on other replicas through Postgres LISTEN/NOTIFY; false: polling alone (e.g. behind a transaction-mode pooler that drops notifications)"),
    argumentsKey: secretRef
      .optional()
      .describe("HMAC-SHA256 key for the stored hash of a held call's arguments (matches identical retries); shared by all replicas. Default: a key derived from keys.maskingHmac; in the quick start a generated key in .countersign/"),
    slack: z
      .strictObject({
        mode: z.enum(["http", "socket"]).default("http").describe("http: Slack posts to <publicUrl>/slack/events; socket: Socket Mode with an app-level token"),
        botToken: secretRef.describe("Bot token (xoxb-...)"),
        signingSecret: secretRef.optional().describe("HTTP mode: the app's signing secret"),
        appToken: secretRef.optional().describe("Socket Mode: the app-level token (xapp-...)"),
        channel: z.string().min(1).describe("Default channel id for approval messages"),
        securityChannel: z.string().min(1).optional().describe("Channel id for real-time security alerts (tool definition changed, audit chain verification failed); default: channel"),
        apiUrl: httpUrl.default("https://slack.com/api/").describe("Slack Web API base URL (GovSlack: https://slack-gov.com/api/)"),
        teamId: z.string().optional().describe("Refuse requests from any other workspace"),
        appId: z.string().optional().describe("Refuse requests for any other app (api_app_id)"),
        users: z.record(z.string().regex(/^[UW][A-Z0-9]+$/, "a Slack user id"), z.email()).default({}).describe("Explicit Slack user id → e-mail mapping (wins over the profile e-mail)"),
        postAttempts: z.int().min(1).max(20).default(6).describe("Attempts to post or update a message before giving up (with back-off)"),
      })
      .superRefine((s, ctx) => {
        if (s.mode === "http" && !s.signingSecret) ctx.addIssue({ code: "custom", path: ["signingSecret"], message: "HTTP mode needs the app's signing secret" });
        if (s.mode === "socket" && !s.appToken) ctx.addIssue({ code: "custom", path: ["appToken"], message: "Socket Mode needs an app-level token (xapp-...)" });
      })
      .optional()
      .describe("Without it, approvals are decided with `countersign approvals` only"),
  })
  .superRefine((a, ctx) => {
    if (a.escalation && !a.groups[a.escalation.group]) {
      ctx.addIssue({ code: "custom", path: ["escalation", "group"], message: `no approver group '${a.escalation.group}' in approvals.groups` });
    }
  })
  // The approvals service's options: e-mails compared in lower case, durations in milliseconds.
  .transform(({ holdFor, reminderEvery, escalation, slack, ...a }) => ({
    ...a,
    groups: Object.fromEntries(Object.entries(a.groups).map(([name, g]) => [name, { ...g, emails: g.emails.map((e) => e.toLowerCase()) }])),
    holdForMs: parseDuration(holdFor),
    ...(reminderEvery !== undefined ? { reminderEveryMs: parseDuration(reminderEvery) } : {}),
    ...(escalation ? { escalation: { afterMs: parseDuration(escalation.after), group: escalation.group } } : {}),
    ...(slack
      ? {
          slack: {
            ...slack,
            apiUrl: slack.apiUrl.endsWith("/") ? slack.apiUrl : `${slack.apiUrl}/`,
            users: Object.fromEntries(Object.entries(slack.users).map(([id, email]) => [id, email.toLowerCase()])),
          },
        }
      : {}),
  }));

// The tamper-evident audit chain and its signed checkpoints (gateway/audit/chain).
const instant = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const keyValidity = {
  notBefore: instant.optional().describe("The key signs from this time on (ISO 8601)"),
  notAfter: instant.optional().describe("The key signs until this time; keep retired keys listed so older checkpoints still verify"),
};
const checkpointKeyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, '.', '_' or '-' (it names the key in every checkpoint)");

const audit = z
  .strictObject({
    sealIntervalMs: z.int().min(10).max(10_000).default(200).describe("How often the sealer looks for committed, unsealed records (the window between commit and seal)"),
    checkpoint: z
      .strictObject({
        intervalMinutes: z.int().min(1).max(1440).default(60).describe("Sign the chain's head this often, also when nothing was recorded"),
        directory: z.string().min(1).transform((d) => resolve(d)).optional().describe("Also write each checkpoint as a JSON file here (keep copies outside PostgreSQL)"),
        keys: z
          .array(z.strictObject({ id: checkpointKeyId, privateKey: secretRef.describe("PKCS#8 PEM Ed25519 private key"), ...keyValidity }))
          .default([])
          .describe("Signing keys; the one valid now with the latest notBefore signs"),
        publicKeys: z
          .array(z.strictObject({ id: checkpointKeyId, publicKey: valueOrSecret.describe("SPKI PEM Ed25519 public key"), ...keyValidity }))
          .default([])
          .describe("Public keys of retired signing keys, so `countersign verify` accepts the checkpoints they signed"),
      })
      .optional()
      .describe("Signed checkpoints of the audit chain; without this block only the quick start (embedded database) signs, with a generated key"),
    retentionDays: z.int().min(1).optional().describe("Delete audit records older than this many days (cut at a signed checkpoint; the deletion is itself recorded in the chain)"),
  })
  .prefault({});

// The weekly evidence digest (gateway/evidence): when it is generated and where it is posted.
const digest = z
  .strictObject({
    enabled: z.boolean().default(false).describe("Generate, sign and store the weekly digest on schedule (and post it when slackChannel is set)"),
    schedule: z
      .string()
      .default("0 9 * * 1")
      .refine((s) => validCron(s), "a cron expression such as \"0 9 * * 1\" (minute hour day-of-month month day-of-week)")
      .describe("When to generate the digest of the last complete ISO week, read in timeZone (default: Monday 09:00)"),
    timeZone: z
      .string()
      .default("UTC")
      .refine((z) => validTimeZone(z), "an IANA time zone such as UTC or Europe/Paris")
      .describe("IANA time zone of the week's boundaries and of the schedule"),
    slackChannel: z.string().min(1).optional().describe("The managers' channel id; posts with approvals.slack's bot token and apiUrl"),
    checkIntervalMs: z.int().min(50).max(3_600_000).default(60_000).describe("How often each replica checks whether the last scheduled digest was posted"),
  })
  .prefault({});

function validCron(expr: string): boolean {
  try {
    new Cron(expr, { paused: true });
    return true;
  } catch {
    return false;
  }
}

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// Tool pinning (gateway/pinning), per connection.
const pinning = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Pin tool definitions on first sight and watch them for changes (on by default)"),
    // Block by default: a security product fails closed. A changed description is how a rug-pull
    // reaches the model, so until someone has looked at the change, the tool is not used.
    onChange: z
      .enum(["allow", "hold", "block"])
      .default("block")
      .describe("Calls to a tool whose definition changed since it was pinned: allow (record only), hold (each call waits for approvalGroup), block (refused and hidden from tools/list until an admin re-pins)"),
    approvalGroup: z.string().min(1).optional().describe("The approver group (approvals.groups) that decides held calls; required with onChange: hold"),
    approvalTimeout: durationText.default("15m").describe("How long a held call's approval request stays open"),
  })
  .superRefine((p, ctx) => {
    if (p.onChange === "hold" && !p.approvalGroup) ctx.addIssue({ code: "custom", path: ["approvalGroup"], message: "onChange: hold needs approvalGroup: the approver group (in approvals.groups) that decides calls to a changed tool" });
  })
  .transform(({ approvalTimeout, ...p }) => ({ ...p, approvalTimeoutMs: parseDuration(approvalTimeout) }))
  .prefault({});

const connection = z.strictObject({
  name: connectionName,
  description: z.string().optional(),
  upstream,
  protocol: z
    .enum(["auto", "2026-07-28", "legacy"])
    .default("auto")
    .describe(
      "Which MCP protocol the gateway speaks to this upstream: auto (asks it server/discover, cached per connection for 5 minutes; a 2026-07-28 caller is passed through when it answers, a 2025-era caller keeps a 2025-era session unless the upstream refuses initialize), 2026-07-28 (only the stateless revision, never initialize: 2025-era callers are adapted; streamable_http and stdio upstreams, a stdio child per session), or legacy (only 2025-era sessions, never probed). For stdio upstreams auto means legacy (a child is not started to be probed); sse upstreams are legacy only",
    ),
  maxSessions: z.int().min(1).max(10_000).default(32).describe("Concurrent client sessions (for stdio: child processes)"),
  idleTimeoutSeconds: z.int().min(1).optional().describe("Close a session after this long without traffic (default: sessions.idleTimeoutSeconds)"),
  maxSessionsPerIdentity: z
    .int()
    .min(1)
    .max(10_000)
    .optional()
    .describe("Concurrent sessions one identity may hold here (anonymous callers: per address); default: half of maxSessions, so one caller never takes every slot"),
  access,
  upstreamIdentity: upstreamIdentity.optional(),
  masking,
  policy: policySchema.prefault({}).describe("Rules that allow, block or hold tools/call, resources/read and prompts/get (see README, Policy)"),
  pinning: pinning.describe("Tool pinning: the first tools/list pins each tool's definition; a changed definition is recorded and its calls follow onChange (see README, Tool pinning)"),
});

// The web console (gateway/console): who logs in, how, and for how long.
const consoleSlice = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve the web console at /console (approvals inbox, sessions and replay, evidence)"),
    auditorGroups: z.array(z.string().min(1)).default([]).describe("Groups whose members see sessions, replays and evidence (admins, in admin.groups, see them too)"),
    idleTimeoutMinutes: z.int().min(1).max(24 * 60).default(30).describe("A console login ends after this long without a request"),
    absoluteTimeoutHours: z.int().min(1).max(7 * 24).default(12).describe("A console login ends this long after it began, whatever the activity"),
    sessionKey: secretRef.optional().describe("Signs console cookies (at least 32 characters, the same on every replica); default: a random key per process (a restart logs everyone out)"),
    login: z
      .array(
        z.strictObject({
          issuer: httpUrl.describe("One of auth.issuers (its `issuer`): people log in there with the authorization code flow and PKCE"),
          label: z.string().min(1).max(60).optional().describe("The button's text, e.g. Okta"),
          clientId: z.string().min(1),
          clientSecret: secretRef.optional().describe("Absent: a public client (PKCE only)"),
          scopes: z.array(z.string().min(1)).default(["openid", "email", "profile"]),
        }),
      )
      .default([])
      .describe("Browser login through the configured issuers (OIDC authorization code + PKCE); the redirect URI is <publicUrl>/console/login/callback"),
    devUsers: z
      .array(
        z.strictObject({
          subject: z.string().min(1),
          email: z.string().min(3).optional(),
          name: z.string().min(1).optional(),
          groups: z.array(z.string().min(1)).default([]),
        }),
      )
      .optional()
      .describe("With the dev issuer on a loopback bind: the people offered as one-click logins (default: alice, and each e-mail of approvals.groups)"),
  })
  .prefault({});

// The gateway as the OAuth authorization server of its own connections (gateway/oauth): MCP
// clients log in through the browser with the console's login and get the gateway's tokens.
const oauthSlice = z
  .strictObject({
    enabled: z.boolean().optional().describe("Serve /oauth/* and name the gateway as its connections' authorization server; default: on with the dev issuer on a loopback bind (the quick start), off otherwise"),
    accessTokenTtl: durationText.default("10m").describe("Lifetime of the access tokens the gateway issues (audience: one connection)"),
    refreshTokenTtl: durationText.default("12h").describe("How long a browser login lasts for an MCP client (its refresh tokens rotate within it); the groups are the login's, so a change at the IdP applies at the next login"),
    refreshReuseGraceSeconds: z.int().min(0).max(60).default(10).describe("A used refresh token presented again by its own client within this long (concurrent refreshes) is honoured; later, every token of that login is revoked (0: never honoured)"),
    codeTtlSeconds: z.int().min(10).max(600).default(60).describe("An authorization code must be exchanged within this long, once"),
    signingKey: secretRef.optional().describe("PKCS#8 PEM EC P-256 private key that signs the gateway's tokens, the same on every replica; default: a new key per process (a restart makes clients refresh)"),
    maxCodes: z.int().min(10).max(1_000_000).default(10_000).describe("Unexchanged authorization codes kept at most; more authorizations are refused until some expire"),
    maxRefreshTokens: z.int().min(10).max(10_000_000).default(100_000).describe("Live refresh tokens at most; beyond, logins are refused until some expire"),
    registration: z
      .strictObject({
        enabled: z.boolean().default(true).describe("Dynamic client registration (RFC 7591) at /oauth/register"),
        perMinutePerAddress: z.int().min(1).max(10_000).default(10).describe("Registrations per source address per minute; more get 429"),
        maxClients: z.int().min(1).max(1_000_000).default(1_000).describe("Registered clients kept at most; more registrations are refused"),
        unusedClientDays: z.int().min(1).max(3650).default(30).describe("A registered client not used for this long is deleted"),
      })
      .prefault({}),
    clientMetadataDocuments: z
      .strictObject({
        allowedHosts: z.array(z.string().min(1)).default([]).describe("Hosts whose https URLs may be client ids (client ID metadata documents), e.g. vscode.dev or *.example.com; empty: off"),
        maxBytes: z.int().min(256).max(1_048_576).default(5_120).describe("A document larger than this is refused"),
        timeoutMs: z.int().min(100).max(30_000).default(3_000).describe("A document not fully received after this long is refused"),
        allowPrivateAddresses: z.boolean().default(false).describe("Fetch documents from private, loopback and link-local addresses too (a lab or internal network only)"),
        ca: secretRef.optional().describe("PEM bundle of certificate authorities trusted for these fetches (an internal CA)"),
      })
      .prefault({}),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    version: z.literal(CONFIG_VERSION, { error: `version must be ${CONFIG_VERSION}` }),
    publicUrl: httpUrl.optional().describe("Externally visible base URL (token audiences, metadata, links). Default: http://HOST:PORT"),
    server: z
      .strictObject({
        host: z.string().default("127.0.0.1"),
        port: z.int().min(0).max(65535).default(8080),
        trustProxy: z
          .union([z.boolean(), z.array(z.string().min(1)).min(1)])
          .default(false)
          .describe("Take the caller's address from X-Forwarded-For when the request comes through these proxies (true: any; or a list of addresses/CIDRs). Needed behind an Ingress, or every caller shares the proxy's address for rate limits and records"),
        allowedHosts: z
          .array(z.string().min(1).max(300))
          .optional()
          .describe("Host names (or name:port) the MCP endpoints answer to besides publicUrl's host (and the loopback names on a loopback bind); other Host headers get 403 CS_ERR_HOST_NOT_ALLOWED (DNS rebinding)"),
        allowedOrigins: z
          .array(httpUrl)
          .optional()
          .describe("Origins of web pages that may call the MCP endpoints besides publicUrl's; a request with another Origin header gets 403 CS_ERR_ORIGIN_NOT_ALLOWED (clients that are not browsers send none)"),
      })
      .prefault({}),
    database: z
      .strictObject({
        url: secretRef.optional().describe("PostgreSQL URL; without it (and without DATABASE_URL) an embedded PostgreSQL is started"),
        migrateOnStart: z.boolean().default(true),
        embeddedDataDir: z.string().default(".countersign/postgres").transform((d) => resolve(d)),
        commitTimeoutMs: z.int().min(100).default(5000).describe("How long a record may take to commit before the gateway fails closed"),
        hotPoolSize: z.int().min(1).max(100).default(4).describe("Connections for the records the data path waits for (recorder, pseudonym map); README, Connections per replica"),
        backgroundPoolSize: z.int().min(1).max(100).default(10).describe("Connections for everything else (sessions, approvals, pins, console, digest); README, Connections per replica"),
      })
      .prefault({}),
    limits: z
      .strictObject({
        requestBodyBytes: z.int().min(1024).default(4 * 1024 * 1024),
        upstreamMessageBytes: z.int().min(1024).default(16 * 1024 * 1024),
        upstreamTimeoutMs: z.int().min(1000).default(10 * 60 * 1000),
        notificationsPerSecond: z.int().min(1).default(1000).describe("Per session; notifications above it are dropped, counted and reported to the client"),
        clientBufferBytes: z
          .int()
          .min(64 * 1024)
          .default(32 * 1024 * 1024)
          .describe("Bytes written to a client's stream that it has not read yet, at most; a client past it is disconnected, recorded as client_too_slow (also the bound of a session's backlog waiting for its GET stream)"),
        requestHeadersTimeoutMs: z.int().min(100).default(10_000).describe("A request whose headers have not all arrived after this long is cut (408)"),
        requestTimeoutMs: z.int().min(100).default(30_000).describe("A request (headers and body) not fully received after this long is cut (408); answers and streams are not limited by it"),
        unauthenticatedRequests: z.int().min(1).default(256).describe("Requests being authenticated at once, at most; more get 429 CS_ERR_RATE_LIMITED (bodies are read only after authentication)"),
      })
      .prefault({}),
    sessions: z
      .strictObject({
        idleTimeoutSeconds: z.int().min(1).default(1800),
        evictIdleAfterSeconds: z
          .int()
          .min(1)
          .default(60)
          .describe("At a quota or a cap, a caller's session idle this long (nothing in flight, no held call, no open stream) is closed to admit the caller's new one"),
      })
      .prefault({}),
    admin: z
      .strictObject({
        groups: z.array(z.string().min(1)).default([]).describe("Groups whose members may use the admin API (/admin/...; e.g. countersign reload); empty: the admin API is off"),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true).describe("Serve Prometheus metrics at /metrics"),
        token: secretRef.optional().describe("Require `Authorization: Bearer <token>` on /metrics"),
        port: z.int().min(0).max(65535).default(0).describe("Serve /metrics only on this port, a listener of its own on server.host (e.g. for a NetworkPolicy that admits only the monitoring namespace); 0: on the public port"),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
        format: z
          .enum(["auto", "pretty", "json"])
          .default("auto")
          .describe("pretty: one readable line per record; json: JSON lines for log collectors; auto: pretty when stdout is a terminal, JSON otherwise"),
        requests: z
          .boolean()
          .default(true)
          .describe("One info line per answered MCP request: who, connection, method, tool, decision, status, duration (never arguments or results)"),
      })
      .prefault({}),
    auth,
    keys: z
      .strictObject({
        upstreamJwt: secretRef.optional().describe("PKCS#8 PEM private key (Ed25519, EC or RSA) that signs identity JWTs for upstreams; shared by all replicas"),
        maskingHmac: secretRef.optional().describe("Key for keyed-HMAC masking tokens ([MASKED:email:3f9a12c4]); shared by all replicas"),
        ring: keyRing.describe("Keys with ids and states, per purpose, rotated by a reload (see README, Keys and rotation)"),
      })
      .prefault({}),
    cluster: z
      .strictObject({
        internalPort: z.int().min(0).max(65535).default(0).describe("Port of the replica-to-replica listener that relays a request to the replica holding its session (0: off, for a single replica; the Helm chart uses 8081)"),
        internalHost: z.string().min(1).optional().describe("Address the internal listener binds (default: server.host)"),
        advertiseUrl: httpUrl.optional().describe("How the other replicas reach this one's internal listener (default: http://<POD_IP or host name>:<internalPort>)"),
        secret: secretRef.optional().describe("Shared by all replicas (at least 32 characters): proves a relayed request comes from a peer. Default when internalPort is set: { env: COUNTERSIGN_CLUSTER_SECRET }"),
        deadAfterSeconds: z.int().min(5).max(3600).default(20).describe("A replica not heard from for this long is taken as gone: its sessions end and clients re-initialise"),
      })
      .prefault({}),
    approvals: approvals.optional().describe("Approver groups and the Slack bot for calls held by require_approval"),
    connections: z.array(connection).min(1, "declare at least one connection"),
    audit,
    digest: digest.describe("The weekly SOC 2 evidence digest (see README, Weekly evidence digest)"),
    console: consoleSlice.describe("The web console (see README, Console)"),
    oauth: oauthSlice.describe("MCP clients log in through the browser: the gateway as OAuth authorization server (see README, MCP clients log in through the browser)"),
  })
  .superRefine((cfg, ctx) => {
    // /metrics names connections, rules and traffic: off the loopback interface it needs its token.
    if (cfg.metrics.enabled && !cfg.metrics.token && !isLoopbackHost(cfg.server.host)) {
      ctx.addIssue({ code: "custom", path: ["metrics", "token"], message: `/metrics is served on ${cfg.server.host}, which is not a loopback address: set metrics.token ({ env | file }) so scrapes need \`Authorization: Bearer <token>\`, or metrics.enabled: false` });
    }
    // A login through an issuer whose tokens the gateway does not trust would be a door nobody audits.
    cfg.console.login.forEach((l, i) => {
      if (!trustedIssuer(cfg.auth.issuers, l.issuer)) {
        ctx.addIssue({ code: "custom", path: ["console", "login", i, "issuer"], message: `'${l.issuer}' is not one of auth.issuers: add it there first (its claims settings apply to console logins too)` });
      }
    });
    // The authorization server: people log in through the console; several replicas share its key.
    if (oauthEnabled(cfg)) {
      const quickstart = cfg.auth.devIssuer.enabled && isLoopbackHost(cfg.server.host);
      if (!cfg.console.enabled) ctx.addIssue({ code: "custom", path: ["oauth", "enabled"], message: "MCP clients log in through the console's login: set console.enabled: true (or oauth.enabled: false)" });
      else if (!quickstart && cfg.console.login.length === 0) ctx.addIssue({ code: "custom", path: ["oauth", "enabled"], message: "nobody could log in: configure console.login (an issuer people log in with), or oauth.enabled: false" });
      if (cfg.cluster.internalPort > 0 && !cfg.oauth.signingKey) {
        ctx.addIssue({ code: "custom", path: ["oauth", "signingKey"], message: "several replicas (cluster.internalPort) need one signing key for the gateway's tokens: set oauth.signingKey ({ env | file }, a PKCS#8 PEM EC P-256 key)" });
      }
    }
    if (cfg.digest.slackChannel && !cfg.approvals?.slack) {
      ctx.addIssue({ code: "custom", path: ["digest", "slackChannel"], message: "posting the digest uses the Slack bot of approvals.slack: configure approvals.slack (botToken, apiUrl) as well" });
    }
    // A security product does not pretend: asking for checkpoints without a key is refused.
    const cp = cfg.audit.checkpoint;
    if (cp && cp.keys.length === 0) {
      ctx.addIssue({ code: "custom", path: ["audit", "checkpoint", "keys"], message: "checkpoints need a signing key: add { id, privateKey: { env | file } } (an Ed25519 PKCS#8 PEM key)" });
    }
    if (cp) {
      const ids = new Set<string>();
      [...cp.keys, ...cp.publicKeys].forEach((k, i) => {
        if (ids.has(k.id)) ctx.addIssue({ code: "custom", path: ["audit", "checkpoint", i < cp.keys.length ? "keys" : "publicKeys", i < cp.keys.length ? i : i - cp.keys.length, "id"], message: `duplicate key id '${k.id}'` });
        ids.add(k.id);
      });
    }
    const seen = new Map<string, number>();
    cfg.connections.forEach((c, i) => {
      const first = seen.get(c.name);
      if (first !== undefined) {
        ctx.addIssue({ code: "custom", path: ["connections", i, "name"], message: `duplicate connection name (also connections[${first}].name)` });
      } else seen.set(c.name, i);
      // Fail closed: a connection nobody can authenticate to is a mistake, not an open door.
      if (!c.access.anonymous && cfg.auth.issuers.length === 0 && !cfg.auth.devIssuer.enabled) {
        ctx.addIssue({
          code: "custom",
          path: ["connections", i, "access"],
          message: "no token issuer is configured (auth.issuers or auth.devIssuer) and anonymous access is off, so nobody could call this connection: add an issuer, or set access.anonymous: true for local use",
        });
      }
      // A hold nobody can decide expires unseen: every group a policy names must exist.
      const missingGroup = (group: string) =>
        cfg.approvals?.groups[group] ? undefined : `no approver group '${group}' in approvals.groups${cfg.approvals ? ` (groups: ${Object.keys(cfg.approvals.groups).join(", ") || "none"})` : " (the file has no approvals block)"}`;
      c.policy.rules.forEach((r, j) => {
        const problem = r.approval && missingGroup(r.approval.group);
        if (problem) ctx.addIssue({ code: "custom", path: ["connections", i, "policy", "rules", j, "approval", "group"], message: problem });
      });
      const defaultProblem = c.policy.defaultApproval && missingGroup(c.policy.defaultApproval.group);
      if (defaultProblem) ctx.addIssue({ code: "custom", path: ["connections", i, "policy", "defaultApproval", "group"], message: defaultProblem });
      if (c.pinning.approvalGroup && !cfg.approvals?.groups[c.pinning.approvalGroup]) {
        ctx.addIssue({ code: "custom", path: ["connections", i, "pinning", "approvalGroup"], message: `no approver group '${c.pinning.approvalGroup}' in approvals.groups` });
      }
      if (c.upstream.type === "stdio" && c.upstream.shared && c.upstreamIdentity) {
        ctx.addIssue({
          code: "custom",
          path: ["connections", i, "upstream", "shared"],
          message: "a shared stdio child serves several callers, so it cannot be told one caller's identity: remove upstreamIdentity or set shared: false",
        });
      }
      if (c.protocol === "2026-07-28" && c.upstream.type === "sse") {
        ctx.addIssue({
          code: "custom",
          path: ["connections", i, "protocol"],
          message: "the 2024-11-05 SSE transport carries 2025-era sessions only, not MCP 2026-07-28: set protocol: legacy or auto",
        });
      }
      if (c.protocol === "2026-07-28" && c.upstream.type === "stdio" && c.upstream.shared) {
        ctx.addIssue({
          code: "custom",
          path: ["connections", i, "upstream", "shared"],
          message: "protocol: 2026-07-28 over stdio runs a child per session (per caller for 2026-07-28 callers), not one shared child: set shared: false, or protocol: legacy",
        });
      }
      if (c.upstreamIdentity?.jwt && !cfg.keys.upstreamJwt && !cfg.keys.ring.upstreamJwt) {
        ctx.addIssue({
          code: "custom",
          path: ["connections", i, "upstreamIdentity", "jwt"],
          message: "identity JWTs need the gateway's signing key: set keys.upstreamJwt (a PKCS#8 PEM private key, shared by all replicas)",
        });
      }
    });
  })
  // Defaults that depend on other keys, and the console's logins with their issuer's claims.
  .transform((cfg) => ({
    ...cfg,
    publicUrl: (cfg.publicUrl ?? `http://${bracketed(cfg.server.host)}:${cfg.server.port}`).replace(/\/+$/, ""),
    cluster: { ...cfg.cluster, internalHost: cfg.cluster.internalHost ?? cfg.server.host },
    console: consoleOptions(cfg.console, cfg.auth.issuers),
    oauth: oauthOptions(cfg.oauth, oauthEnabled(cfg)),
    connections: cfg.connections.map((c) => ({
      ...c,
      idleTimeoutSeconds: c.idleTimeoutSeconds ?? cfg.sessions.idleTimeoutSeconds,
      // One identity never takes every slot: half of maxSessions unless set.
      maxSessionsPerIdentity: Math.min(c.maxSessions, c.maxSessionsPerIdentity ?? Math.max(1, Math.ceil(c.maxSessions / 2))),
    })),
  }));

/** The authorization server's default: on only in the quick start (the dev issuer on a loopback bind, the console's one-click login), and with several replicas only given a shared signing key. */
function oauthEnabled(cfg: { oauth: z.output<typeof oauthSlice>; auth: { devIssuer: { enabled: boolean } }; server: { host: string }; console: { enabled: boolean }; cluster: { internalPort: number } }): boolean {
  const quickstart = cfg.auth.devIssuer.enabled && isLoopbackHost(cfg.server.host);
  return cfg.oauth.enabled ?? (quickstart && cfg.console.enabled && (cfg.cluster.internalPort === 0 || Boolean(cfg.oauth.signingKey)));
}

/** The authorization server's options: durations in milliseconds, host names in lower case. */
function oauthOptions(o: z.output<typeof oauthSlice>, enabled: boolean) {
  return {
    enabled,
    accessTokenTtlSeconds: Math.max(1, Math.round(parseDuration(o.accessTokenTtl) / 1000)),
    refreshTokenTtlMs: parseDuration(o.refreshTokenTtl),
    refreshReuseGraceMs: o.refreshReuseGraceSeconds * 1000,
    codeTtlMs: o.codeTtlSeconds * 1000,
    signingKey: o.signingKey,
    maxCodes: o.maxCodes,
    maxRefreshTokens: o.maxRefreshTokens,
    registration: {
      enabled: o.registration.enabled,
      perMinutePerAddress: o.registration.perMinutePerAddress,
      maxClients: o.registration.maxClients,
      unusedClientMs: o.registration.unusedClientDays * 86_400_000,
    },
    clientMetadataDocuments: {
      allowedHosts: o.clientMetadataDocuments.allowedHosts.map((h) => h.toLowerCase()),
      maxBytes: o.clientMetadataDocuments.maxBytes,
      timeoutMs: o.clientMetadataDocuments.timeoutMs,
      allowPrivateAddresses: o.clientMetadataDocuments.allowPrivateAddresses,
      ca: o.clientMetadataDocuments.ca,
    },
  };
}

/** The console's options: timeouts in milliseconds, each login with its (trusted) issuer's claim names. */
function consoleOptions(c: z.output<typeof consoleSlice>, issuers: Array<z.output<typeof issuer>>) {
  const { idleTimeoutMinutes, absoluteTimeoutHours, login, ...rest } = c;
  return {
    ...rest,
    idleTimeoutMs: idleTimeoutMinutes * 60_000,
    absoluteTimeoutMs: absoluteTimeoutHours * 3_600_000,
    login: login.flatMap((l) => {
      const trusted = trustedIssuer(issuers, l.issuer);
      if (!trusted) return []; // refused above
      return [{
        issuer: trusted.issuer,
        label: l.label ?? trusted.label ?? new URL(trusted.issuer).host,
        clientId: l.clientId,
        clientSecret: l.clientSecret,
        scopes: l.scopes.includes("openid") ? l.scopes : ["openid", ...l.scopes],
        groupsClaim: trusted.groupsClaim,
        emailClaim: trusted.emailClaim,
        nameClaim: trusted.nameClaim,
      }];
    }),
  };
}

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type SecretRef = z.output<typeof secretRef>;
export type ParsedApprovals = z.output<typeof approvals>;
export type ParsedConsole = z.output<typeof consoleSlice>;
export type ParsedOAuth = z.output<typeof oauthSlice>;

function trustedIssuer<I extends { issuer: string }>(issuers: I[], issuer: string): I | undefined {
  return issuers.find((x) => x.issuer.replace(/\/+$/, "") === issuer.replace(/\/+$/, ""));
}

/** True for addresses only this host can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

const bracketed = (host: string) => (host.includes(":") ? `[${host}]` : host);
