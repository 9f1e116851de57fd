// Per-tool access inside a session: a denied tool is refused on call (the caller gets a clear
// error naming the tool) and left out of the caller's tools/list, so agents do not plan with it.
import { CountersignError } from "../errors.js";
import type { JsonRpcMessage } from "../mcp/jsonrpc.js";
import { hasToolRules, mayCallTool, type AccessConfig } from "./access.js";
import type { Identity } from "./identity.js";

/** The refusal for a tools/call the caller may not make, or undefined when it may. */
export function toolCallRefusal(access: AccessConfig, identity: Identity, msg: JsonRpcMessage): CountersignError | undefined {
  if (msg.method !== "tools/call" || !hasToolRules(access)) return undefined;
  const name = (msg.params as { name?: unknown } | undefined)?.name;
  // A name that is not a string matches no rule: refused rather than left for the upstream to coerce.
  if (typeof name !== "string") return new CountersignError("CS_ERR_TOOL_DENIED", "the tool name is not a string");
  const tool = name;
  if (mayCallTool(access, identity, tool)) return undefined;
  return new CountersignError("CS_ERR_TOOL_DENIED", `tool '${tool}' is not allowed for groups: ${identity.groups.join(", ") || "none"}`);
}

/** A tools/list response without the tools the caller may not call (the message is copied, not changed). */
export function filterToolsList(access: AccessConfig, identity: Identity, msg: JsonRpcMessage): { msg: JsonRpcMessage; removed: string[] } {
  const result = msg.result as { tools?: Array<{ name?: unknown }> } | undefined;
  if (!hasToolRules(access) || !Array.isArray(result?.tools)) return { msg, removed: [] };
  const removed: string[] = [];
  const tools = result.tools.filter((t) => {
    const ok = typeof t.name === "string" && mayCallTool(access, identity, t.name);
    if (!ok) removed.push(String(t.name));
    return ok;
  });
  if (removed.length === 0) return { msg, removed };
  return { msg: { ...msg, result: { ...result, tools } }, removed };
}
