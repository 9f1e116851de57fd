// Fixed key ids: the rings of one made from the single keys configured before the keyring
// (keys.ring absent), and the key of this process only. Kept apart so that consumers can name
// them without loading the configuration.
export const LEGACY_KEY_IDS = { requestState: "legacy-arguments-key", console: "console-session-key", relay: "cluster-secret", masking: "masking-hmac" } as const;

/** The id of a key of this process only (no key configured). */
export const PROCESS_KEY_ID = "process-only";
