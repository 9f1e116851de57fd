// Whether each connection's upstream could be started: for stdio, that its command resolves to
// an executable file; HTTP upstreams are checked when a session opens.
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { ConnectionConfig } from "./config/load.js";

export function commandResolves(command: string, cwd: string | undefined): boolean {
  const candidates = isAbsolute(command) || command.includes("/")
    ? [resolve(cwd ?? process.cwd(), command)]
    : (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function checkUpstreams(connections: ConnectionConfig[]): Record<string, { kind: string; startable: boolean | "unchecked" }> {
  return Object.fromEntries(
    connections.map((c) => [
      c.name,
      {
        kind: c.upstream.type,
        startable: c.upstream.type === "stdio" ? commandResolves(c.upstream.command, c.upstream.cwd) : ("unchecked" as const),
      },
    ]),
  );
}
