// The internal listener (cluster.internalPort): peers relay here the requests for sessions this
// replica holds. A request is admitted only with a valid peer signature (peer-auth.ts), and only
// for the MCP fronts; it then goes through the same routes, hooks and authentication as a
// request on the public port.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { CountersignError, jsonRpcErrorResponse } from "../errors.js";
import type { Logger } from "../log.js";
import type { RejectionLog } from "../audit/rejections.js";
import { RELAY_HEADER, verifyRelay } from "./peer-auth.js";
import { markRelayed } from "./relayed.js";
import { requestIdOf } from "../server.js";

export interface RelayServer {
  server: Server;
  /** e.g. http://127.0.0.1:8081 */
  address: string;
  close(): Promise<void>;
}

const FRONT_PATH = /^\/(mcp|sse)\//;

function refuse(res: ServerResponse, err: CountersignError, requestId: string): void {
  res.writeHead(err.http, { "content-type": "application/json", "x-request-id": requestId });
  res.end(JSON.stringify(jsonRpcErrorResponse(null, err)));
}

export async function startRelayServer(app: FastifyInstance, opts: { host: string; port: number; secret: string; log: Logger; rejections?: RejectionLog | undefined }): Promise<RelayServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    const requestId = typeof req.headers["x-request-id"] === "string" ? req.headers["x-request-id"] : "";
    const header = req.headers[RELAY_HEADER];
    const problem = verifyRelay(opts.secret, typeof header === "string" ? header : undefined, req.method ?? "", url, requestId);
    if (problem) {
      const logId = requestIdOf(req);
      opts.log.warn({ reqId: logId, remoteAddress: req.socket.remoteAddress, method: req.method, path: url.split("?")[0], problem }, "relay refused");
      opts.rejections?.recordError("CS_ERR_RELAY_UNAUTHORIZED", { requestId: logId }, { remoteAddress: req.socket.remoteAddress ?? null, path: url.split("?")[0]!.slice(0, 200), problem });
      return refuse(res, new CountersignError("CS_ERR_RELAY_UNAUTHORIZED", problem), logId);
    }
    if (!FRONT_PATH.test(url)) return refuse(res, new CountersignError("CS_ERR_NOT_FOUND", "the internal port serves relayed MCP requests only"), requestId);
    markRelayed(req);
    app.routing(req, res);
  });
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
