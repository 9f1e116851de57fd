// Which replicas are alive, kept in the database: each writes a heartbeat (instances.lastSeenAt,
// in the database's own time) every few seconds. A replica that died without closing its sessions
// (SIGKILL, lost node) is noticed by the first live replica to see its heartbeat older than
// cluster.deadAfterSeconds: that one marks it stopped (one UPDATE, which claims it; the others then
// skip it), closes its open sessions as `owner_gone` and records each closing. A replica that
// stops cleanly closes its own sessions and marks itself stopped.
import type { Db } from "../store/client.js";
import { claimDeadInstances, closeSessionsOfDeadOwner, heartbeat, livePeers } from "../store/instances.js";
import type { Logger } from "../log.js";
import type { SessionRegistry } from "../mcp/sessions.js";

export interface LivenessOptions {
  /** Whether this replica relays (cluster.internalPort set): without it, it warns when it has live peers. */
  relays: boolean;
  db: Db;
  sessions: SessionRegistry;
  instanceId: string;
  deadAfterSeconds: number;
  log: Logger;
}

/** Closes the sessions of replicas that stopped reporting; returns how many. */
export async function sweepDeadOwners(o: Pick<LivenessOptions, "db" | "instanceId" | "deadAfterSeconds" | "log">): Promise<number> {
  const dead = await claimDeadInstances(o.db, o.instanceId, o.deadAfterSeconds);
  let closed = 0;
  for (const id of dead) {
    // The closing and its event commit together: no session is closed without its record.
    const sessions = await closeSessionsOfDeadOwner(o.db, id, o.instanceId);
    closed += sessions.length;
    o.log.warn({ instance: id, sessions: sessions.length }, "a replica stopped reporting: its open sessions are closed (their clients re-initialise)");
  }
  return closed;
}

/**
 * One heartbeat. A replica that finds itself declared dead (it stalled, or lost the database, for
 * longer than deadAfterSeconds) ends its sessions too, as the others have already told their
 * clients, and comes back as a live replica for new sessions.
 */
async function beat(o: LivenessOptions): Promise<void> {
  if (!(await heartbeat(o.db, o.instanceId))) return;
  const open = o.sessions.all();
  o.log.error({ sessions: open.length }, "another replica declared this one dead (no heartbeat for cluster.deadAfterSeconds): its sessions end; new ones are accepted again");
  await Promise.all(open.map((s) => s.close("owner_gone")));
}

/** Without relaying, several replicas on one database each answer only their own sessions: say so. */
async function warnIfPeersWithoutRelay(o: LivenessOptions): Promise<void> {
  if (o.relays) return;
  const peers = await livePeers(o.db, o.instanceId, o.deadAfterSeconds);
  if (peers > 0) {
    o.log.warn({ peers }, "other replicas are live on this database but relaying is off (cluster.internalPort): a request reaching a replica that does not hold its session gets 404; set cluster.internalPort and cluster.secret on every replica");
  }
}

export function startLiveness(o: LivenessOptions): { stop(): Promise<void> } {
  void warnIfPeersWithoutRelay(o).catch(() => {});
  const everyMs = Math.min(5000, (o.deadAfterSeconds * 1000) / 4);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      try {
        await beat(o);
        await sweepDeadOwners(o);
      } catch (err) {
        o.log.debug({ err }, "heartbeat or sweep failed");
      } finally {
        running = false;
      }
    })();
  }, everyMs);
  timer.unref();
  return {
    // Waits for a beat in flight, so it cannot undo the stoppedAt written at shutdown.
    stop: async () => {
      clearInterval(timer);
      while (running) await new Promise((r) => setTimeout(r, 10));
    },
  };
}
