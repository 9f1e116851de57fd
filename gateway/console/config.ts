// The console's options as the gateway reads them: the `console` slice of the configuration
// schema, resolved there (timeouts in milliseconds, each login with its trusted issuer's claims;
// a login through an issuer absent from auth.issuers is refused at load).
import type { ConsoleConfig } from "../config/load.js";

export type { ConsoleConfig };
export type ConsoleLoginIssuer = ConsoleConfig["login"][number];
export type DevUser = NonNullable<ConsoleConfig["devUsers"]>[number];
