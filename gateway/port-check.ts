// Whether a listening port is free, checked before anything slow (the database, migrations) so a
// busy port is reported in a moment, with the setting that changes it.
import { createServer } from "node:net";

export class PortInUseError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly setting: string,
  ) {
    super(`port ${port} on ${host} is already in use (another gateway, or another program): stop that, or choose a free port with ${setting}`);
  }
}

/** Resolves when `host:port` can be bound now; port 0 (any free port) always can. */
export async function assertPortFree(host: string, port: number, setting: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new PortInUseError(host, port, setting) : new Error(`cannot listen on ${host}:${port}: ${err.message} (${setting})`)),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
