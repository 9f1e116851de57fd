/**
 * Policy: which tools/call, resources/read and prompts/get requests are allowed, blocked or held
 * for approval. Configured per connection (`connections[].policy`, validated by policySchema) and
 * evaluated by `evaluate` (pure, synchronous).
 *
 * Precedence across layers (fixed): identity access first (may this caller use the connection and
 * this tool), then tool pinning (is the tool definition the approved one), then policy rules.
 * Within a policy: rules in file order, first match decides, then `defaultAction` (allow unless
 * set). See engine.ts for shadow mode and schema.ts for the rule syntax.
 */
export { compilePolicy, evaluate, policyUsesSql, type ApprovalRequirement, type CompiledPolicy, type PolicyDecision, type PolicyIdentity, type PolicyRequest } from "./engine.js";
export { JUSTIFICATION_HEADER, JUSTIFICATION_META_KEY, justificationOf } from "./justification.js";
export {
  approvalSchema,
  conditionSchema,
  parseDuration,
  POLICY_ACTIONS,
  POLICY_METHODS,
  policySchema,
  ruleSchema,
  type ConditionConfig,
  type PolicyAction,
  type PolicyConfig,
  type PolicyMethod,
  type RawPolicyConfig,
  type RuleConfig,
} from "./schema.js";
export { classifySql, loadSqlParser, sqlParserLoaded, MAX_SQL_CHARS, type SqlClassification, type SqlStatementClassification } from "./sql.js";
export { SQL_CLASSES, SQL_FLAGS, type SqlClass, type SqlFlag } from "./sql-vocabulary.js";
export { compileLinearRegex, defaultRegexEngine, UnsafeRegexError, type RegexEngine } from "../linear-regex.js";
