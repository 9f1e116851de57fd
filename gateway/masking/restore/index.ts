/** Restore: pseudonyms a caller was shown, sent back by the same caller, become the originals again. */
export { PgRestorer, type Restorer, type RestoreResult, type PgRestorerOptions } from "./restorer.js";
export { restoreRequest, rememberIssued, restoredEvent, type RestoreOutcome, type IssuedView } from "./stage.js";
