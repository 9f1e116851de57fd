// Instances (one row per gateway process) and who owns which session: the heartbeat, the
// claiming of replicas that stopped reporting, and the owner lookup of gateway/cluster/. Times are
// the database's own, so the replicas' clocks do not matter.
import type { Db } from "./client.js";

export interface InstanceRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  relayUrl: string | null;
}

export interface SessionOwner {
  connection: string;
  frontTransport: string;
  closed: boolean;
  closeReason: string | null;
  ownerInstanceId: string;
  relayUrl: string | null;
  alive: boolean;
}

export async function registerInstance(db: Db, row: InstanceRow): Promise<void> {
  await db.instance.create({ data: row });
}

export async function markInstanceStopped(db: Db, id: string): Promise<void> {
  await db.instance.update({ where: { id }, data: { stoppedAt: new Date() } });
}

/** Marks stopped the other replicas silent for `deadAfterSeconds` (one UPDATE claims each); returns their ids. */
export async function claimDeadInstances(db: Db, instanceId: string, deadAfterSeconds: number): Promise<string[]> {
  const dead = await db.$queryRawUnsafe<Array<{ id: string }>>(
    `UPDATE "instances" SET "stoppedAt" = now()
      WHERE "stoppedAt" IS NULL AND "id" <> $1 AND "lastSeenAt" < now() - make_interval(secs => $2)
      RETURNING "id"`,
    instanceId,
    deadAfterSeconds,
  );
  return dead.map((d) => d.id);
}

/** Closes a dead replica's open sessions as `owner_gone`, each with its event in the same statement; returns their ids. */
export async function closeSessionsOfDeadOwner(db: Db, ownerId: string, closedBy: string): Promise<string[]> {
  const sessions = await db.$queryRawUnsafe<Array<{ id: string }>>(
    `WITH closed AS (
       UPDATE "sessions" SET "closedAt" = now(), "closeReason" = 'owner_gone'
        WHERE "ownerInstanceId" = $1 AND "closedAt" IS NULL
        RETURNING "id", "connection")
     INSERT INTO "events" ("type", "reason", "sessionId", "connection", "detail")
     SELECT 'session_closed', 'owner_gone', "id", "connection", jsonb_build_object('ownerInstanceId', $1::text, 'closedBy', $2::text) FROM closed
     RETURNING "sessionId" AS "id"`,
    ownerId,
    closedBy,
  );
  return sessions.map((s) => s.id);
}

/** One heartbeat; true when another replica had declared this one dead. */
export async function heartbeat(db: Db, instanceId: string): Promise<boolean> {
  const rows = await db.$queryRawUnsafe<Array<{ declaredDead: boolean }>>(
    `WITH prev AS (SELECT "stoppedAt" FROM "instances" WHERE "id" = $1 FOR UPDATE)
     UPDATE "instances" i SET "lastSeenAt" = now(), "stoppedAt" = NULL FROM prev
      WHERE i."id" = $1
     RETURNING (prev."stoppedAt" IS NOT NULL) AS "declaredDead"`,
    instanceId,
  );
  return rows[0]?.declaredDead === true;
}

/** How many other replicas are live on this database. */
export async function livePeers(db: Db, instanceId: string, deadAfterSeconds: number): Promise<number> {
  const rows = await db.$queryRawUnsafe<Array<{ n: number }>>(
    `SELECT count(*)::int AS n FROM "instances" WHERE "id" <> $1 AND "stoppedAt" IS NULL AND "lastSeenAt" > now() - make_interval(secs => $2)`,
    instanceId,
    deadAfterSeconds,
  );
  return rows[0]?.n ?? 0;
}

/** Which replica holds a session, and whether it is alive (not stopped, heard from within `deadAfterSeconds`). */
export async function sessionOwner(db: Db, sessionId: string, deadAfterSeconds: number): Promise<SessionOwner | undefined> {
  const rows = await db.$queryRawUnsafe<SessionOwner[]>(
    `SELECT s."connection", s."frontTransport", s."closedAt" IS NOT NULL AS closed, s."closeReason", s."ownerInstanceId", i."relayUrl",
            (i."stoppedAt" IS NULL AND i."lastSeenAt" > now() - make_interval(secs => $2)) AS alive
       FROM "sessions" s JOIN "instances" i ON i."id" = s."ownerInstanceId"
      WHERE s."id" = $1`,
    sessionId,
    deadAfterSeconds,
  );
  return rows[0];
}
