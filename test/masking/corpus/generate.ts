/**
 * Writes corpus.jsonl from the hand-written cases plus seeded synthetic variants (random but
 * valid card numbers, IBANs, tokens… in realistic templates, and random hard negatives).
 * Run: `npx tsx test/masking/corpus/generate.ts` (the output is committed and deterministic).
 */
import { writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { positives, negatives, type CorpusSource } from "./cases.js";

export interface CorpusRecord {
  id: string;
  source: string;
  text: string;
  expect: { type: string; start: number; end: number }[];
  note?: string;
  synthetic?: boolean;
}

const MARK = /⟦([a-z_0-9]+):([^⟧]*)⟧/g;

export function parseMarked(marked: string): { text: string; expect: CorpusRecord["expect"] } {
  let text = "";
  let pos = 0;
  const expect: CorpusRecord["expect"] = [];
  for (const m of marked.matchAll(MARK)) {
    text += marked.slice(pos, m.index);
    const value = m[2] ?? "";
    expect.push({ type: m[1] ?? "", start: text.length, end: text.length + value.length });
    text += value;
    pos = (m.index ?? 0) + m[0].length;
  }
  return { text: text + marked.slice(pos), expect };
}

// Deterministic PRNG (mulberry32) so the corpus is reproducible.
let seed = 0x5eed;
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
const chars = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[int(0, alphabet.length - 1)]).join("");
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX = "0123456789abcdef";
const B64URL = ALNUM + "-_";

function luhnComplete(prefix: string, length: number): string {
  let body = prefix;
  while (body.length < length - 1) body += String(int(0, 9));
  for (let d = 0; d <= 9; d++) {
    const candidate = body + d;
    let sum = 0;
    for (let i = 0; i < candidate.length; i++) {
      let x = Number(candidate[candidate.length - 1 - i]);
      if (i % 2 === 1) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
      sum += x;
    }
    if (sum % 10 === 0) return candidate;
  }
  throw new Error("unreachable");
}

function ibanFor(country: string, bban: string): string {
  const rearranged = bban + country + "00";
  let rem = 0;
  for (const ch of rearranged) rem = /\d/.test(ch) ? (rem * 10 + Number(ch)) % 97 : (rem * 100 + (ch.charCodeAt(0) - 55)) % 97;
  return country + String(98 - rem).padStart(2, "0") + bban;
}

const b64url = (s: string): string => Buffer.from(s).toString("base64url");
const FIRST = ["maria", "john", "wei", "fatima", "lars", "ana", "kofi", "yuki", "olga", "raj"];
const LAST = ["garcia", "smith", "chen", "khan", "nilsson", "silva", "mensah", "sato", "ivanova", "patel"];
const DOMAINS = ["example.com", "mail.example.org", "acme-corp.io", "corp.example.co.uk", "uni-example.edu"];

type Gen = () => string;
const generators: Record<string, { value: Gen; templates: string[] }> = {
  aws_access_key: { value: () => pick(["AKIA", "ASIA"]) + chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), templates: ["aws_access_key_id = {v}", '{"AccessKeyId":"{v}","UserName":"ci"}', "WARN using static credentials {v} from env"] },
  github_token: { value: () => pick(["ghp_", "gho_", "ghs_", "ghu_"]) + chars(ALNUM, 36), templates: ["GH_TOKEN={v}", "Authorization: token {v}", '{"github_token": "{v}"}'] },
  gitlab_token: { value: () => "glpat-" + chars(ALNUM + "-_", 20), templates: ["GITLAB_TOKEN={v}", "PRIVATE-TOKEN: {v}"] },
  slack_token: { value: () => pick(["xoxb-", "xoxp-"]) + int(1e11, 9e11) + "-" + int(1e12, 9e12) + "-" + chars(ALNUM, 24), templates: ["SLACK_TOKEN={v}", "slack client init token={v} team=T0001"] },
  stripe_key: { value: () => pick(["sk_live_", "sk_test_", "rk_live_"]) + chars(ALNUM, 24), templates: ["Stripe.api_key = '{v}'", "STRIPE_SECRET={v}"] },
  google_api_key: { value: () => "AIza" + chars(ALNUM + "-_", 35), templates: ['"apiKey": "{v}"', "https://www.googleapis.com/youtube/v3/search?key={v}&q=x"] },
  openai_key: { value: () => "sk-proj-" + chars(ALNUM + "-_", 20) + int(0, 9) + chars(ALNUM, 40), templates: ["OPENAI_API_KEY={v}", "openai.api_key = \"{v}\""] },
  anthropic_key: { value: () => "sk-ant-api03-" + chars(ALNUM + "-_", 93) + "AA", templates: ["x-api-key: {v}", "ANTHROPIC_API_KEY={v}"] },
  npm_token: { value: () => "npm_" + chars(ALNUM, 36), templates: ["//registry.npmjs.org/:_authToken={v}", "NPM_TOKEN={v}"] },
  jwt: {
    value: () => b64url(JSON.stringify({ alg: "RS256", kid: chars(HEX, 8) })) + "." + b64url(JSON.stringify({ sub: String(int(1, 99999)), iat: int(1.6e9, 1.8e9) })) + "." + chars(B64URL, 43),
    templates: ["Authorization: Bearer {v}", '{"access_token":"{v}","token_type":"Bearer"}', "session cookie jwt={v}; Path=/"],
  },
  email: { value: () => `${pick(FIRST)}${pick([".", "_", ""])}${pick(LAST)}${pick(["", String(int(1, 99))])}@${pick(DOMAINS)}`, templates: ["user {v} signed up", '{"email":"{v}","verified":true}', "To: {v}", "{v},active,2024-01-02"] },
  credit_card: {
    value: () => {
      const [prefix, len] = pick([["4", 16], ["51", 16], ["55", 16], ["2221", 16], ["34", 15], ["37", 15], ["6011", 16], ["65", 16]] as const);
      const n = luhnComplete(prefix, len);
      const sep = pick(["", " ", "-"]);
      return len === 16 ? n.match(/.{4}/g)!.join(sep) : sep ? [n.slice(0, 4), n.slice(4, 10), n.slice(10)].join(sep) : n;
    },
    templates: ["card={v} exp=09/28", '{"pan":"{v}","brand":"visa"}', "charge failed for {v}"],
  },
  iban: {
    value: () => {
      const [c, bban] = pick([["DE", () => chars("0123456789", 18)], ["GB", () => "NWBK" + chars("0123456789", 14)], ["NL", () => "RABO" + chars("0123456789", 10)], ["FR", () => chars("0123456789", 23)]] as const);
      const iban = ibanFor(c, bban());
      return pick([true, false]) ? iban.match(/.{1,4}/g)!.join(" ") : iban;
    },
    templates: ["IBAN: {v}", '{"iban":"{v}","holder":"ACME"}', "refund to {v} within 5 days"],
  },
  ssn: { value: () => `${String(int(1, 665)).padStart(3, "0")}-${String(int(1, 99)).padStart(2, "0")}-${String(int(1, 9999)).padStart(4, "0")}`, templates: ["SSN {v}", '{"ssn":"{v}"}', "employee,{v},full-time"] },
  phone: {
    value: () => pick([() => `+1 ${int(201, 989)}-${int(201, 989)}-${String(int(0, 9999)).padStart(4, "0")}`, () => `+44 20 ${int(7000, 8999)} ${int(1000, 9999)}`, () => `+49 ${int(30, 89)} ${int(1000000, 9999999)}`, () => `(${int(201, 989)}) ${int(201, 989)}-${String(int(0, 9999)).padStart(4, "0")}`])(),
    templates: ["phone: {v}", '{"phone":"{v}"}', "call {v} for support"],
  },
  ip_address: { value: () => `${int(1, 223)}.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`, templates: ["client {v} connected", '{"remote_addr":"{v}"}', "{v} - - [01/Jan/2024:00:00:01 +0000] \"GET / HTTP/1.1\" 200"] },
  aws_secret_key: { value: () => chars(ALNUM + "/+", 40), templates: ["aws_secret_access_key = {v}", '{"SecretAccessKey": "{v}"}', "AWS_SECRET_ACCESS_KEY={v}"] },
  slack_webhook: { value: () => `https://hooks.slack.com/services/T${chars(UPNUM, 8)}/B${chars(UPNUM, 8)}/${chars(ALNUM, 24)}`, templates: ["SLACK_WEBHOOK_URL={v}", 'curl -X POST -d \'{"text":"deploy ok"}\' {v}'] },
  bearer_token: { value: () => chars(ALNUM, 10) + int(0, 9) + chars(ALNUM + "._-", 20), templates: ['curl -H "Authorization: Bearer {v}" https://api.example.net', "authorization: bearer {v}"] },
  private_key: {
    value: () => `-----BEGIN ${pick(["RSA ", "EC ", "", "OPENSSH ", "ENCRYPTED "])}PRIVATE KEY-----\n${Array.from({ length: int(2, 6) }, () => chars(ALNUM + "+/", 64)).join("\n")}\n-----END PRIVATE KEY-----`,
    templates: ["key file contents:\n{v}\n", "{v}"],
  },
  url_password: { value: () => chars(ALNUM, int(8, 16)), templates: ["postgres://app:{v}@db.local:5432/app", "amqp://guest:{v}@mq:5672/"] },
  secret_assignment: { value: () => chars(ALNUM + "!#%", int(10, 20)), templates: ["DB_PASSWORD={v}", "password: {v}", '{"client_secret":"{v}"}'] },
};

const negativeGenerators: Gen[] = [
  () => `commit ${chars(HEX, 40)} (HEAD -> main)`,
  () => `request_id=${chars(HEX, 8)}-${chars(HEX, 4)}-4${chars(HEX, 3)}-a${chars(HEX, 3)}-${chars(HEX, 12)} status=200`,
  () => `sha256:${chars(HEX, 64)}`,
  () => `"version": "${int(0, 20)}.${int(0, 40)}.${int(0, 99)}"`,
  () => `release ${int(1, 9)}.${int(0, 9)}.${int(0, 9)}.${int(0, 999)} is out`,
  () => `created ${int(2019, 2025)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}T${String(int(0, 23)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}:00Z`,
  () => `order #${int(100000, 99999999)} total ${int(1, 999)}.${String(int(0, 99)).padStart(2, "0")} EUR`,
  () => `ts=${int(1.6e12, 1.8e12)} took ${int(1, 999)}ms`,
  () => `img ${Buffer.from(chars(ALNUM, 400)).toString("base64")}`,
  () => `ISBN 978-${int(0, 9)}-${int(100, 999)}-${int(10000, 99999)}-${int(0, 9)}`,
  // Checksum-failing look-alikes: a typo'd card number, an IBAN with wrong check digits, never-issued SSNs.
  () => {
    const valid = luhnComplete(pick(["4", "51", "6011"]), 16);
    const broken = valid.slice(0, 15) + String((Number(valid[15]) + int(1, 9)) % 10);
    return `rejected card ${broken.match(/.{4}/g)!.join(" ")}: checksum`;
  },
  () => {
    const iban = ibanFor("DE", chars("0123456789", 18));
    const check = Number(iban.slice(2, 4));
    return `IBAN ${iban.slice(0, 2)}${String((check + int(1, 50)) % 97 + 2).padStart(2, "0")}${iban.slice(4)} failed validation`;
  },
  () => `id ${pick(["000", "666", String(int(900, 999))])}-${String(int(10, 99))}-${String(int(1000, 9999))}`,
];

const records: CorpusRecord[] = [];
const add = (src: CorpusSource, synthetic: boolean): void => {
  const { text, expect } = parseMarked(src.text);
  const id = createHash("sha256").update(text).digest("hex").slice(0, 12);
  records.push({ id, source: src.source, text, expect, ...(src.note ? { note: src.note } : {}), ...(synthetic ? { synthetic: true } : {}) });
};
for (const p of positives) add(p, false);
for (const n of negatives) add(n, false);
for (const [type, g] of Object.entries(generators)) {
  for (let i = 0; i < 24; i++) {
    const value = g.value();
    add({ source: "synthetic", text: pick(g.templates).replace("{v}", `⟦${type}:${value}⟧`) }, true);
  }
}
for (let i = 0; i < 12; i++) for (const gen of negativeGenerators) add({ source: "synthetic", text: gen() }, true);

const out = new URL("./corpus.jsonl", import.meta.url);
writeFileSync(out, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
console.log(`wrote ${records.length} records to corpus.jsonl`);
