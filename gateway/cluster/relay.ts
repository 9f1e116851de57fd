// What a front does with a session this replica does not hold: relay the request to the replica
// that does (owner alive), or say clearly that the session is gone so the client re-initialises.
// A relayed request is never relayed again.
import type { FastifyReply, FastifyRequest } from "fastify";
import { CountersignError } from "../errors.js";
import type { KeyRing } from "../keys/ring.js";
import type { OwnerLookup } from "./owner-lookup.js";
import { relayRequest } from "./relay-client.js";
import { isRelayed } from "./relayed.js";

export class ClusterRelay {
  /** Relayed requests still being answered (GET streams excluded: they last as long as the client). */
  #inFlight = 0;

  constructor(
    private readonly owners: OwnerLookup,
    /** The keyring's relay keys (replaced in place by a reload). */
    private readonly keys: KeyRing,
    private readonly instanceId: string,
  ) {}

  /**
   * For a session id this replica does not hold. Resolves true once the owner's answer has been
   * relayed to the client; false when no open session of this connection and front has the id
   * (the front answers as for any unknown session). Throws CS_ERR_SESSION_OWNER_GONE or
   * CS_ERR_RELAY_NOT_OWNER, with nothing sent yet.
   */
  async relay(req: FastifyRequest, reply: FastifyReply, sessionId: string, expect: { connection: string; front: "streamable_http" | "sse" }): Promise<boolean> {
    if (isRelayed(req.raw)) throw new CountersignError("CS_ERR_RELAY_NOT_OWNER", `this replica is ${this.instanceId}`);
    const owner = await this.owners.find(sessionId);
    if (!owner || owner.connection !== expect.connection || owner.frontTransport !== expect.front) return false;
    if (owner.closed && owner.closeReason === "owner_gone") {
      throw new CountersignError("CS_ERR_SESSION_OWNER_GONE", `replica ${owner.ownerInstanceId} stopped reporting and its sessions were closed`);
    }
    if (owner.closed) return false;
    // Ours in the database but not in memory: it has ended here.
    if (owner.ownerInstanceId === this.instanceId) return false;
    if (!owner.alive) throw new CountersignError("CS_ERR_SESSION_OWNER_GONE", `replica ${owner.ownerInstanceId} has stopped or stopped reporting`);
    if (!owner.relayUrl) {
      throw new CountersignError("CS_ERR_SESSION_OWNER_GONE", `replica ${owner.ownerInstanceId} has no internal relay listener (cluster.internalPort), so its sessions are reachable only directly`);
    }
    const counted = req.method !== "GET";
    if (counted) this.#inFlight++;
    try {
      await relayRequest(req, reply, { url: owner.relayUrl, instanceId: owner.ownerInstanceId, keys: this.keys });
    } catch (err) {
      this.owners.forget(sessionId);
      if (err instanceof CountersignError) req.log.warn({ code: err.code, detail: err.detail }, "relay to the session's replica failed");
      throw err;
    } finally {
      if (counted) this.#inFlight--;
    }
    return true;
  }

  /** At shutdown: waits up to `graceMs` for the relayed requests in flight to be answered. */
  async drain(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.#inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}
