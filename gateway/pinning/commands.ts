// `countersign tools list` and `countersign tools pin`: the work behind the two commands in
// gateway/cli.ts, which only parse options. Both reach the database directly (like `approvals`
// and `verify`); a re-pin is announced with NOTIFY so running gateways apply it at once.
import { hostname, userInfo } from "node:os";
import type { GatewayConfig } from "../config/load.js";
import { diffDefinitions, formatChanges, summarizeChanges } from "./diff.js";
import { createLogger } from "../log.js";
import { PinStore, type ToolPin } from "../store/pins.js";
import { openStore } from "../store/pools.js";

export class UsageError extends Error {}

export interface ToolsListOptions {
  json?: boolean | undefined;
}

export interface ToolsPinOptions {
  tool?: string | undefined;
  as?: string | undefined;
  json?: boolean | undefined;
}

async function withStore<T>(databaseUrl: string, fn: (store: PinStore) => Promise<T>): Promise<T> {
  const store = openStore(databaseUrl, { log: createLogger("silent"), hotPoolSize: 1, backgroundPoolSize: 2 });
  try {
    return await fn(new PinStore(store.background));
  } finally {
    await store.close();
  }
}

/** The connection's pins; a clear error when the connection is unknown everywhere. */
async function pinsOf(store: PinStore, cfg: GatewayConfig, connection: string): Promise<ToolPin[]> {
  const pins = await store.list(connection);
  if (pins.length === 0 && !cfg.connections.some((c) => c.name === connection)) {
    throw new UsageError(`no connection named '${connection}' in ${cfg.source} and no pins recorded for it; connections: ${cfg.connections.map((c) => c.name).join(", ")}`);
  }
  return pins;
}

const time = (d: Date) => d.toISOString().replace("T", " ").slice(0, 19);

export async function toolsListCommand(cfg: GatewayConfig, databaseUrl: string, connection: string, opts: ToolsListOptions): Promise<void> {
  const pins = await withStore(databaseUrl, (store) => pinsOf(store, cfg, connection));
  const rows = pins.map((p) => {
    const changes = p.hash === p.currentHash ? [] : diffDefinitions(p.definition, p.currentDefinition);
    return {
      tool: p.tool,
      status: p.hash === p.currentHash ? ("ok" as const) : ("changed" as const),
      hash: p.hash,
      pinnedAt: p.pinnedAt.toISOString(),
      pinnedBy: p.pinnedBy,
      currentHash: p.currentHash,
      currentSeenAt: p.currentSeenAt.toISOString(),
      summary: changes.length ? summarizeChanges(changes) : null,
      changes,
    };
  });
  if (opts.json) return void process.stdout.write(JSON.stringify({ connection, tools: rows }, null, 2) + "\n");
  if (rows.length === 0) {
    return void process.stdout.write(`no tools pinned for '${connection}' yet: the first tools/list the gateway passes pins them\n`);
  }
  printTable(
    ["TOOL", "STATUS", "PINNED HASH", "PINNED AT (UTC)", "PINNED BY", "CHANGE"],
    rows.map((r) => [r.tool, r.status, r.hash.slice(0, 12), time(new Date(r.pinnedAt)), r.pinnedBy, r.summary ?? ""]),
  );
  const changed = rows.filter((r) => r.status === "changed");
  for (const r of changed) {
    process.stdout.write(`\n${r.tool}: ${r.hash.slice(0, 12)} → ${r.currentHash.slice(0, 12)} (seen ${time(new Date(r.currentSeenAt))})\n`);
    for (const line of formatChanges(r.changes)) process.stdout.write(`  ${line}\n`);
  }
  if (changed.length > 0) process.stdout.write(`\nreview the change${changed.length > 1 ? "s" : ""}, then accept with: countersign tools pin ${connection}${changed.length === 1 ? ` --tool ${changed[0]!.tool}` : ""} --as <your e-mail>\n`);
}

export async function toolsPinCommand(cfg: GatewayConfig, databaseUrl: string, connection: string, opts: ToolsPinOptions): Promise<void> {
  const by = opts.as?.trim() || `${localUser()}@${hostname()} (local operator)`;
  const result = await withStore(databaseUrl, async (store) => {
    const pins = await pinsOf(store, cfg, connection);
    if (opts.tool !== undefined && !pins.some((p) => p.tool === opts.tool)) {
      throw new UsageError(`--tool: '${opts.tool}' has never been listed by '${connection}'; pinned tools: ${pins.map((p) => p.tool).join(", ") || "none yet"}`);
    }
    return store.repin(connection, by, opts.tool);
  });
  if (opts.json) {
    return void process.stdout.write(JSON.stringify({ connection, by, repinned: result.repinned.map((r) => ({ ...r, summary: summarizeChanges(r.changes) })) }, null, 2) + "\n");
  }
  if (result.repinned.length === 0) {
    return void process.stdout.write(`nothing to re-pin: ${opts.tool ? `'${opts.tool}' matches its pin` : `every tool of '${connection}' matches its pin`}\n`);
  }
  for (const r of result.repinned) {
    process.stdout.write(`re-pinned ${connection}/${r.tool}: ${r.previousHash.slice(0, 12)} → ${r.hash.slice(0, 12)} (${summarizeChanges(r.changes)}), by ${by}\n`);
  }
}

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "unknown";
  }
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write([line(head), ...rows.map(line)].join("\n") + "\n");
}
