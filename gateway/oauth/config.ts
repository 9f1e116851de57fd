// The authorization server's configuration as the gateway uses it (durations in milliseconds,
// secrets resolved): the `oauth` slice of the configuration, shaped by config/schema.ts.
export type { OAuthConfig } from "../config/load.js";
