// The error catalogue (gateway/errors.ts): the README's table says what the code does, every code
// is one the gateway can return, and the one mapping turns anything thrown into the reply a
// caller receives (status, headers, JSON-RPC body with the code), without leaking internals.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuthError } from "../gateway/auth/authenticator.js";
import { asCountersignError, CountersignError, ERRORS, errorReply, type ErrorCode } from "../gateway/errors.js";
import { ROOT } from "./helpers/postgres.js";

/** The rows of the README's "## Errors" table: code, HTTP status, JSON-RPC code, message. */
function readmeErrorTable(): Array<{ code: string; http: number; jsonrpc: number; message: string }> {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split(/^## Errors$/m)[1]?.split(/^## /m)[0] ?? "";
  return section
    .split("\n")
    .filter((l) => l.startsWith("| `CS_ERR_"))
    .map((l) => {
      const cells = l.slice(1, -1).split(" | ").map((c) => c.trim());
      return { code: cells[0]!.replace(/`/g, ""), http: Number(cells[1]), jsonrpc: Number(cells[2]), message: cells.slice(3).join(" | ") };
    });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "generated" || name === "node_modules") return [];
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("the catalogue and the README", () => {
  it("lists every code with its HTTP status, JSON-RPC code and message, in the catalogue's order", () => {
    const rows = readmeErrorTable();
    const catalogue = Object.entries(ERRORS).map(([code, spec]) => ({ code, http: spec.http, jsonrpc: spec.jsonrpc, message: spec.message }));
    expect(rows.length).toBeGreaterThan(40);
    expect(rows).toEqual(catalogue);
  });

  it("holds only codes the gateway returns: each is raised somewhere outside the catalogue", () => {
    const sources = [...sourceFiles(join(ROOT, "gateway")), ...sourceFiles(join(ROOT, "bot"))]
      .filter((f) => !f.endsWith(join("gateway", "errors.ts")))
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    const unused = Object.keys(ERRORS).filter((code) => !sources.includes(`"${code}"`));
    expect(unused).toEqual([]);
  });
});

describe("the one mapping to a reply", () => {
  it("answers a catalogue error with its status and a JSON-RPC error carrying the code and the structured fields", () => {
    const err = new CountersignError("CS_ERR_POLICY_BLOCKED", "no deletes on Fridays", { rule: "no-friday-deletes", connection: "db" });
    const r = errorReply(err, { id: 7 });
    expect(r.status).toBe(403);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(r.body).toEqual({
      jsonrpc: "2.0",
      id: 7,
      error: { code: -32030, message: `${ERRORS.CS_ERR_POLICY_BLOCKED.message} (no deletes on Fridays)`, data: { code: "CS_ERR_POLICY_BLOCKED", detail: "no deletes on Fridays", rule: "no-friday-deletes", connection: "db" } },
    });
  });

  it("carries an authentication refusal's headers, and a Retry-After on a rate limit", () => {
    const unauth = errorReply(new AuthError("CS_ERR_UNAUTHENTICATED", "no bearer token", { "www-authenticate": 'Bearer resource_metadata="x"' }));
    expect(unauth.status).toBe(401);
    expect(unauth.headers["www-authenticate"]).toBe('Bearer resource_metadata="x"');
    const limited = errorReply(new CountersignError("CS_ERR_RATE_LIMITED", "too many waiting"), { headers: { connection: "close" } });
    expect(limited.status).toBe(429);
    expect(limited.headers).toMatchObject({ "retry-after": "1", connection: "close" });
    // The limiter's own wait is kept.
    expect(errorReply(new AuthError("CS_ERR_RATE_LIMITED", "retry in 30 s", { "retry-after": "30" })).headers["retry-after"]).toBe("30");
  });

  it("maps the framework's body errors to their catalogue codes", () => {
    const cases: Array<[string, number | undefined, ErrorCode]> = [
      ["FST_ERR_CTP_BODY_TOO_LARGE", 413, "CS_ERR_BODY_TOO_LARGE"],
      ["FST_ERR_CTP_INVALID_MEDIA_TYPE", 415, "CS_ERR_UNSUPPORTED_MEDIA_TYPE"],
      ["FST_ERR_CTP_INVALID_JSON_BODY", 400, "CS_ERR_PARSE"],
      ["FST_ERR_CTP_EMPTY_JSON_BODY", 400, "CS_ERR_PARSE"],
      ["FST_ERR_CTP_INVALID_CONTENT_LENGTH", 400, "CS_ERR_INVALID_REQUEST"],
      ["FST_ERR_SOMETHING_NEW", 415, "CS_ERR_UNSUPPORTED_MEDIA_TYPE"],
    ];
    for (const [code, statusCode, expected] of cases) {
      const e = asCountersignError(Object.assign(new Error(code), { code, statusCode }));
      expect(e.code, code).toBe(expected);
      expect(errorReply(e).status).toBe(ERRORS[expected].http);
    }
    expect(asCountersignError(Object.assign(new Error("x"), { code: "FST_ERR_CTP_BODY_TOO_LARGE" })).keyPath).toBe("limits.requestBodyBytes");
  });

  it("never sends an unexpected error's text; it names the request id and keeps the error for the log", () => {
    const boom = new Error("relation \"sessions\" does not exist at postgres://admin:pw@db/prod");
    const r = errorReply(boom, { httpRequestId: "req-42" });
    expect(r.status).toBe(500);
    expect(r.body.error.data).toEqual({ code: "CS_ERR_INTERNAL", detail: "request req-42" });
    expect(JSON.stringify(r.body)).not.toContain("postgres://");
    expect(r.error.cause).toBe(boom);
    // A fallback that is not internal keeps the first line of what failed as its detail.
    const audit = asCountersignError(new Error("connection refused"), "CS_ERR_AUDIT_UNAVAILABLE");
    expect(audit).toMatchObject({ code: "CS_ERR_AUDIT_UNAVAILABLE", detail: "connection refused" });
    expect(asCountersignError(audit)).toBe(audit);
  });
});
