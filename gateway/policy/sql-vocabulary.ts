/**
 * The words the SQL classifier speaks: statement classes and flags. Kept apart from the parser so
 * the configuration schema can name them without loading the parser (a WebAssembly module).
 */

/**
 * What one statement does.
 * - `read`: SELECT (without FOR UPDATE/SHARE, INTO, data-modifying CTEs or side-effect
 *   functions), SHOW, EXPLAIN without ANALYZE, COPY ... TO STDOUT, FETCH, DECLARE of a read cursor.
 * - `write`: INSERT, UPDATE, DELETE, MERGE, COPY FROM, COPY TO a server file or program,
 *   SELECT ... FOR UPDATE/SHARE, SELECT with a data-modifying CTE or a side-effect function,
 *   LOCK, VACUUM, CLUSTER, REFRESH MATERIALIZED VIEW.
 * - `ddl`: CREATE, ALTER, DROP, TRUNCATE, GRANT, REVOKE, COMMENT, SELECT INTO, and every other
 *   statement not listed here (unlisted means "changes the schema or the server": fail closed).
 * - `transaction`: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE.
 * - `other`: SET, RESET, DISCARD, LISTEN, NOTIFY, UNLISTEN, DEALLOCATE, CLOSE, CHECKPOINT.
 * - `unknown`: text the PostgreSQL parser rejects, DO blocks, CALL, EXECUTE, LOAD: what runs
 *   cannot be known from the text. `is: [write]` and `is: [ddl]` both match `unknown`.
 */
export const SQL_CLASSES = ["read", "write", "ddl", "transaction", "other", "unknown"] as const;
export type SqlClass = (typeof SQL_CLASSES)[number];

/** Facts about a statement or script that rules can test with `has`. */
export const SQL_FLAGS = [
  "delete_without_where", // DELETE with no WHERE, or WHERE true / WHERE 1=1
  "update_without_where", // UPDATE likewise
  "drop", // DROP of anything, ALTER TABLE ... DROP COLUMN/CONSTRAINT
  "truncate",
  "grant", // GRANT or REVOKE (privileges or roles)
  "multiple_statements",
  "data_modifying_cte", // WITH x AS (DELETE/UPDATE/INSERT/MERGE ...)
  "row_lock", // SELECT ... FOR UPDATE / FOR SHARE
  "select_into", // SELECT ... INTO creates a table
  "explain_analyze", // EXPLAIN ANALYZE executes the statement it explains
  "copy_program", // COPY ... FROM/TO PROGRAM runs a shell command on the server
  "copy_to_file", // COPY ... TO 'file' writes a file on the server
  "side_effect_function", // a call to a function with side effects (nextval, pg_terminate_backend, dblink_exec, ...)
  "procedural", // DO, CALL, EXECUTE, LOAD: runs code the text does not show
  "unparseable", // the PostgreSQL parser rejects the text (or it is too large to parse)
  "empty", // nothing but whitespace and comments
] as const;
export type SqlFlag = (typeof SQL_FLAGS)[number];
