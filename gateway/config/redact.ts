// Configuration as it may be shown or recorded: secret references stay as written ({ env: NAME },
// { file: path }), but a credential typed inline (an upstream header, a child's environment, a
// password in an upstream URL) is hidden. Used wherever configuration leaves the process: the
// config_changed event's diff, `countersign config --json` and the weekly digest.

/** Keys whose inline values may be credentials: header maps, environments, token-like names. */
const CREDENTIAL_PATH = /(^|\.)(headers|env)(\.|\[|$)|token|secret|password|passwd|privatekey|private_key|apikey|api_key|credential/i;

export const REDACTED = "[redacted]";

function isSecretReference(v: unknown): boolean {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === "env" || keys[0] === "file");
}

/** user:password@ in any URL inside the text. */
function hideUrlPasswords(text: string): string {
  return text.replace(/(\/\/[^/:@\s"]*):[^@/\s"]+@/g, "$1:***@");
}

/**
 * One value at a dotted path (`connections[0].upstream.headers.Authorization`): a secret
 * reference as written, an inline value at a credential-bearing path redacted (whole objects and
 * arrays under such a path too, except the references in them), URL passwords hidden.
 */
export function redactConfigValue(path: string, value: unknown): unknown {
  if (value === null || value === undefined || isSecretReference(value)) return value;
  if (Array.isArray(value)) return value.map((v, i) => redactConfigValue(`${path}[${i}]`, v));
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfigValue(path ? `${path}.${k}` : k, v)]));
  }
  if (typeof value !== "string") return value; // numbers and booleans are settings, not credentials
  if (value.startsWith("[secret from ")) return value; // a resolved reference printing itself
  return CREDENTIAL_PATH.test(path) ? REDACTED : hideUrlPasswords(value);
}

/** The whole raw configuration with inline credentials hidden. */
export function redactConfig(raw: unknown): unknown {
  return redactConfigValue("", raw);
}
