/**
 * Finds, in one string, the substrings that could be pseudonyms the gateway issued (pseudonym.ts
 * lists their forms). Only these are looked up in the reverse map, so a request costs one
 * indexed query however long its arguments are.
 */
import { isPseudonym } from "../pseudonym.js";

export interface Candidate {
  start: number;
  end: number;
  text: string;
}

const FORMS: Array<{ type: string; re: RegExp }> = [
  { type: "email", re: /p-[a-z2-7]{10}@masked\.example/gi },
  { type: "ip_address", re: /(?<![\d.])(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}(?![\d])/g },
  { type: "ip_address", re: /2001:db8(?::[0-9a-f]{1,4}){6}(?![0-9a-f:])/gi },
  { type: "credit_card", re: /(?<![\d])4[ -]?0[ -]?0[ -]?0[ -]?0[ -]?0(?:[ -]?\d){6,13}(?![\d])/g },
  { type: "phone", re: /\+?\(?\d[\d\s().-]{5,20}\d/g },
  { type: "ssn", re: /(?<![\d])666[- ]?\d{2}[- ]?\d{4}(?![\d])/g },
  { type: "iban", re: /(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Z0-9])/g },
];

export function findCandidates(text: string, out: Candidate[]): void {
  if (text.length < 7) return;
  for (const { type, re } of FORMS) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const value = m[0].trim();
      const start = m.index + m[0].indexOf(value);
      // Phones and IBANs have no fixed prefix: keep only those in the pseudonym ranges (IBANs are checked by lookup).
      if (type === "phone" && !isPseudonym("phone", value)) continue;
      out.push({ start, end: start + value.length, text: value });
    }
  }
}
