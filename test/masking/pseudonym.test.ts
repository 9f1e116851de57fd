// Pseudonyms: valid values of their kind, in reserved ranges, the same within a scope and
// different across scopes; credentials stay placeholders.
import { isIP } from "node:net";
import { describe, expect, it } from "vitest";
import { createMasker } from "../../gateway/masking/index.js";
import { luhnValid } from "../../gateway/masking/luhn.js";
import { ibanValid } from "../../gateway/masking/iban.js";

const KEY = "test masking key material, 32+ bytes long";
const masker = createMasker({ tokenKey: KEY });
const EMAIL = ["dana.kowalski", "example-corp.com"].join("@");
const GITHUB = ["ghp_", "R2d2C3p0BeepBoopWhirrClick0123456789"].join("");

const one = (text: string, scope = "alice|ops") => masker.maskText(text, { scope }).masked;

describe("pseudonyms", () => {
  it("turns an e-mail into a valid address in a reserved domain, the same each time within a scope", () => {
    const a = one(EMAIL);
    expect(a).toMatch(/^p-[a-z2-7]{10}@masked\.example$/);
    expect(one(EMAIL.toUpperCase())).toBe(a);
    expect(one(EMAIL, "bob|ops")).not.toBe(a);
    expect(createMasker({ tokenKey: KEY }).maskText(EMAIL, { scope: "alice|ops" }).masked).toBe(a); // another replica, same key
  });

  it("puts IP addresses in the documentation ranges", () => {
    const v4 = one("10.20.30.40");
    expect(isIP(v4)).toBe(4);
    expect(v4).toMatch(/^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$/);
    const v6 = one("fe80::1ff:fe23:4567:890a");
    expect(isIP(v6)).toBe(6);
    expect(v6.startsWith("2001:db8:")).toBe(true);
  });

  it("gives cards a Luhn-valid test number of the same length and layout", () => {
    for (const card of ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"]) {
      const p = one(`card ${card}`).slice(5);
      expect(p).not.toBe(card);
      expect(p.replace(/\d/g, "9")).toBe(card.replace(/\d/g, "9"));
      expect(luhnValid(p.replace(/\D/g, ""))).toBe(true);
      expect(p.replace(/\D/g, "").startsWith("400000")).toBe(true);
    }
  });

  it("gives phones a number from a range reserved for fiction, keeping the layout", () => {
    expect(one("call +1 415-867-5309 now")).toMatch(/^call \+1 \d{3}-555-01\d{2} now$/);
    expect(one("Tel: +44 20 7123 4567")).toMatch(/^Tel: \+44 77 0090 0\d{3}$/);
  });

  it("gives IBANs a valid checksum and SSNs the never-issued area 666", () => {
    const iban = one("IBAN DE89 3704 0044 0532 0130 00.").slice(5, -1);
    expect(ibanValid(iban.replace(/\s/g, ""))).toBe(true);
    expect(iban).not.toBe("DE89 3704 0044 0532 0130 00");
    expect(one("SSN 536-22-8726")).toMatch(/^SSN 666-\d{2}-\d{4}$/);
  });

  it("never pseudonymises a pseudonym again, and keeps credentials as placeholders", () => {
    const p = one(EMAIL);
    expect(one(`again ${p}`)).toBe(`again ${p}`);
    expect(one(`token ${GITHUB}`)).toMatch(/^token \[MASKED:github_token:[0-9a-f]{8}\]$/);
    // A value under a secret's name is a credential, whatever it looks like.
    expect(masker.maskMessage({ structuredContent: { password: EMAIL } }, { scope: "s" }).masked.structuredContent.password).toMatch(/^\[MASKED:email:[0-9a-f]{8}\]$/);
  });

  it("reports the pseudonyms it issued, once each", () => {
    const r = masker.maskMessage({ result: { structuredContent: { owner: EMAIL, cc: [EMAIL, "10.1.2.3"] } } }, { scope: "alice|ops" });
    expect(r.issued?.map((i) => [i.type, i.original])).toEqual([
      ["email", EMAIL],
      ["ip_address", "10.1.2.3"],
    ]);
    expect(r.issued![0]!.pseudonym).toBe(r.masked.result.structuredContent.owner);
  });

  it("keeps placeholders as a mode", () => {
    expect(createMasker({ personalData: "placeholder" }).maskText(`mail ${EMAIL}`).masked).toBe("mail [MASKED:email]");
  });
});
