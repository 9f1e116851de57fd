import type { Detector, ScanContext, Span } from "../types.js";

const USERINFO = /:\/\/([^\s:@/?#"'<>]{0,256}):([^\s@/?#"'<>]{1,256})@[A-Za-z0-9[]/y;

/** `${DB_PASSWORD}`, `{{ pass }}`, `<password>`, `****`: references and placeholders, not secrets. */
export function isPlaceholder(value: string): boolean {
  return /^(?:\$\{|\$\(|\{\{|<|%\(|\*+$|x+$|\[MASKED|process\.env|os\.environ|getenv|system\.getenv|env\[|env\()/i.test(value);
}

/**
 * Passwords in URLs and connection strings: `scheme://user:pass@host`. Only the password is
 * masked, so the record still shows which host and user were involved. Anchored on `://`.
 */
export const urlPassword: Detector = {
  id: "url_password",
  category: "credential",
  patterns: [USERINFO],
  needs: (f) => f.colon && f.at,
  find(text: string, _ctx: ScanContext, out: Span[]): void {
    let from = 0;
    for (;;) {
      const at = text.indexOf("://", from);
      if (at < 0) return;
      from = at + 3;
      USERINFO.lastIndex = at;
      const m = USERINFO.exec(text);
      if (!m || m[2] === undefined || isPlaceholder(m[2])) continue;
      const start = at + 3 + (m[1]?.length ?? 0) + 1;
      out.push({ start, end: start + m[2].length, type: "url_password" });
    }
  },
};
