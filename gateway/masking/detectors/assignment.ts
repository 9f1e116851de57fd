import type { Detector, ScanContext, Span } from "../types.js";
import { isPlaceholder } from "./url-password.js";

/**
 * Names whose value is a secret: `password=`, `DB_PASSWORD:`, `"api_key": "…"`, `client_secret`,
 * `access_token`, `SECRET_KEY_BASE`. What may follow the name is an allow-list, so names that
 * merely mention a secret (`secretName`, `password_hint`, `token_count`, `max_tokens`,
 * `tokenizer`) are not taken for secrets.
 */
const SECRET_NAME =
  /(?:password|passwd|passphrase|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|session[_-]?token|private[_-]?token|token)([A-Za-z0-9_.-]{0,30})/gi;
const SECRET_SUFFIX =
  /^(?:[_.-]?(?:key|value|secret|token|base|string|b64|base64|plain|raw|hash|confirmation|[0-9]{1,2})(?:[_.-]?(?:base|value|key|[0-9]{1,2}))?)?$/i;
const SEPARATOR = /["']?\s{0,3}(?:=>|:=|[:=])\s{0,3}/y;
const BARE_VALUE = /[^\s"',;<>)}\]]{1,512}/y;
/** After `=` with no spaces the value may be a URL query parameter, which ends at `&`. */
const QUERY_VALUE = /[^\s"',;&<>)}\]]{1,512}/y;
const DEFAULT_VALUES = /^(?:true|false|null|none|nil|undefined|""|''|required|optional|string|yes|no)$/i;

/** `https://x-access-token:…@host`: the url_password detector owns URL credentials. */
function insideUrlUserinfo(text: string, nameStart: number): boolean {
  const scheme = text.lastIndexOf("://", nameStart);
  return scheme >= 0 && nameStart - scheme <= 64 && !/[\s"'@/]/.test(text.slice(scheme + 3, nameStart));
}

/**
 * `pageToken`, `nextPageToken`, `progressToken`, `continuationToken`, `syncToken`: cursors and
 * correlation ids that APIs name "token". Masking them breaks pagination and progress, and they
 * grant nothing.
 */
const CURSOR_TOKEN_BEFORE = /(?:page|progress|continuation|sync|cancellation|pagination)[_.-]?$/i;

function isCursorToken(text: string, nameStart: number, name: string): boolean {
  return /^token/i.test(name) && CURSOR_TOKEN_BEFORE.test(text.slice(Math.max(0, nameStart - 16), nameStart));
}

export function secretValueWorthMasking(value: string): boolean {
  return value.length >= 3 && !DEFAULT_VALUES.test(value) && !isPlaceholder(value);
}

/** True when a JSON field of this name holds a secret (used by the engine for structured values). */
export function isSecretFieldName(key: string): boolean {
  // Every start is tried: `aws_secret_access_key` and `SecretAccessKey` end in a secret name
  // (`access_key`) that the first match (`secret` + `_access_key`) hides.
  SECRET_NAME.lastIndex = 0;
  for (let m = SECRET_NAME.exec(key); m !== null; m = SECRET_NAME.exec(key)) {
    if (m.index + m[0].length === key.length && SECRET_SUFFIX.test(m[1] ?? "") && !isCursorToken(key, m.index, m[0])) return true;
    SECRET_NAME.lastIndex = m.index + 1;
  }
  return false;
}

/** `name = value` assignments in text (.env files, YAML, logs, JSON as text): masks the value. */
export const secretAssignment: Detector = {
  id: "secret_assignment",
  category: "credential",
  patterns: [SECRET_NAME, SEPARATOR, BARE_VALUE, QUERY_VALUE],
  needs: (f) => f.colon || f.equals,
  find(text: string, _ctx: ScanContext, out: Span[]): void {
    SECRET_NAME.lastIndex = 0;
    for (let m = SECRET_NAME.exec(text); m !== null; m = SECRET_NAME.exec(text)) {
      const suffix = m[1] ?? "";
      if (!SECRET_SUFFIX.test(suffix) || isCursorToken(text, m.index, m[0])) {
        SECRET_NAME.lastIndex = m.index + 1; // "secret_access_key": try "access_key" too
        continue;
      }
      const afterName = m.index + m[0].length;
      if (insideUrlUserinfo(text, m.index)) continue;
      SEPARATOR.lastIndex = afterName;
      if (!SEPARATOR.test(text)) {
        SECRET_NAME.lastIndex = m.index + 1;
        continue;
      }
      let start = SEPARATOR.lastIndex;
      let end: number;
      const quote = text[start];
      if (quote === '"' || quote === "'") {
        start++;
        end = start;
        while (end < text.length && end - start <= 512 && text[end] !== quote && text[end] !== "\n") {
          end += text[end] === "\\" ? 2 : 1;
        }
        if (end > text.length) end = text.length;
      } else {
        const bare = text[start - 1] === "=" && text[afterName] === "=" ? QUERY_VALUE : BARE_VALUE;
        bare.lastIndex = start;
        if (!bare.test(text)) continue;
        end = bare.lastIndex;
      }
      const value = text.slice(start, end);
      if (!secretValueWorthMasking(value)) continue;
      out.push({ start, end, type: "secret_assignment" });
      SECRET_NAME.lastIndex = end;
    }
  },
};
