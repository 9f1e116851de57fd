/**
 * Format-preserving, deterministic pseudonyms for personal data. The same value in the same
 * scope (caller identity + connection) always gets the same pseudonym, so an agent can compare
 * and join; another scope gets another one. Each pseudonym is a valid value of its kind in a
 * range reserved for documentation or testing, so it names no one and still passes format
 * checks (an outputSchema's `format: email`, an IPv4 pattern, a Luhn check):
 *
 *   email        p-<10 base32>@masked.example        (RFC 2606 reserved TLD)
 *   ip_address   192.0.2.x / 198.51.100.x / 203.0.113.x, 2001:db8::/32  (RFC 5737, RFC 3849)
 *   credit_card  400000… with a valid Luhn digit, same length and separators (a test BIN)
 *   phone        NANP 555-01xx (reserved for fiction) or UK +44 7700 900xxx (Ofcom drama range)
 *   iban         the same country and shape with a valid mod-97 check (no IBAN range is reserved)
 *   ssn          666-xx-xxxx (area 666 is never issued)
 *
 * The key is derived (HKDF) from the masking key material; the HMAC input is scope, type and
 * value. Credentials never get pseudonyms: they are replaced by placeholders.
 */
import { createHmac, hkdfSync, randomBytes } from "node:crypto";
import { IBAN_LENGTHS } from "./iban.js";

export const PSEUDONYM_TYPES: ReadonlySet<string> = new Set(["email", "ip_address", "credit_card", "phone", "iban", "ssn"]);

export const PSEUDONYM_EMAIL_DOMAIN = "masked.example";

/** A 32-byte key for pseudonyms from the masking key material; random (this process only) when there is none. */
export function derivePseudonymKey(material: string | Uint8Array | undefined): Buffer {
  if (material === undefined || material.length === 0) return randomBytes(32);
  return Buffer.from(hkdfSync("sha256", material, "countersign/masking", "pseudonyms v1", 32));
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** Deterministic digits/bytes for one value: HMAC(key, scope ∥ type ∥ value). */
function digest(key: Buffer, scope: string, type: string, value: string): Buffer {
  return createHmac("sha256", key).update(scope).update("\0").update(type).update("\0").update(value).digest();
}

function digitsFrom(bytes: Buffer, count: number, offset = 0): string {
  let out = "";
  for (let i = 0; out.length < count; i++) out += String(bytes[(offset + i) % bytes.length]! % 10);
  return out;
}

function luhnCheckDigit(body: string): string {
  let sum = 0;
  let double = true;
  for (let i = body.length - 1; i >= 0; i--) {
    let d = body.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return String((10 - (sum % 10)) % 10);
}

/** Writes `digits` into the digit positions of `template`, keeping its separators. */
function intoTemplate(template: string, digits: string): string {
  let i = 0;
  let out = "";
  for (const c of template) out += c >= "0" && c <= "9" ? digits[i++] ?? "0" : c;
  return out;
}

/** Whether a value already lies in the pseudonym space of its type (never pseudonymised again). */
export function isPseudonym(type: string, value: string): boolean {
  switch (type) {
    case "email":
      return value.toLowerCase().endsWith(`@${PSEUDONYM_EMAIL_DOMAIN}`);
    case "ip_address":
      return /^(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$/.test(value) || /^2001:0?db8:/i.test(value);
    case "credit_card":
      return value.replace(/\D/g, "").startsWith("400000");
    case "phone": {
      const d = value.replace(/\D/g, "");
      return /^1?\d{3}55501\d{2}$/.test(d) || /^(?:44|0)7700900\d{3}$/.test(d);
    }
    case "ssn":
      return value.startsWith("666");
    default:
      return false;
  }
}

/** The pseudonym of `value` (of a type in PSEUDONYM_TYPES) in `scope`, or undefined for other types. */
export function pseudonymFor(key: Buffer, scope: string, type: string, value: string): string | undefined {
  if (!PSEUDONYM_TYPES.has(type)) return undefined;
  const normalised = type === "email" || type === "ip_address" ? value.toLowerCase() : type === "iban" ? value.replace(/\s/g, "").toUpperCase() : value.replace(/\D/g, "");
  const h = digest(key, scope, type, normalised);
  switch (type) {
    case "email": {
      let local = "p-";
      for (let i = 0; i < 10; i++) local += BASE32[h[i]! & 31];
      return `${local}@${PSEUDONYM_EMAIL_DOMAIN}`;
    }
    case "ip_address": {
      if (value.includes(":")) {
        const groups = [];
        for (let i = 0; i < 6; i++) groups.push(((h[2 * i]! << 8) | h[2 * i + 1]!).toString(16));
        return `2001:db8:${groups.join(":")}`;
      }
      const nets = ["192.0.2", "198.51.100", "203.0.113"];
      return `${nets[h[0]! % 3]}.${1 + (h[1]! % 254)}`;
    }
    case "credit_card": {
      const length = value.replace(/\D/g, "").length;
      const body = ("400000" + digitsFrom(h, Math.max(0, length - 7))).slice(0, length - 1);
      return intoTemplate(value, body + luhnCheckDigit(body));
    }
    case "phone": {
      const d = value.replace(/\D/g, "");
      if (d.length === 10 || (d.length === 11 && d.startsWith("1"))) {
        // NANP: area code 2xx–9xx, exchange 555, line 0100–0199 (reserved for fictional use).
        const area = String(2 + (h[0]! % 8)) + digitsFrom(h, 2, 1);
        const nanp = `${area}55501${digitsFrom(h, 2, 3)}`;
        return intoTemplate(value, d.length === 11 ? `1${nanp}` : nanp);
      }
      const line = digitsFrom(h, 3, 4);
      if (d.length === 12 && d.startsWith("44")) return intoTemplate(value, `447700900${line}`);
      if (d.length === 11 && d.startsWith("0")) return intoTemplate(value, `07700900${line}`);
      return `+44 7700 900${line}`;
    }
    case "ssn": {
      const serial = digitsFrom(h, 6);
      return intoTemplate(value, `666${serial.slice(0, 2) === "00" ? "10" : serial.slice(0, 2)}${serial.slice(2) === "0000" ? "1000" : serial.slice(2)}`);
    }
    case "iban": {
      const compact = normalised;
      const country = compact.slice(0, 2);
      if (IBAN_LENGTHS[country] !== compact.length) return undefined;
      let bban = "";
      for (let i = 4; i < compact.length; i++) {
        const c = compact[i]!;
        const b = h[i % h.length]!;
        bban += c >= "0" && c <= "9" ? String(b % 10) : String.fromCharCode(65 + (b % 26));
      }
      const check = ibanCheckDigits(country, bban);
      const out = `${country}${check}${bban}`;
      // Keep the grouping of the original (spaces every four characters, or none).
      return /\s/.test(value) ? out.replace(/(.{4})(?=.)/g, "$1 ") : out;
    }
    default:
      return undefined;
  }
}

function ibanCheckDigits(country: string, bban: string): string {
  const rearranged = `${bban}${country}00`;
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    remainder = c >= 48 && c <= 57 ? (remainder * 10 + (c - 48)) % 97 : (remainder * 100 + (c - 55)) % 97;
  }
  return String(98 - remainder).padStart(2, "0");
}
