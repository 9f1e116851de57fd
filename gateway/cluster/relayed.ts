// Which requests arrived through the internal relay listener, with a valid peer signature. Kept
// by object identity, not by a header, so a client on the public port cannot claim it.
import type { IncomingMessage } from "node:http";
import type { FastifyRequest } from "fastify";
import { CLIENT_ADDRESS_HEADER } from "./peer-auth.js";

const admitted = new WeakSet<IncomingMessage>();

export function markRelayed(raw: IncomingMessage): void {
  admitted.add(raw);
}

export function isRelayed(raw: IncomingMessage): boolean {
  return admitted.has(raw);
}

/** The caller's address: for a relayed request, the one the relaying replica saw. */
export function callerAddress(req: FastifyRequest): string {
  if (isRelayed(req.raw)) {
    const v = req.headers[CLIENT_ADDRESS_HEADER];
    if (typeof v === "string" && v.length > 0 && v.length <= 64) return v;
  }
  return req.ip;
}
