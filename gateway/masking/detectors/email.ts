import type { Detector, ScanContext, Span } from "../types.js";

const LOCAL = /[A-Za-z0-9._%+-]/;
const DOMAIN_AFTER_AT = /[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])/y;
/** `icon@2x.png`: asset names that look like addresses. */
const FILE_EXTENSIONS = new Set(["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "js", "ts", "css", "json", "map"]);

/** E-mail addresses, anchored on each `@` and grown left and right. */
export const email: Detector = {
  id: "email",
  category: "personal",
  patterns: [LOCAL, DOMAIN_AFTER_AT],
  needs: (f) => f.at,
  find(text: string, _ctx: ScanContext, out: Span[]): void {
    let from = 0;
    for (;;) {
      const at = text.indexOf("@", from);
      if (at < 0) return;
      from = at + 1;
      let start = at;
      while (start > 0 && at - start < 64 && LOCAL.test(text[start - 1] ?? "")) start--;
      while (start < at && text[start] === ".") start++;
      if (start === at) continue;
      const before = text[start - 1];
      if (before === ":" || before === "/") continue; // URL userinfo, handled by url_password
      DOMAIN_AFTER_AT.lastIndex = at + 1;
      const m = DOMAIN_AFTER_AT.exec(text);
      if (!m) continue;
      const tld = m[0].slice(m[0].lastIndexOf(".") + 1).toLowerCase();
      if (FILE_EXTENSIONS.has(tld)) continue;
      const end = at + 1 + m[0].length;
      // `git@github.com:org/repo.git`: scp-style SSH remotes name a host, not a mailbox.
      if (text.charCodeAt(end) === 58 && /[\w~./-]/.test(text[end + 1] ?? "")) {
        from = end;
        continue;
      }
      out.push({ start, end, type: "email" });
      from = end;
    }
  },
};
