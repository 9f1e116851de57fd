// The digest's queries: each section's figures come from these named, parameterised statements,
// and the report prints each one's text beside its result, so an auditor can run it again.
// Parameters: $1 = the week's start, $2 = its end (exclusive), both instants (timestamptz); the
// per-day series also take $3 = the digest's time zone (days are local days).

import type pg from "pg";

export interface DigestQuery {
  name: string;
  sql: string;
}

const q = (name: string, sql: string): DigestQuery => ({ name, sql: sql.replace(/^\n/, "").replace(/\n\s*$/, "").replace(/^ {4}/gm, "") });

/** A throttled event (auth_failed, access_denied) stands for `detail.count` occurrences when aggregated. */
const OCCURRENCES = `CASE WHEN detail->>'aggregated' = 'true' THEN (detail->>'count')::bigint ELSE 1 END`;

export const QUERIES = {
  identitiesPerConnection: q("cc6_1_identities_per_connection", `
    SELECT connection,
           count(DISTINCT subject)                AS identities,
           count(*)                               AS sessions,
           count(*) FILTER (WHERE subject IS NULL) AS anonymous_sessions
    FROM sessions
    WHERE "createdAt" >= $1 AND "createdAt" < $2
    GROUP BY connection
    ORDER BY connection
  `),
  identitiesTotal: q("cc6_1_identities_total", `
    SELECT count(DISTINCT subject) AS identities, count(*) AS sessions
    FROM sessions
    WHERE "createdAt" >= $1 AND "createdAt" < $2
  `),
  authFailuresByReason: q("cc6_1_auth_failures_by_reason", `
    -- Failures beyond 20 a second are stored as one event per reason and second with
    -- detail.aggregated = true and detail.count: each such event counts as detail.count failures.
    SELECT reason,
           sum(${OCCURRENCES}) AS failures,
           count(*)            AS events
    FROM events
    WHERE type = 'auth_failed' AND at >= $1 AND at < $2
    GROUP BY reason
    ORDER BY failures DESC, reason
  `),
  accessDeniedByReason: q("cc6_1_access_denied_by_reason", `
    SELECT reason, sum(${OCCURRENCES}) AS denials
    FROM events
    WHERE type = 'access_denied' AND at >= $1 AND at < $2
    GROUP BY reason
    ORDER BY denials DESC, reason
  `),
  approvalSummary: q("cc6_2_approval_requests", `
    -- Population: approval requests created in the week; time to decision for those decided.
    SELECT count(*)                                     AS requests,
           count(*) FILTER (WHERE status = 'approved')  AS approved,
           count(*) FILTER (WHERE status = 'denied')    AS denied,
           count(*) FILTER (WHERE status = 'expired')   AS expired,
           count(*) FILTER (WHERE status = 'pending')   AS pending,
           count(DISTINCT "decidedBy")                  AS deciding_approvers,
           percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM "decidedAt" - "createdAt"))
             FILTER (WHERE status IN ('approved', 'denied')) AS median_seconds_to_decision,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM "decidedAt" - "createdAt"))
             FILTER (WHERE status IN ('approved', 'denied')) AS p95_seconds_to_decision
    FROM approval_requests
    WHERE "createdAt" >= $1 AND "createdAt" < $2
  `),
  approvers: q("cc6_2_votes_by_approver", `
    SELECT approver,
           count(*) FILTER (WHERE decision = 'approve') AS approvals,
           count(*) FILTER (WHERE decision = 'deny')    AS denials
    FROM approval_votes
    WHERE at >= $1 AND at < $2
    GROUP BY approver
    ORDER BY approver
  `),
  segregationOfDuties: q("cc6_3_self_approval", `
    -- Refused: attempts the gateway turned away. Granted: approving votes cast by the requester
    -- themselves (by e-mail) on their own request; must be 0.
    SELECT (SELECT count(*) FROM events
             WHERE type = 'approval' AND reason = 'self_approval_refused' AND at >= $1 AND at < $2) AS refused,
           (SELECT count(*) FROM approval_votes v JOIN approval_requests r ON r.id = v."requestId"
             WHERE v.decision = 'approve' AND lower(v.approver) = lower(r."requesterEmail")
               AND v.at >= $1 AND v.at < $2) AS granted,
           (SELECT count(*) FROM events
             WHERE type = 'approval' AND reason = 'unauthorized_click' AND at >= $1 AND at < $2) AS unauthorized_clicks
  `),
  blockedByRule: q("cc7_2_blocked_by_rule", `
    SELECT coalesce(detail->>'ruleId', '(no rule id)') AS rule, connection, count(*) AS blocked
    FROM events
    WHERE type = 'policy_decision' AND reason = 'block' AND at >= $1 AND at < $2
    GROUP BY 1, 2
    ORDER BY blocked DESC, rule, connection
  `),
  maskingByType: q("cc7_2_masking_hits_by_type", `
    SELECT h.key AS type, sum(h.value::bigint) AS values_masked, count(DISTINCT m.id) AS messages
    FROM messages m, jsonb_each_text(m."maskHits") h
    WHERE m."maskHits" IS NOT NULL AND m.at >= $1 AND m.at < $2
    GROUP BY h.key
    ORDER BY values_masked DESC, type
  `),
  toolDefinitionChanges: q("cc7_2_tool_definition_changes", `
    -- detected: an upstream changed a pinned tool's definition; call_allowed / call_held /
    -- call_blocked: calls to a changed tool and what the pinning rule did with them.
    SELECT connection, coalesce(detail->>'tool', '(unnamed)') AS tool,
           count(*) FILTER (WHERE reason = 'detected')      AS changes,
           count(*) FILTER (WHERE reason = 'call_allowed')  AS calls_allowed,
           count(*) FILTER (WHERE reason = 'call_held')     AS calls_held,
           count(*) FILTER (WHERE reason = 'call_blocked')  AS calls_blocked,
           max(at)                                          AS last_at
    FROM events
    WHERE type = 'tool_definition_changed' AND at >= $1 AND at < $2
    GROUP BY 1, 2
    ORDER BY connection, tool
  `),
  shadowWouldBlock: q("cc7_2_shadow_would_have_blocked", `
    SELECT reason, coalesce(detail->>'ruleId', '(no rule id)') AS rule, connection, count(*) AS calls
    FROM events
    WHERE type = 'policy_decision' AND reason IN ('shadow_block', 'shadow_require_approval')
      AND at >= $1 AND at < $2
    GROUP BY 1, 2, 3
    ORDER BY calls DESC, reason, rule
  `),
  volumePerIdentity: q("cc7_2_volume_per_identity", `
    -- tools/call requests per identity: this week, and each of the four 7-day periods before it.
    -- Unusual: at least 50 calls this week and more than 3x the median of those four periods.
    WITH calls AS (
      SELECT subject,
             CASE WHEN at >= $1 THEN 0
                  ELSE 1 + floor(extract(epoch FROM ($1::timestamptz - at)) / 604800)::int END AS period
      FROM messages
      WHERE direction = 'in' AND kind = 'request' AND method = 'tools/call' AND subject IS NOT NULL
        AND at >= $1::timestamptz - interval '28 days' AND at < $2
    ), counts AS (
      SELECT subject, period, count(*) AS n FROM calls GROUP BY subject, period
    ), earlier AS (
      SELECT s.subject, coalesce(c.n, 0) AS n
      FROM (SELECT DISTINCT subject FROM counts WHERE period = 0) s
      CROSS JOIN generate_series(1, 4) AS p(period)
      LEFT JOIN counts c ON c.subject = s.subject AND c.period = p.period
    )
    SELECT c.subject,
           (SELECT max(s.email) FROM sessions s WHERE s.subject = c.subject) AS email,
           c.n AS calls,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t.n) FROM earlier t WHERE t.subject = c.subject)
             AS trailing_weekly_median
    FROM counts c
    WHERE c.period = 0
    ORDER BY calls DESC, subject
  `),
  unmaskedDeliveries: q("privacy_unmasked_deliveries", `
    -- Responses delivered with personal data unmasked under a role exemption, per recipient
    -- and the reason (justification) they gave; types: the masked types left visible.
    WITH d AS (
      SELECT id, subject, connection, coalesce(detail->>'justification', '') AS reason,
             CASE WHEN jsonb_typeof(detail->'types') = 'object' THEN detail->'types' ELSE '{}'::jsonb END AS types
      FROM events
      WHERE type = 'unmasked_delivery' AND at >= $1 AND at < $2
    )
    SELECT d.subject, d.connection, d.reason,
           count(DISTINCT d.id) AS deliveries,
           string_agg(DISTINCT k.type, ', ' ORDER BY k.type) AS types
    FROM d LEFT JOIN LATERAL jsonb_object_keys(d.types) AS k(type) ON true
    GROUP BY d.subject, d.connection, d.reason
    ORDER BY deliveries DESC, d.subject, d.reason
  `),
  configChanges: q("cc8_1_configuration_changes", `
    SELECT id, at, reason, subject,
           detail->>'hash'         AS hash,
           detail->>'previousHash' AS previous_hash,
           detail->'by'            AS by,
           detail->'changes'       AS changes,
           detail->'problems'      AS problems
    FROM events
    WHERE type = 'config_changed' AND at >= $1 AND at < $2
    ORDER BY id
  `),
  chainRange: q("integrity_sequence_range", `
    -- Gaps: sequence numbers between the week's first and last entry that are not in the chain.
    WITH week AS (
      SELECT min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS entries,
             count(*) FILTER (WHERE missing) AS sealed_missing
      FROM audit_chain
      WHERE "sealedAt" >= $1 AND "sealedAt" < $2
    )
    SELECT first_seq, last_seq, entries, sealed_missing,
           CASE WHEN first_seq IS NULL THEN 0
                ELSE (last_seq - first_seq + 1)
                     - (SELECT count(*) FROM audit_chain c WHERE c.seq BETWEEN week.first_seq AND week.last_seq)
           END AS gaps
    FROM week
  `),
  chainHead: q("integrity_chain_head", `
    SELECT seq, hash, "sealedAt" FROM audit_chain ORDER BY seq DESC LIMIT 1
  `),
  lastCheckpoint: q("integrity_last_checkpoint", `
    SELECT id, seq, head, at, "keyId" FROM audit_checkpoints ORDER BY id DESC LIMIT 1
  `),
  breakGlass: q("cc6_2_break_glass_decisions", `
    -- Votes written with \`countersign approvals --database --as\` (trusted, not authenticated).
    SELECT v.at, v.approver, v.decision, v.reason, r.connection, r.tool, r.id AS request
    FROM approval_votes v JOIN approval_requests r ON r.id = v."requestId"
    WHERE v.via = 'break_glass' AND v.at >= $1 AND v.at < $2
    ORDER BY v.at
  `),
  dailyCalls: q("chart_daily_calls", `
    -- Per local day: tools/call requests, calls blocked by policy, calls held for approval.
    WITH days AS (
      SELECT generate_series(($1::timestamptz AT TIME ZONE $3)::date, (($2::timestamptz - interval '1 second') AT TIME ZONE $3)::date, '1 day')::date AS day
    )
    SELECT to_char(d.day, 'YYYY-MM-DD') AS day,
           (SELECT count(*) FROM messages m WHERE m.direction = 'in' AND m.kind = 'request' AND m.method = 'tools/call'
              AND m.at >= $1 AND m.at < $2 AND (m.at AT TIME ZONE $3)::date = d.day) AS calls,
           (SELECT count(*) FROM events e WHERE e.type = 'policy_decision' AND e.reason = 'block'
              AND e.at >= $1 AND e.at < $2 AND (e.at AT TIME ZONE $3)::date = d.day) AS blocked,
           (SELECT count(*) FROM approval_requests a WHERE a."createdAt" >= $1 AND a."createdAt" < $2
              AND (a."createdAt" AT TIME ZONE $3)::date = d.day) AS held
    FROM days d ORDER BY d.day
  `),
  failuresPerDay: q("chart_auth_failures_per_day", `
    SELECT to_char((at AT TIME ZONE $3)::date, 'YYYY-MM-DD') AS day, reason, sum(${OCCURRENCES}) AS failures
    FROM events
    WHERE type = 'auth_failed' AND at >= $1 AND at < $2
    GROUP BY 1, 2 ORDER BY 1, 2
  `),
  decisionTimes: q("chart_time_to_decision", `
    -- Decided requests created in the week, by time from request to decision.
    SELECT CASE WHEN s < 60 THEN 'under 1 min' WHEN s < 300 THEN '1–5 min' WHEN s < 900 THEN '5–15 min'
                WHEN s < 3600 THEN '15–60 min' ELSE 'over 1 h' END AS bucket,
           min(s) AS lower, count(*) AS requests
    FROM (SELECT extract(epoch FROM "decidedAt" - "createdAt") AS s FROM approval_requests
          WHERE status IN ('approved', 'denied') AND "createdAt" >= $1 AND "createdAt" < $2) t
    GROUP BY 1 ORDER BY 2
  `),
} satisfies Record<string, DigestQuery>;

/** Runs one of the digest's statements on the digest's connection. */
export async function runDigestQuery<Row extends Record<string, unknown>>(client: pg.ClientBase, query: DigestQuery, params: unknown[]): Promise<Row[]> {
  return (await client.query<Row>(query.sql, params)).rows;
}
