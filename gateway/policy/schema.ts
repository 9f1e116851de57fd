/**
 * The configuration of a connection's policy (mounted under `connections[].policy`). Everything
 * that can be wrong with a rule is caught here, at config load, with the key path: unknown keys,
 * bad JSON paths, regexes that are invalid or could backtrack catastrophically, missing approval
 * parameters, duplicate rule ids. The engine (engine.ts) then never meets an invalid rule.
 *
 * Evaluation order (see engine.ts): rules in file order, the first that matches decides; when
 * none matches, `defaultAction` applies (allow unless set).
 */
import { z } from "zod";
import { compileJsonPath, JsonPathError } from "./json-path.js";
import { compileLinearRegex, UnsafeRegexError } from "../linear-regex.js";
import { SQL_CLASSES, SQL_FLAGS, type SqlClass, type SqlFlag } from "./sql-vocabulary.js";

/** The MCP requests policy governs; every other message passes without evaluation. */
export const POLICY_METHODS = ["tools/call", "resources/read", "prompts/get"] as const;
export type PolicyMethod = (typeof POLICY_METHODS)[number];

export const POLICY_ACTIONS = ["allow", "block", "require_approval"] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90s`, `15m`, `2h`, `1d` in milliseconds. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * DURATION_UNIT_MS[m[2] as keyof typeof DURATION_UNIT_MS];
}

// The range check runs only on well-formed text: zod runs every check, and a throwing one would
// escape validation (a crash at start with no key path instead of an answer naming the key).
const duration = z
  .string()
  .regex(DURATION, "a duration such as 90s, 15m, 2h or 1d")
  .refine((d) => !DURATION.test(d) || (parseDuration(d) >= 10_000 && parseDuration(d) <= 7 * 86_400_000), "between 10s and 7d");

const nameGlob = z.string().min(1).max(512).describe("A name or a glob: * any run of characters, ? one character");

const jsonPath = z
  .string()
  .min(1)
  .superRefine((path, ctx) => {
    try {
      compileJsonPath(path);
    } catch (err) {
      if (!(err instanceof JsonPathError)) throw err;
      ctx.addIssue({ code: "custom", message: `JSON path ${JSON.stringify(path)}: ${err.message}` });
    }
  })
  .describe("JSON path into the request's params, e.g. $.arguments.sql, $.arguments.files[*].path, $..path");

const jsonScalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export interface SqlPredicateConfig {
  path: string;
  is?: SqlClass[] | undefined;
  has?: SqlFlag[] | undefined;
  readOnly?: boolean | undefined;
}

export interface ConditionConfig {
  all?: ConditionConfig[] | undefined;
  any?: ConditionConfig[] | undefined;
  not?: ConditionConfig | undefined;
  sql?: SqlPredicateConfig | undefined;
  path?: string | undefined;
  equals?: unknown;
  in?: unknown[] | undefined;
  matches?: string | undefined;
  flags?: string | undefined;
  contains?: string | number | boolean | null | undefined;
  gt?: number | undefined;
  gte?: number | undefined;
  lt?: number | undefined;
  lte?: number | undefined;
  exists?: boolean | undefined;
}

const sqlPredicate = z
  .strictObject({
    path: jsonPath,
    is: z.array(z.enum(SQL_CLASSES)).min(1).optional().describe("True when any statement has one of these classes (unparseable text counts as write, ddl and unknown)"),
    has: z.array(z.enum(SQL_FLAGS)).min(1).optional().describe("True when the text raises any of these flags"),
    readOnly: z.boolean().optional().describe("true: every statement only reads; false: some statement may change something"),
  })
  .superRefine((p, ctx) => {
    if (p.is === undefined && p.has === undefined && p.readOnly === undefined) {
      ctx.addIssue({ code: "custom", message: "name what to test: is, has or readOnly" });
    }
  });

const VALUE_OPERATORS = ["equals", "in", "matches", "contains", "gt", "gte", "lt", "lte", "exists"] as const;
const KINDS = ["path", "sql", "all", "any", "not"] as const;

export const conditionSchema: z.ZodType<ConditionConfig> = z.lazy(() =>
  z
    .strictObject({
      all: z.array(conditionSchema).min(1).optional().describe("True when every condition is true"),
      any: z.array(conditionSchema).min(1).optional().describe("True when at least one condition is true"),
      not: conditionSchema.optional().describe("True when the condition is false"),
      sql: sqlPredicate.optional().describe("Classify the SQL text at path (built-in PostgreSQL parser)"),
      path: jsonPath.optional(),
      equals: z.json().optional().describe("Equal to this JSON value"),
      in: z.array(z.json()).min(1).optional().describe("Equal to one of these JSON values"),
      matches: z.string().optional().describe("A string matching this regex (searched, not anchored; linear time: RE2)"),
      flags: z.string().optional().describe("Regex flags for matches: i, m, s, u"),
      contains: jsonScalar.optional().describe("A string containing this text, or an array containing this value"),
      gt: z.number().optional(),
      gte: z.number().optional(),
      lt: z.number().optional(),
      lte: z.number().optional(),
      exists: z.boolean().optional().describe("true: the path selects something; false: it selects nothing"),
    })
    .superRefine((c, ctx) => {
      const kinds = KINDS.filter((k) => c[k] !== undefined);
      if (kinds.length !== 1) {
        ctx.addIssue({
          code: "custom",
          message: kinds.length === 0 ? "a condition needs one of path, sql, all, any, not" : `a condition has exactly one of path, sql, all, any, not (found ${kinds.join(", ")}): nest them with all/any`,
        });
        return;
      }
      const operators = VALUE_OPERATORS.filter((k) => c[k] !== undefined);
      if (c.path === undefined) {
        for (const op of operators) ctx.addIssue({ code: "custom", path: [op], message: `${op} tests the value at path: add path, or move it into its own condition` });
      } else if (operators.length === 0) {
        ctx.addIssue({ code: "custom", message: `a path condition needs an operator: ${VALUE_OPERATORS.join(", ")}` });
      } else if (c.exists === false && operators.length > 1) {
        ctx.addIssue({ code: "custom", path: ["exists"], message: "exists: false cannot be combined with other operators (nothing is selected to test)" });
      }
      if (c.flags !== undefined && c.matches === undefined) ctx.addIssue({ code: "custom", path: ["flags"], message: "flags only apply to matches" });
      if (c.matches !== undefined) {
        try {
          compileLinearRegex(c.matches, c.flags ?? "");
        } catch (err) {
          if (!(err instanceof UnsafeRegexError)) throw err;
          ctx.addIssue({ code: "custom", path: ["matches"], message: `regex ${JSON.stringify(c.matches)} rejected: ${err.reason}` });
        }
      }
    }),
);

export const approvalSchema = z.strictObject({
  group: z.string().min(1).describe("The approver group: its members may approve"),
  approvals: z.int().min(1).max(10).default(1).describe("How many distinct approvers must approve"),
  timeout: duration.default("15m").describe("How long the call waits for approval before it is refused"),
  justificationRequired: z.boolean().default(false).describe("The caller must state a reason (_meta countersign/justification or the X-Countersign-Justification header)"),
  confirm: z.boolean().default(false).describe("High risk: Slack asks approvers to confirm before Approve counts"),
});

export const ruleSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, "letters, digits, _ . : - (up to 100), starting with a letter or digit").describe("Names the rule in decisions, records and block messages"),
    description: z.string().min(1).describe("What the rule is for, in a sentence a reviewer understands"),
    methods: z.array(z.enum(POLICY_METHODS)).min(1).optional().describe("Default: those implied by tools/resources/prompts, else all three"),
    tools: z.array(nameGlob).min(1).optional().describe("tools/call: tool name globs"),
    resources: z.array(nameGlob).min(1).optional().describe("resources/read: resource URI globs"),
    prompts: z.array(nameGlob).min(1).optional().describe("prompts/get: prompt name globs"),
    connections: z.array(nameGlob).min(1).optional().describe("Connection name globs (default: any)"),
    groups: z.array(z.string().min(1)).min(1).optional().describe("The caller is in at least one of these groups"),
    exceptGroups: z.array(z.string().min(1)).min(1).optional().describe("The caller is in none of these groups"),
    subjects: z.array(nameGlob).min(1).optional().describe("Globs on the caller's subject or e-mail"),
    when: conditionSchema.optional().describe("Conditions on the request's params (arguments)"),
    action: z.enum(POLICY_ACTIONS),
    message: z.string().min(1).max(1000).optional().describe("block: the text the caller receives (the rule id is always named)"),
    approval: approvalSchema.optional().describe("require_approval: who approves, how many, how long"),
    shadow: z.boolean().default(false).describe("Report what the rule would do, but let the call proceed"),
  })
  .superRefine((r, ctx) => {
    if (r.action === "require_approval" && !r.approval) ctx.addIssue({ code: "custom", path: ["approval"], message: "require_approval needs approval: { group: <approver group> }" });
    if (r.action !== "require_approval" && r.approval) ctx.addIssue({ code: "custom", path: ["approval"], message: `approval only applies to action require_approval (this rule's action is ${r.action})` });
    if (r.action !== "block" && r.message) ctx.addIssue({ code: "custom", path: ["message"], message: `message only applies to action block (this rule's action is ${r.action})` });
    const selectors = [
      ["tools", "tools/call"],
      ["resources", "resources/read"],
      ["prompts", "prompts/get"],
    ] as const;
    for (const [key, method] of selectors) {
      if (r[key] && r.methods && !r.methods.includes(method)) {
        ctx.addIssue({ code: "custom", path: [key], message: `${key} only applies to ${method}, which methods leaves out` });
      }
    }
  });

export const policySchema = z
  .strictObject({
    defaultAction: z.enum(POLICY_ACTIONS).default("allow").describe("What happens to a tools/call, resources/read or prompts/get no rule matches"),
    defaultMessage: z.string().min(1).max(1000).optional().describe("defaultAction block: the text the caller receives"),
    defaultApproval: approvalSchema.optional().describe("defaultAction require_approval: who approves, how many, how long"),
    shadow: z.boolean().default(false).describe("Shadow mode for the whole policy: decisions are reported, every call proceeds"),
    rules: z.array(ruleSchema).default([]).describe("Evaluated in order; the first rule that matches decides"),
  })
  .superRefine((p, ctx) => {
    const seen = new Map<string, number>();
    p.rules.forEach((r, i) => {
      const first = seen.get(r.id);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["rules", i, "id"], message: `duplicate rule id (also rules[${first}].id)` });
      else seen.set(r.id, i);
    });
    if (p.defaultAction === "require_approval" && !p.defaultApproval) {
      ctx.addIssue({ code: "custom", path: ["defaultApproval"], message: "defaultAction require_approval needs defaultApproval: { group: <approver group> }" });
    }
    if (p.defaultAction !== "require_approval" && p.defaultApproval) ctx.addIssue({ code: "custom", path: ["defaultApproval"], message: "defaultApproval only applies to defaultAction require_approval" });
    if (p.defaultAction !== "block" && p.defaultMessage) ctx.addIssue({ code: "custom", path: ["defaultMessage"], message: "defaultMessage only applies to defaultAction block" });
  });

export type PolicyConfig = z.output<typeof policySchema>;
export type RawPolicyConfig = z.input<typeof policySchema>;
export type RuleConfig = z.output<typeof ruleSchema>;
export type ApprovalConfig = z.output<typeof approvalSchema>;
