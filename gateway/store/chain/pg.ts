// The chain's own PostgreSQL connections (plain `pg`, not Prisma): the sealer holds a session-level
// advisory lock for as long as it leads, which needs one dedicated connection, and hashing needs
// the session time zone pinned to UTC (to_jsonb formats timestamps in it).
import pg from "pg";

/** Held for as long as one instance is the sealer (session lock). */
export const LEADER_LOCK_KEY = 0x436f756e_7465720an; // "Counter\n"
/** Taken by every transaction that appends to the chain or signs its head (transaction lock). */
export const APPEND_LOCK_KEY = 0x436f756e_74657221n; // "Counter!"

export async function connectChainClient(url: string, onError?: (err: Error) => void, applicationName = "countersign-chain"): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, keepAlive: true, application_name: applicationName });
  // An idle connection that breaks emits 'error'; unhandled it would end the process.
  client.on("error", (err) => onError?.(err));
  await client.connect();
  try {
    await client.query("SET TIME ZONE 'UTC'");
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  return client;
}

/** Ends a client without waiting on a dead socket. */
export async function closeChainClient(client: pg.Client | undefined, timeoutMs = 2000): Promise<void> {
  if (!client) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        resolve();
      }, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}

export async function inTransaction<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  try {
    const out = await fn();
    await client.query("COMMIT");
    return out;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

const idTypes = new WeakMap<pg.Client, Map<string, string>>();

/** The SQL type of `<table>.id` (bigint, text, ...), for typed array parameters that use its index. */
export async function idType(client: pg.Client, table: string): Promise<string> {
  let byTable = idTypes.get(client);
  if (!byTable) idTypes.set(client, (byTable = new Map()));
  const known = byTable.get(table);
  if (known) return known;
  const res = await client.query<{ t: string | null }>(
    `SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'id' AND NOT a.attisdropped`,
    [`"${table.replace(/"/g, '""')}"`],
  );
  const t = res.rows[0]?.t;
  if (!t || !/^[a-z ]+(\(\d+\))?$/.test(t)) throw new Error(`audit source '${table}' has no usable id column`);
  byTable.set(table, t);
  return t;
}

/** Takes the sealer's leader lock on this session, if no other session holds it. */
export async function tryLeaderLock(client: pg.Client): Promise<boolean> {
  const res = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [LEADER_LOCK_KEY.toString()]);
  return res.rows[0]?.ok === true;
}
