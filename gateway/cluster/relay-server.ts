// The internal listener (cluster.internalPort): peers relay here the requests for sessions this
// replica holds. A request is admitted only with a valid peer signature (peer-auth.ts) whose body
// hash matches the body received, and only for the MCP fronts; it then goes through the same
// routes, hooks and authentication as a request on the public port.
import { createServer, IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { CountersignError, writeError } from "../errors.js";
import type { Logger } from "../log.js";
import type { RejectionLog } from "../audit/rejections.js";
import type { KeyRing } from "../keys/ring.js";
import { RELAY_HEADER, relayBodyProblem, verifyRelay } from "./peer-auth.js";
import { markRelayed } from "./relayed.js";
import { httpRequestIdOf } from "../server.js";

export interface RelayServer {
  server: Server;
  /** e.g. http://127.0.0.1:8081 */
  address: string;
  close(): Promise<void>;
}

const FRONT_PATH = /^\/(mcp|sse)\//;

function refuse(res: ServerResponse, err: CountersignError, httpRequestId: string): void {
  writeError(res, err, { headers: { "x-request-id": httpRequestId }, httpRequestId });
}

/** Reads a request body whole, at most `limit` bytes; undefined when it is larger. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/**
 * The request as Fastify will read it: the same head and socket, its body replayed from the
 * bytes whose hash was checked (the original stream is consumed by then).
 */
function replayed(original: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new IncomingMessage(original.socket);
  copy.method = original.method!;
  copy.url = original.url!;
  copy.headers = original.headers;
  copy.rawHeaders = original.rawHeaders;
  copy.httpVersion = original.httpVersion;
  copy.httpVersionMajor = original.httpVersionMajor;
  copy.httpVersionMinor = original.httpVersionMinor;
  if (body.length > 0) copy.push(body);
  copy.push(null);
  // Whole already: destroying it later must not abort the connection.
  copy.complete = true;
  return copy;
}

export async function startRelayServer(app: FastifyInstance, opts: { host: string; port: number; keys: KeyRing; log: Logger; rejections?: RejectionLog | undefined }): Promise<RelayServer> {
  const bodyLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  const refuseUnauthorized = (req: IncomingMessage, res: ServerResponse, url: string, problem: string) => {
    const logId = httpRequestIdOf(req);
    opts.log.warn({ reqId: logId, remoteAddress: req.socket.remoteAddress, method: req.method, path: url.split("?")[0], problem }, "relay refused");
    opts.rejections?.recordError("CS_ERR_RELAY_UNAUTHORIZED", { requestId: logId }, { remoteAddress: req.socket.remoteAddress ?? null, path: url.split("?")[0]!.slice(0, 200), problem });
    refuse(res, new CountersignError("CS_ERR_RELAY_UNAUTHORIZED", problem), logId);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    const httpRequestId = typeof req.headers["x-request-id"] === "string" ? req.headers["x-request-id"] : "";
    const header = req.headers[RELAY_HEADER];
    // The signature first: no body is read for a request no peer signed.
    const signed = verifyRelay(opts.keys, typeof header === "string" ? header : undefined, req.method ?? "", url, httpRequestId);
    if (!signed.ok) return refuseUnauthorized(req, res, url, signed.problem);
    if (!FRONT_PATH.test(url)) return refuse(res, new CountersignError("CS_ERR_NOT_FOUND", "the internal port serves relayed MCP requests only"), httpRequestId);
    readBody(req, bodyLimit).then(
      (body) => {
        if (!body) return refuse(res, new CountersignError("CS_ERR_BODY_TOO_LARGE"), httpRequestIdOf(req));
        const problem = relayBodyProblem(signed.bodyHash, body);
        if (problem) return refuseUnauthorized(req, res, url, problem);
        const copy = replayed(req, body);
        markRelayed(copy);
        app.routing(copy, res);
      },
      () => res.destroy(),
    );
  });
  // The same deadline for a whole request as on the public port.
  server.requestTimeout = app.server.requestTimeout;
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
