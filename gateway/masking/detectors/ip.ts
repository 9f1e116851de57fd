/**
 * IP addresses (v4 and v6).
 *
 * Telling IPv4 addresses from dotted version strings (`1.2.3.4` can be either):
 * 1. Octets must be 0–255 written without leading zeros (`1.02.3.4` is a version), and the
 *    address must stand alone: no further `.digit` (`1.2.3.4.5`), no word character or `-`
 *    glued on either side (`v1.2.3.4`, `pkg-1.2.3.4`, `1.2.3.4-beta`, `1.2.3.4rc1`).
 * 2. A name and a slash before it means a product version (`nginx/1.22.1.0`, `Mozilla/5.0`);
 *    `//` before it (a URL host) means an address.
 * 3. `@` before it is a package version (`pkg@1.2.3.4`).
 * 4. A version word shortly before it ("version", "ver", "release", "build", "firmware", "rev",
 *    "v" with a space) or a JSON field whose name contains "version" makes it a version.
 * 5. Four single-digit parts (`2.4.1.3`) read as a version unless an address word ("ip",
 *    "host", "server", "from", "dns", …) precedes it: `8.8.8.8` after "dns" stays an address.
 * 6. `0.0.0.0` (the unspecified address) is left alone: it names no host.
 * Anything else of the right shape is taken for an address; the engine lets configs turn IP
 * masking off entirely or for v6 only.
 *
 * IPv6 candidates must contain `::` or seven colons, at least three groups, and pass
 * `net.isIPv6`, which keeps out times (`12:30:45`), MAC addresses and `std::vector`.
 */
import { isIPv6 } from "node:net";
import type { Detector, ScanContext, Span } from "../types.js";

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
/** Found with a plain scan (no lookaround, so V8 skips ahead fast), then checked strictly. */
const V4_CANDIDATE = /\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/g;
const V4_STRICT = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const GLUED_BEFORE = /[\w.@-]/;
const GLUED_AFTER = /^(?:[\w-]|\.\d)/;
/** Sticky: tried only where a colon is, from the start of the hex group before it. */
const V6 = /[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[A-Za-z0-9]{1,15})?(?![\w:])/y;
const HEX_OR_WORD = /[\w:.]/;

function isHexDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}
const VERSION_WORDS = /(?:version|\bver\b|release|build|firmware|\brev\b|\bv)[\s:=#"']{0,4}$/;

const ADDRESS_WORDS = /\b(?:ip|ips|ipv4|addr|address|host|server|dns|resolver|nameserver|from|to|peer|client|gateway|route|via|remote|origin|src|dst)\b/;

function looksLikeVersion(text: string, start: number, candidate: string, ctx: ScanContext): boolean {
  if (ctx.key !== undefined && ctx.key.includes("version")) return true;
  const before = text.slice(Math.max(0, start - 16), start).toLowerCase();
  if (/[a-z0-9]\/$/.test(before)) return true; // product/1.2.3.4; but "//1.2.3.4" ends in "/" after "/"
  if (VERSION_WORDS.test(before)) return true;
  return /^\d\.\d\.\d\.\d$/.test(candidate) && !ADDRESS_WORDS.test(text.slice(Math.max(0, start - 24), start).toLowerCase());
}

/** Loopback names no one: `127.0.0.1:8080` is this machine, on every machine. */
function notPersonalV4(address: string): boolean {
  return address.startsWith("127.");
}
function notPersonalV6(address: string): boolean {
  return address === "::1" || address === "::";
}

export function createIpDetector(options: { v6: boolean }): Detector {
  return {
    id: "ip_address",
    category: "personal",
    patterns: [V4_CANDIDATE, V4_STRICT, GLUED_BEFORE, GLUED_AFTER, V6, HEX_OR_WORD, VERSION_WORDS, ADDRESS_WORDS],
    needs: (f) => (f.dot && f.digits >= 4) || (options.v6 && f.colons >= 2),
    find(text: string, ctx: ScanContext, out: Span[]): void {
      if (text.includes(".")) {
        V4_CANDIDATE.lastIndex = 0;
        for (let m = V4_CANDIDATE.exec(text); m !== null; m = V4_CANDIDATE.exec(text)) {
          const end = m.index + m[0].length;
          if (m.index > 0 && GLUED_BEFORE.test(text[m.index - 1]!)) continue;
          if (GLUED_AFTER.test(text.slice(end, end + 2)) || !V4_STRICT.test(m[0])) continue;
          if (m[0] === "0.0.0.0" || notPersonalV4(m[0]) || looksLikeVersion(text, m.index, m[0], ctx)) continue;
          out.push({ start: m.index, end: m.index + m[0].length, type: "ip_address" });
        }
      }
      if (options.v6) {
        let from = 0;
        let colon = text.indexOf(":");
        while (colon >= 0) {
          // Every IPv6 address has two colons at most 5 apart; JSON's `"key":value` colons do not.
          const nextColon = text.indexOf(":", Math.max(colon + 1, from));
          if (nextColon < 0) break;
          if (nextColon - colon > 5 || colon < from) {
            colon = nextColon;
            continue;
          }
          from = colon + 1;
          colon = nextColon;
          let start = from - 1;
          const colonAt = start;
          while (start > 0 && colonAt - start < 4 && isHexDigit(text.charCodeAt(start - 1))) start--;
          if (start > 0 && HEX_OR_WORD.test(text[start - 1] ?? "")) continue;
          V6.lastIndex = start;
          const m = V6.exec(text);
          if (!m) continue;
          const candidate = m[0];
          from = start + candidate.length;
          const address = candidate.split("%")[0] ?? "";
          const colons = address.split(":").length - 1;
          if (!address.includes("::") && colons !== 7) continue;
          if (address.split(":").filter((g) => g.length > 0).length < 3) continue;
          if (!isIPv6(address) || notPersonalV6(address)) continue;
          out.push({ start: m.index, end: m.index + candidate.length, type: "ip_address" });
        }
      }
    },
  };
}
