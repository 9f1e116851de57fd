/**
 * Decides whether a `tools/call`, `resources/read` or `prompts/get` may proceed, is blocked, or
 * waits for approval. Pure and synchronous: no I/O, no clock, no randomness.
 *
 * Order within a policy: rules are evaluated in file order and the first rule that matches
 * decides. A rule matches when every selector it lists holds: method, tool/resource/prompt name
 * glob, connection glob, caller groups  (`groups` any of, `exceptGroups` none of), subject or
 * e-mail glob, and its `when` conditions. When no rule matches, the policy's `defaultAction`
 * applies (allow unless set). Other methods (initialize, tools/list, notifications, ...) are not
 * subject to policy and are allowed here.
 *
 * Shadow mode: a rule with `shadow: true` that matches is reported ("would have blocked") and
 * evaluation goes on to the first enforced rule that matches (or the default), which decides what
 * happens; so rolling a rule out in shadow mode never weakens the rules after it. With
 * `shadow: true` on the policy, the first match (or the default) is reported and every call
 * proceeds.
 *
 * Precedence across layers (fixed): identity access comes first (may this caller use the
 * connection and call this tool: auth/access.ts), then tool pinning (is this the tool definition
 * that was approved), then these rules. A call refused by an earlier layer never reaches policy;
 * a policy `allow` cannot grant what an earlier layer refused.
 */
import { compileCondition, conditionUsesSql, type Predicate } from "./conditions.js";
import { anyGlobMatches } from "./glob.js";
import { normaliseName, normaliseParams, normaliseResourceUri } from "./normalize.js";
import type { RegexEngine } from "../linear-regex.js";
import { parseDuration, POLICY_METHODS, type ApprovalConfig, type PolicyAction, type PolicyConfig, type PolicyMethod, type RuleConfig } from "./schema.js";

/** The caller, as the identity layer established it (auth/identity.ts `Identity` fits). */
export interface PolicyIdentity {
  subject: string;
  groups: readonly string[];
  email?: string | undefined;
  kind?: string | undefined;
}

export interface PolicyRequest {
  /** The connection name (the part after /mcp/). */
  connection: string;
  /** The JSON-RPC method. */
  method: string;
  /** The request's params: `{ name, arguments }` for tools/call, `{ uri }` for resources/read. */
  params: unknown;
  identity: PolicyIdentity;
  /** The caller's stated reason (justificationOf). */
  justification?: string | undefined;
}

export interface ApprovalRequirement {
  /** The rule that asks for approval; null for the policy's default action. */
  ruleId: string | null;
  /** For the approvers: the rule's description and what held, e.g. `Writes need on-call (SQL at $.arguments.sql is not read-only (DELETE))`. */
  why: string;
  group: string;
  approvals: number;
  timeoutMs: number;
  justificationRequired: boolean;
  justification?: string | undefined;
  /** The rule requires a justification and the caller gave none: refuse rather than ask approvers. */
  justificationMissing: boolean;
}

export interface PolicyDecision {
  /** What the policy decides with every rule enforced, shadow rules included. */
  action: PolicyAction;
  /** What the gateway does: equals `action` unless shadow mode intervened. */
  effectiveAction: PolicyAction;
  /** The rule behind `action`; null when the default action (or no policy at all) decided. */
  ruleId: string | null;
  /** Why, for the record: the rule, its description, and the conditions that held. */
  reason: string;
  /** True when `action` came from a rule or policy in shadow mode and so is only reported. */
  shadow: boolean;
  /** When `shadow`: the rule (or default) behind `effectiveAction`. */
  effective?: { ruleId: string | null; reason: string } | undefined;
  /** When `effectiveAction` is block: the text for the caller; it names the rule. */
  message?: string | undefined;
  /** When `effectiveAction` is require_approval: what the approvals layer needs. */
  approval?: ApprovalRequirement | undefined;
}

interface CompiledRule {
  config: RuleConfig;
  methods: ReadonlySet<string>;
  when: Predicate | undefined;
  /** The rule's target globs in the same normal form as the requests they are matched against (normalize.ts). */
  tools: readonly string[] | undefined;
  resources: readonly string[] | undefined;
  prompts: readonly string[] | undefined;
}

export interface CompiledPolicy {
  readonly [COMPILED]: true;
  readonly config: PolicyConfig;
  readonly rules: readonly CompiledRule[];
}

const COMPILED: unique symbol = Symbol("compiled policy");
const GOVERNED: ReadonlySet<string> = new Set(POLICY_METHODS);

function methodsOf(rule: RuleConfig): ReadonlySet<string> {
  if (rule.methods) return new Set(rule.methods);
  const implied: PolicyMethod[] = [];
  if (rule.tools) implied.push("tools/call");
  if (rule.resources) implied.push("resources/read");
  if (rule.prompts) implied.push("prompts/get");
  return implied.length > 0 ? new Set(implied) : GOVERNED;
}

/**
 * Compiles a validated policy (output of policySchema) once: JSON paths, regexes, globs.
 * @param regexEngine force "checked" (V8 after backtracking checks) or "re2"; default: RE2 when installed.
 */
export function compilePolicy(config: PolicyConfig, regexEngine?: RegexEngine): CompiledPolicy {
  return {
    [COMPILED]: true,
    config,
    rules: config.rules.map((rule) => ({
      config: rule,
      methods: methodsOf(rule),
      when: rule.when ? compileCondition(rule.when, regexEngine) : undefined,
      tools: rule.tools?.map(normaliseName),
      resources: rule.resources?.map(normaliseResourceUri),
      prompts: rule.prompts?.map(normaliseName),
    })),
  };
}

const compiledCache = new WeakMap<PolicyConfig, CompiledPolicy>();

function compiled(policy: PolicyConfig | CompiledPolicy): CompiledPolicy {
  if (COMPILED in policy) return policy;
  let c = compiledCache.get(policy);
  if (!c) {
    c = compilePolicy(policy);
    compiledCache.set(policy, c);
  }
  return c;
}

const stringAt = (params: unknown, key: string): string => {
  const v = params !== null && typeof params === "object" ? (params as Record<string, unknown>)[key] : undefined;
  return typeof v === "string" ? v : "";
};

/** Every selector except `when`, cheapest first. */
function selectorsMatch(rule: CompiledRule, req: PolicyRequest): boolean {
  const r = rule.config;
  if (!rule.methods.has(req.method)) return false;
  if (req.method === "tools/call" && rule.tools && !anyGlobMatches(rule.tools, stringAt(req.params, "name"))) return false;
  if (req.method === "resources/read" && rule.resources && !anyGlobMatches(rule.resources, stringAt(req.params, "uri"))) return false;
  if (req.method === "prompts/get" && rule.prompts && !anyGlobMatches(rule.prompts, stringAt(req.params, "name"))) return false;
  if (r.connections && !anyGlobMatches(r.connections, req.connection)) return false;
  const groups = req.identity.groups;
  if (r.groups && !r.groups.some((g) => groups.includes(g))) return false;
  if (r.exceptGroups && r.exceptGroups.some((g) => groups.includes(g))) return false;
  if (r.subjects && !anyGlobMatches(r.subjects, req.identity.subject) && !(req.identity.email !== undefined && anyGlobMatches(r.subjects, req.identity.email))) return false;
  return true;
}

function matches(rule: CompiledRule, req: PolicyRequest): boolean {
  return selectorsMatch(rule, req) && (rule.when === undefined || rule.when(req.params));
}

/** The conditions that held, as text (empty when the rule has none). */
function ruleNotes(rule: CompiledRule, req: PolicyRequest): string[] {
  const notes: string[] = [];
  rule.when?.(req.params, notes);
  return notes;
}

function ruleReason(rule: CompiledRule, req: PolicyRequest, notes: readonly string[]): string {
  // Tool and prompt names are identifiers; a resource URI may carry credentials, so it stays out.
  const target = req.method === "resources/read" ? "" : ` ${JSON.stringify(stringAt(req.params, "name"))}`;
  return `rule "${rule.config.id}" (${rule.config.description}) matched ${req.method}${target}${notes.length > 0 ? `: ${notes.join("; ")}` : ""}`;
}

const WOULD: Record<PolicyAction, string> = { allow: "would have allowed", block: "would have blocked", require_approval: "would have required approval" };

interface Outcome {
  action: PolicyAction;
  ruleId: string | null;
  reason: string;
  /** For approvers: the rule's description and the conditions that held. */
  why: string;
  message?: string | undefined;
  approval?: ApprovalConfig | undefined;
}

function ruleOutcome(rule: CompiledRule, req: PolicyRequest): Outcome {
  const r = rule.config;
  const notes = ruleNotes(rule, req);
  return {
    action: r.action,
    ruleId: r.id,
    reason: ruleReason(rule, req, notes),
    why: notes.length > 0 ? `${r.description} (${notes.join("; ")})` : r.description,
    message: r.action === "block" ? `Blocked by policy rule "${r.id}": ${r.message ?? r.description}` : undefined,
    approval: r.approval,
  };
}

function defaultOutcome(policy: PolicyConfig, req: PolicyRequest): Outcome {
  return {
    action: policy.defaultAction,
    ruleId: null,
    reason: `no rule matched ${req.method}; the default action of connection "${req.connection}" is ${policy.defaultAction}`,
    why: `no rule matched; the default action of connection "${req.connection}" is ${policy.defaultAction}`,
    message: policy.defaultAction === "block" ? `Blocked by policy: the default action of connection "${req.connection}" is block${policy.defaultMessage ? `: ${policy.defaultMessage}` : ""}` : undefined,
    approval: policy.defaultApproval,
  };
}

function approvalRequirement(outcome: Outcome, req: PolicyRequest): ApprovalRequirement | undefined {
  const a = outcome.approval;
  if (outcome.action !== "require_approval" || !a) return undefined;
  const justification = req.justification?.trim() || undefined;
  return {
    ruleId: outcome.ruleId,
    why: outcome.why,
    group: a.group,
    approvals: a.approvals,
    timeoutMs: parseDuration(a.timeout),
    justificationRequired: a.justificationRequired,
    justification,
    justificationMissing: a.justificationRequired && justification === undefined,
  };
}

/**
 * Evaluates a policy for one request. Accepts the validated config (compiled on first use and
 * cached per config object) or the result of compilePolicy. Pure: the same inputs give the
 * same decision. `undefined` policy means "no policy": everything is allowed.
 */
export function evaluate(policy: PolicyConfig | CompiledPolicy | undefined, sent: PolicyRequest): PolicyDecision {
  if (!policy || !GOVERNED.has(sent.method)) {
    return { action: "allow", effectiveAction: "allow", ruleId: null, reason: policy ? `${sent.method} is not subject to policy` : "no policy configured", shadow: false };
  }
  // Every matcher and condition below sees the target (name or URI) in its one normal form.
  const req: PolicyRequest = { ...sent, params: normaliseParams(sent.method, sent.params) };
  const p = compiled(policy);
  const policyShadow = p.config.shadow;
  let first: CompiledRule | undefined;
  let enforced: CompiledRule | undefined;
  for (const rule of p.rules) {
    if (!matches(rule, req)) continue;
    first ??= rule;
    if (policyShadow) break;
    if (!rule.config.shadow) {
      enforced = rule;
      break;
    }
  }

  const decided = first ? ruleOutcome(first, req) : defaultOutcome(p.config, req);
  const shadow = policyShadow ? decided.action !== "allow" : first !== undefined && first.config.shadow;
  if (!shadow) {
    return {
      action: decided.action,
      effectiveAction: decided.action,
      ruleId: decided.ruleId,
      reason: decided.reason,
      shadow: false,
      ...(decided.message ? { message: decided.message } : {}),
      ...(decided.action === "require_approval" ? { approval: approvalRequirement(decided, req) } : {}),
    };
  }
  const effective: Outcome = policyShadow
    ? { action: "allow", ruleId: null, reason: "the policy is in shadow mode: every call proceeds", why: "the policy is in shadow mode" }
    : enforced
      ? ruleOutcome(enforced, req)
      : defaultOutcome(p.config, req);
  return {
    action: decided.action,
    effectiveAction: effective.action,
    ruleId: decided.ruleId,
    reason: `shadow: ${WOULD[decided.action]}: ${decided.reason}`,
    shadow: true,
    effective: { ruleId: effective.ruleId, reason: effective.reason },
    ...(effective.message ? { message: effective.message } : {}),
    ...(effective.action === "require_approval" ? { approval: approvalRequirement(effective, req) } : {}),
  };
}

/** Whether any rule of the policy classifies SQL: then loadSqlParser() must run before it is applied. */
export function policyUsesSql(policy: PolicyConfig | undefined): boolean {
  return (policy?.rules ?? []).some((rule) => rule.when !== undefined && conditionUsesSql(rule.when));
}
