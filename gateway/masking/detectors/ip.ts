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
const V4 = new RegExp(`(?<![\\w.@-])${OCTET}(?:\\.${OCTET}){3}(?![\\w-]|\\.\\d)`, "g");
const V6 = /(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[A-Za-z0-9]{1,15})?(?![\w:])/g;
const VERSION_WORDS = /(?:version|\bver\b|release|build|firmware|\brev\b|\bv)[\s:=#"']{0,4}$/;

const ADDRESS_WORDS = /\b(?:ip|ips|ipv4|addr|address|host|server|dns|resolver|nameserver|from|to|peer|client|gateway|route|via|remote|origin|src|dst)\b/;

function looksLikeVersion(text: string, start: number, candidate: string, ctx: ScanContext): boolean {
  if (ctx.key !== undefined && ctx.key.includes("version")) return true;
  const before = text.slice(Math.max(0, start - 16), start).toLowerCase();
  if (/[a-z0-9]\/$/.test(before)) return true; // product/1.2.3.4; but "//1.2.3.4" ends in "/" after "/"
  if (VERSION_WORDS.test(before)) return true;
  return /^\d\.\d\.\d\.\d$/.test(candidate) && !ADDRESS_WORDS.test(text.slice(Math.max(0, start - 24), start).toLowerCase());
}

export function createIpDetector(options: { v6: boolean }): Detector {
  return {
    id: "ip_address",
    category: "personal",
    patterns: [V4, V6, VERSION_WORDS, ADDRESS_WORDS],
    needs: (f) => (f.dot && f.digits >= 4) || (options.v6 && f.colons >= 2),
    find(text: string, ctx: ScanContext, out: Span[]): void {
      if (text.includes(".")) {
        V4.lastIndex = 0;
        for (let m = V4.exec(text); m !== null; m = V4.exec(text)) {
          if (m[0] === "0.0.0.0" || looksLikeVersion(text, m.index, m[0], ctx)) continue;
          out.push({ start: m.index, end: m.index + m[0].length, type: "ip_address" });
        }
      }
      if (options.v6 && text.includes(":") && (text.includes("::") || /(?::[^:]*){7}/.test(text))) {
        V6.lastIndex = 0;
        for (let m = V6.exec(text); m !== null; m = V6.exec(text)) {
          const candidate = m[0];
          const address = candidate.split("%")[0] ?? "";
          const colons = address.split(":").length - 1;
          if (!address.includes("::") && colons !== 7) continue;
          if (address.split(":").filter((g) => g.length > 0).length < 3) continue;
          if (!isIPv6(address)) continue;
          out.push({ start: m.index, end: m.index + candidate.length, type: "ip_address" });
        }
      }
    },
  };
}
