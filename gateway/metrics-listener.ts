// The metrics listener (metrics.port): /metrics on a port of its own, so that a network policy can
// admit the monitoring namespace to it and nothing else, and the public Service and Ingress never
// carry it. Only GET /metrics is served here; the request goes through the same route (token
// check included) as it would on the public port.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { CountersignError, writeError } from "./errors.js";

export interface MetricsListener {
  server: Server;
  /** e.g. http://127.0.0.1:9090 */
  address: string;
  close(): Promise<void>;
}

export async function startMetricsListener(app: FastifyInstance, opts: { host: string; port: number }): Promise<MetricsListener> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      return writeError(res, new CountersignError("CS_ERR_NOT_FOUND", "the metrics port serves GET /metrics only", { keyPath: "metrics.port" }));
    }
    app.routing(req, res);
  });
  // A scrape is one small request: no slow-header or slow-body connection holds the port.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    server,
    address: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
