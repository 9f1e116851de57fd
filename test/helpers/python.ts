// The official Python MCP SDK, for tests that drive a real Python client: the interpreter of the
// venv `.ci/run` creates (or COUNTERSIGN_PYTHON), and why it cannot be used, when it cannot.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export const PYTHON = process.env.COUNTERSIGN_PYTHON ?? "/tmp/pyvenv/bin/python";

/** Why the Python client cannot run here; undefined when it can. */
export function pythonMcpMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `no Python interpreter at ${PYTHON} (set COUNTERSIGN_PYTHON, or create the venv: python3 -m venv /tmp/pyvenv && /tmp/pyvenv/bin/pip install mcp)`;
  try {
    execFileSync(PYTHON, ["-c", "import mcp"], { stdio: "pipe" });
    return undefined;
  } catch {
    return `the Python package mcp is not installed for ${PYTHON} (pip install mcp)`;
  }
}
