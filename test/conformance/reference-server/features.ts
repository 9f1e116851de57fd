// What the reference server offers: the tools, resources and prompts the conformance suite's
// server scenarios call by name, on one McpServer per session (2025 era), per request (2026-07-28)
// or per stdio connection. Built on the SDK v2 packages only.
import { randomUUID } from "node:crypto";
import {
  acceptedContent,
  CLIENT_CAPABILITIES_META_KEY,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
  type CallToolResult,
  type ClientCapabilities,
  type JsonSchemaType,
  type GetPromptResult,
  type InputRequests,
  type InputRequiredResult,
  type ServerContext,
  type ServerNotifier,
} from "@modelcontextprotocol/server";
import * as z from "zod/v4";

/** A 1×1 PNG and a minimal WAV: content the image/audio scenarios check the shape of. */
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/**
 * `requestState` comes back from the client, so it is sealed (HMAC, per-process key, TTL) when
 * minted and verified before a handler sees it; a tampered state is refused with -32602.
 */
const stateCodec = createRequestStateCodec<Record<string, unknown>>({ key: crypto.getRandomValues(new Uint8Array(32)), ttlSeconds: 300 });

const text = (t: string): CallToolResult => ({ content: [{ type: "text", text: t }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const askName = () =>
  inputRequired.elicit({
    message: "What is your name?",
    requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  });
const askConfirm = () =>
  inputRequired.elicit({
    message: "Please confirm",
    requestedSchema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] },
  });

/** Subscriptions made through resources/subscribe, per server instance (bounded). */
const MAX_SUBSCRIPTIONS = 64;

export interface FeatureOptions {
  /** Where a change event goes so that open subscriptions/listen streams see it (2026-07-28, HTTP and stdio). */
  notifier?: () => ServerNotifier | undefined;
}

export function buildServer(opts: FeatureOptions = {}): McpServer {
  const server = new McpServer(
    { name: "countersign-reference-server", version: "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        // Deprecated in 2026-07-28 but negotiated by the 2025 revisions' logging scenarios.
        logging: {},
        completions: {},
      },
      requestState: { verify: stateCodec.verify },
    },
  );
  const subscriptions = new Set<string>();
  const log = (data: string) => {
    server.server.notification({ method: "notifications/message", params: { level: "info", logger: "reference-server", data } }).catch(() => {});
  };

  // ── content tools ────────────────────────────────────────────────────────────────────────
  server.registerTool("test_simple_text", { description: "Answers one text block" }, () => text("This is a simple text response for testing."));
  server.registerTool("test_image_content", { description: "Answers one PNG image" }, () => ({ content: [{ type: "image", data: PNG, mimeType: "image/png" }] }));
  server.registerTool("test_audio_content", { description: "Answers one WAV clip" }, () => ({ content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] }));
  server.registerTool("test_embedded_resource", { description: "Answers an embedded text resource" }, () => ({
    content: [{ type: "resource", resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." } }],
  }));
  server.registerTool("test_multiple_content_types", { description: "Answers text, an image and a resource" }, () => ({
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: PNG, mimeType: "image/png" },
      { type: "resource", resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: JSON.stringify({ test: "data", value: 123 }) } },
    ],
  }));
  server.registerTool("test_error_handling", { description: "Fails: a tool error (isError), not a protocol error" }, () => {
    throw new Error("This tool intentionally returns an error for testing");
  });
  server.registerTool(
    "json_schema_2020_12_tool",
    {
      description: "An input schema using JSON Schema 2020-12 keywords, advertised verbatim",
      inputSchema: fromJsonSchema({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
        $defs: { address: { $anchor: "addressDef", type: "object", properties: { street: { type: "string" }, city: { type: "string" } } } },
        properties: {
          name: { type: "string" },
          address: { $ref: "#/$defs/address" },
          contactMethod: { type: "string", enum: ["phone", "email"] },
          phone: { type: "string" },
          email: { type: "string" },
        },
        allOf: [{ anyOf: [{ required: ["phone"] }, { required: ["email"] }] }],
        if: { properties: { contactMethod: { const: "phone" } }, required: ["contactMethod"] },
        then: { required: ["phone"] },
        else: { required: ["email"] },
        additionalProperties: false,
      }),
    },
    (args) => text(`called with ${JSON.stringify(args)}`),
  );
  server.registerTool(
    "test_x_mcp_header",
    {
      description: "An argument mirrored into the Mcp-Param-Region header",
      // x-mcp-header is an extension keyword the JSON Schema typings do not know.
      inputSchema: fromJsonSchema<{ region?: string; level?: number }>({
        type: "object",
        properties: { region: { type: "string", "x-mcp-header": "Region" }, level: { type: "integer" } },
      } as JsonSchemaType),
    },
    (args) => text(`region=${args.region ?? "<none>"}`),
  );

  // ── notifications during a call ──────────────────────────────────────────────────────────
  server.registerTool("test_tool_with_logging", { description: "Logs three messages while it runs", inputSchema: z.object({}) }, async (_a, ctx) => {
    for (const [i, m] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
      if (i > 0) await sleep(20);
      await ctx.mcpReq.notify({ method: "notifications/message", params: { level: "info", data: m } });
    }
    return text("Tool with logging executed successfully");
  });
  server.registerTool("test_tool_with_progress", { description: "Reports progress 0, 50, 100 when given a token", inputSchema: z.object({}) }, async (_a, ctx) => {
    const token = ctx.mcpReq._meta?.progressToken;
    if (token !== undefined) {
      for (const progress of [0, 50, 100]) {
        await ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken: token, progress, total: 100, message: `step ${progress}` } });
        if (progress < 100) await sleep(20);
      }
    }
    return text(String(token ?? "no-progress-token"));
  });
  server.registerTool("test_logging_tool", { description: "Logs through the request's channel (gated by _meta.logLevel)", inputSchema: z.object({}) }, async (_a, ctx) => {
    await ctx.mcpReq.log("info", "test_logging_tool ran");
    return text("logged");
  });
  server.registerTool("test_reconnection", { description: "Closes its SSE stream mid-call; answers after the client reconnects", inputSchema: z.object({}) }, async (_a, ctx) => {
    ctx.http?.closeSSE?.();
    await sleep(100);
    return text("Reconnection test completed successfully.");
  });

  // ── server → client requests (2025 era: pushed on the call's stream) ──────────────────────
  const viaClient = async (label: string, send: () => Promise<unknown>): Promise<CallToolResult> => {
    try {
      const r = (await send()) as { action?: string; content?: unknown; model?: string };
      return text(`${label}: ${JSON.stringify(r)}`);
    } catch (err) {
      return text(`${label} not supported or failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  server.registerTool("test_sampling", { description: "Asks the client's LLM", inputSchema: z.object({ prompt: z.string() }) }, (args, ctx) =>
    viaClient("LLM response", () =>
      ctx.mcpReq.send({ method: "sampling/createMessage", params: { messages: [{ role: "user", content: { type: "text", text: args.prompt } }], maxTokens: 100 } }),
    ),
  );
  server.registerTool("test_elicitation", { description: "Asks the user", inputSchema: z.object({ message: z.string() }) }, (args, ctx) =>
    viaClient("User response", () =>
      ctx.mcpReq.send({
        method: "elicitation/create",
        params: { message: args.message, requestedSchema: { type: "object", properties: { response: { type: "string" } }, required: ["response"] } },
      }),
    ),
  );
  server.registerTool("test_elicitation_sep1034_defaults", { description: "Elicits a form whose fields carry defaults", inputSchema: z.object({}) }, (_a, ctx) =>
    viaClient("Elicitation completed", () =>
      ctx.mcpReq.send({
        method: "elicitation/create",
        params: {
          message: "Please review the fields",
          requestedSchema: {
            type: "object",
            properties: {
              name: { type: "string", default: "John Doe" },
              age: { type: "integer", default: 30 },
              score: { type: "number", default: 95.5 },
              status: { type: "string", enum: ["active", "inactive", "pending"], default: "active" },
              verified: { type: "boolean", default: true },
            },
            required: [],
          },
        },
      }),
    ),
  );
  server.registerTool("test_elicitation_sep1330_enums", { description: "Elicits every enum field variant", inputSchema: z.object({}) }, (_a, ctx) =>
    viaClient("Elicitation completed", () =>
      ctx.mcpReq.send({
        method: "elicitation/create",
        params: {
          message: "Please select options",
          requestedSchema: {
            type: "object",
            properties: {
              untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
              titledSingle: {
                type: "string",
                oneOf: [
                  { const: "value1", title: "First Option" },
                  { const: "value2", title: "Second Option" },
                  { const: "value3", title: "Third Option" },
                ],
              },
              legacyEnum: { type: "string", enum: ["opt1", "opt2", "opt3"], enumNames: ["Option One", "Option Two", "Option Three"] },
              untitledMulti: { type: "array", minItems: 1, maxItems: 3, items: { type: "string", enum: ["option1", "option2", "option3"] } },
              titledMulti: {
                type: "array",
                minItems: 1,
                maxItems: 3,
                items: {
                  anyOf: [
                    { const: "value1", title: "First Choice" },
                    { const: "value2", title: "Second Choice" },
                    { const: "value3", title: "Third Choice" },
                  ],
                },
              },
            },
            required: [],
          },
        },
      }),
    ),
  );

  // ── 2026-07-28: multi-round-trip requests (input_required) ──────────────────────────────
  server.registerTool("test_missing_capability", { description: "Needs the sampling client capability", inputSchema: z.object({}) }, (_a, ctx) =>
    ctx.mcpReq.inputResponses?.["llm_answer"] === undefined
      ? inputRequired({
          inputRequests: { llm_answer: inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: "Reply: pong" } }], maxTokens: 16 }) },
        })
      : text("sampling round-trip complete"),
  );
  server.registerTool("test_streaming_elicitation", { description: "Answers with result frames only", inputSchema: z.object({}) }, () => text("result frames only"));
  server.registerTool(
    "test_input_required_result_elicitation",
    { description: "Asks the caller's name in-band", inputSchema: z.object({}) },
    (_a, ctx): CallToolResult | InputRequiredResult => {
      const name = acceptedContent<{ name: string }>(ctx.mcpReq.inputResponses, "user_name")?.name;
      return typeof name === "string" ? text(`Hello, ${name}!`) : inputRequired({ inputRequests: { user_name: askName() } });
    },
  );
  server.registerTool(
    "test_input_required_result_sampling",
    { description: "Asks the client's LLM in-band", inputSchema: z.object({}) },
    (_a, ctx): CallToolResult | InputRequiredResult => {
      const r = ctx.mcpReq.inputResponses?.["capital_question"] as { content?: { text?: string } } | undefined;
      if (r !== undefined) return text(`Sampling response: ${r.content?.text ?? JSON.stringify(r)}`);
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: "What is the capital of France?" } }], maxTokens: 100 }),
        },
      });
    },
  );
  server.registerTool(
    "test_input_required_result_list_roots",
    { description: "Asks the client's roots in-band", inputSchema: z.object({}) },
    (_a, ctx): CallToolResult | InputRequiredResult => {
      const roots = (ctx.mcpReq.inputResponses?.["client_roots"] as { roots?: Array<{ uri?: string }> } | undefined)?.roots;
      return Array.isArray(roots) ? text(`${roots.length} root(s): ${roots.map((r) => r.uri).join(", ")}`) : inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    },
  );
  server.registerTool(
    "test_input_required_result_request_state",
    { description: "Round-trips sealed requestState with an elicitation", inputSchema: z.object({}) },
    async (_a, ctx): Promise<CallToolResult | InputRequiredResult> => {
      if (acceptedContent(ctx.mcpReq.inputResponses, "confirm") === undefined) {
        return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await stateCodec.mint({ tool: "request_state", nonce: randomUUID() }) });
      }
      if (ctx.mcpReq.requestState() === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, "requestState missing or not verified");
      return text("state-ok");
    },
  );
  server.registerTool(
    "test_input_required_result_multiple_inputs",
    { description: "Asks for an elicitation, a sampling and the roots in one round", inputSchema: z.object({}) },
    async (_a, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const r = ctx.mcpReq.inputResponses;
      const name = acceptedContent<{ name: string }>(r, "user_name")?.name;
      const greeting = (r?.["greeting"] as { content?: { text?: string } } | undefined)?.content?.text;
      const roots = (r?.["client_roots"] as { roots?: unknown[] } | undefined)?.roots;
      if (typeof name === "string" && typeof greeting === "string" && Array.isArray(roots)) return text(`${greeting} ${name}, ${roots.length} root(s)`);
      return inputRequired({
        inputRequests: {
          user_name: askName(),
          greeting: inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: "Generate a greeting" } }], maxTokens: 50 }),
          client_roots: inputRequired.listRoots(),
        },
        requestState: await stateCodec.mint({ tool: "multiple_inputs", nonce: randomUUID() }),
      });
    },
  );
  server.registerTool(
    "test_input_required_result_multi_round",
    { description: "Two elicitation rounds; the round lives in sealed requestState", inputSchema: z.object({}) },
    async (_a, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const state = ctx.mcpReq.requestState<Record<string, unknown>>();
      const round = state?.["tool"] === "multi_round" && typeof state["round"] === "number" ? state["round"] : 0;
      if (round === 0) {
        return inputRequired({ inputRequests: { step1: askName() }, requestState: await stateCodec.mint({ tool: "multi_round", round: 1, nonce: randomUUID() }) });
      }
      if (round === 1) {
        const name = acceptedContent<{ name: string }>(ctx.mcpReq.inputResponses, "step1")?.name ?? "unknown";
        return inputRequired({
          inputRequests: {
            step2: inputRequired.elicit({
              message: "What is your favorite color?",
              requestedSchema: { type: "object", properties: { color: { type: "string" } }, required: ["color"] },
            }),
          },
          requestState: await stateCodec.mint({ tool: "multi_round", round: 2, name, nonce: randomUUID() }),
        });
      }
      const color = acceptedContent<{ color: string }>(ctx.mcpReq.inputResponses, "step2")?.color ?? "unknown";
      return text(`${String(state?.["name"] ?? "unknown")} likes ${color}`);
    },
  );
  server.registerTool(
    "test_input_required_result_tampered_state",
    { description: "Refuses a retry whose requestState fails verification", inputSchema: z.object({}) },
    async (_a, ctx): Promise<CallToolResult | InputRequiredResult> => {
      if (ctx.mcpReq.requestState() !== undefined && acceptedContent(ctx.mcpReq.inputResponses, "confirm") !== undefined) return text("integrity-ok");
      return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await stateCodec.mint({ tool: "tampered_state", nonce: randomUUID() }) });
    },
  );
  server.registerTool(
    "test_input_required_result_capabilities",
    { description: "Asks only for input kinds the request's client capabilities declare", inputSchema: z.object({}) },
    (_a, ctx): CallToolResult | InputRequiredResult => {
      if (ctx.mcpReq.inputResponses !== undefined) return text("Capability-aware input requests fulfilled");
      // The published typings declare the envelope as {}: its keys are read as what they are.
      const envelope = ctx.mcpReq.envelope as Record<string, ClientCapabilities | undefined> | undefined;
      const declared = envelope?.[CLIENT_CAPABILITIES_META_KEY];
      const requests: InputRequests = {};
      if (declared?.elicitation !== undefined) requests["user_name"] = askName();
      if (declared?.sampling !== undefined) {
        requests["greeting"] = inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: "Generate a short greeting" } }], maxTokens: 50 });
      }
      if (declared?.roots !== undefined) requests["client_roots"] = inputRequired.listRoots();
      return Object.keys(requests).length === 0 ? text("No declared capability supports an input request") : inputRequired({ inputRequests: requests });
    },
  );

  // ── 2026-07-28: change events for subscriptions/listen ───────────────────────────────────
  server.registerTool("test_trigger_tool_change", { description: "Publishes tools/list_changed", inputSchema: z.object({}) }, () => {
    opts.notifier?.()?.toolsChanged();
    return text("tools_list_changed published");
  });
  server.registerTool("test_trigger_prompt_change", { description: "Publishes prompts/list_changed", inputSchema: z.object({}) }, () => {
    opts.notifier?.()?.promptsChanged();
    return text("prompts_list_changed published");
  });

  // ── resources ────────────────────────────────────────────────────────────────────────────
  server.registerResource("static-text", "test://static-text", { title: "Static Text Resource", mimeType: "text/plain" }, () => ({
    contents: [{ uri: "test://static-text", mimeType: "text/plain", text: "This is the content of the static text resource." }],
  }));
  server.registerResource("static-binary", "test://static-binary", { title: "Static Binary Resource", mimeType: "image/png" }, () => ({
    contents: [{ uri: "test://static-binary", mimeType: "image/png", blob: PNG }],
  }));
  server.registerResource(
    "template",
    new ResourceTemplate("test://template/{id}/data", { list: undefined }),
    { title: "Resource Template", mimeType: "application/json" },
    (uri, vars) => ({
      contents: [{ uri: uri.toString(), mimeType: "application/json", text: JSON.stringify({ id: vars["id"], templateTest: true, data: `Data for ID: ${String(vars["id"])}` }) }],
    }),
  );
  server.registerResource("watched-resource", "test://watched-resource", { title: "Watched Resource", mimeType: "text/plain" }, () => ({
    contents: [{ uri: "test://watched-resource", mimeType: "text/plain", text: "Watched resource content" }],
  }));
  server.server.setRequestHandler("resources/subscribe", (req) => {
    if (subscriptions.size >= MAX_SUBSCRIPTIONS && !subscriptions.has(req.params.uri)) throw new ProtocolError(ProtocolErrorCode.InvalidParams, "too many subscriptions");
    subscriptions.add(req.params.uri);
    log(`Subscribed to resource: ${req.params.uri}`);
    return {};
  });
  server.server.setRequestHandler("resources/unsubscribe", (req) => {
    subscriptions.delete(req.params.uri);
    log(`Unsubscribed from resource: ${req.params.uri}`);
    return {};
  });

  // ── prompts ──────────────────────────────────────────────────────────────────────────────
  server.registerPrompt("test_simple_prompt", { title: "Simple Test Prompt", description: "No arguments" }, () => ({
    messages: [{ role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }],
  }));
  server.registerPrompt(
    "test_prompt_with_arguments",
    { title: "Prompt With Arguments", description: "Two required arguments", argsSchema: z.object({ arg1: z.string().describe("First argument"), arg2: z.string().describe("Second argument") }) },
    (args) => ({ messages: [{ role: "user", content: { type: "text", text: `Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'` } }] }),
  );
  server.registerPrompt(
    "test_prompt_with_embedded_resource",
    { title: "Prompt With Embedded Resource", description: "Embeds the resource it is given", argsSchema: z.object({ resourceUri: z.string().describe("URI of the resource to embed") }) },
    (args) => ({
      messages: [
        { role: "user", content: { type: "resource", resource: { uri: args.resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } } },
        { role: "user", content: { type: "text", text: "Please process the embedded resource above." } },
      ],
    }),
  );
  server.registerPrompt("test_prompt_with_image", { title: "Prompt With Image", description: "An image, then a question about it" }, () => ({
    messages: [
      { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } },
    ],
  }));
  server.registerPrompt("test_input_required_result_prompt", { title: "Prompt needing input", description: "Elicits its context before rendering" }, (ctx: unknown) => {
    const given = acceptedContent<{ context: string }>((ctx as ServerContext).mcpReq.inputResponses, "user_context")?.context;
    if (typeof given === "string") return { messages: [{ role: "user", content: { type: "text", text: `Use the following context: ${given}` } }] } satisfies GetPromptResult;
    return inputRequired({
      inputRequests: {
        user_context: inputRequired.elicit({
          message: "What context should the prompt use?",
          requestedSchema: { type: "object", properties: { context: { type: "string" } }, required: ["context"] },
        }),
      },
    });
  });

  // ── logging level, completions ───────────────────────────────────────────────────────────
  server.server.setRequestHandler("logging/setLevel", (req) => {
    log(`Log level set to: ${req.params.level}`);
    return {};
  });
  server.server.setRequestHandler("completion/complete", () => ({ completion: { values: [], total: 0, hasMore: false } }));
  return server;
}
