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

// Provider credentials beyond the first 22 types, generated from the formats the providers document
// and gitleaks' default rules encode (test/masking/rulesets/gitleaks.json; the rule id is noted).
// Appended after the records above, so those stay as they were.
const LOWER_NUM = "abcdefghijklmnopqrstuvwxyz0123456789";
const mixedHex = (n: number): string => {
  for (;;) {
    const v = chars(HEX, n);
    if (/[0-9]/.test(v) && /[a-f]/.test(v)) return v;
  }
};
const providers: Record<string, { rule: string; env: string; value: Gen }> = {
  sendgrid_key: { rule: "sendgrid-api-token", env: "SENDGRID_API_KEY", value: () => `SG.${chars(B64URL, 22)}.${chars(B64URL, 43)}` },
  huggingface_token: { rule: "huggingface-access-token", env: "HF_TOKEN", value: () => `hf_${chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34)}` },
  shopify_token: { rule: "shopify-access-token", env: "SHOPIFY_ACCESS_TOKEN", value: () => `${pick(["shpat_", "shpss_", "shpca_", "shppa_"])}${chars(HEX, 32)}` },
  pypi_token: { rule: "pypi-upload-token", env: "TWINE_PASSWORD", value: () => `pypi-AgEIcHlwaS5vcmc${chars(B64URL, int(60, 160))}` },
  digitalocean_token: { rule: "digitalocean-pat", env: "DIGITALOCEAN_TOKEN", value: () => `${pick(["dop_v1_", "doo_v1_", "dor_v1_"])}${chars(HEX, 64)}` },
  vault_token: { rule: "vault-service-token", env: "VAULT_TOKEN", value: () => `hvs.${chars(ALNUM + "_-", int(90, 120))}` },
  age_secret_key: { rule: "age-secret-key", env: "SOPS_AGE_KEY", value: () => `AGE-SECRET-KEY-1${chars("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)}` },
  doppler_token: { rule: "doppler-api-token", env: "DOPPLER_TOKEN", value: () => `dp.${pick(["pt", "st", "sa"])}.${chars(ALNUM, 43)}` },
  linear_key: { rule: "linear-api-key", env: "LINEAR_API_KEY", value: () => `lin_api_${chars(ALNUM, 40)}` },
  postman_key: { rule: "postman-api-token", env: "POSTMAN_API_KEY", value: () => `PMAK-${chars(HEX, 24)}-${chars(HEX, 34)}` },
  databricks_token: { rule: "databricks-api-token", env: "DATABRICKS_TOKEN", value: () => `dapi${mixedHex(32)}${pick(["", "-2"])}` },
  grafana_token: { rule: "grafana-service-account-token", env: "GRAFANA_TOKEN", value: () => pick([() => `glsa_${chars(ALNUM, 32)}_${chars(HEX, 8)}`, () => `glc_${chars(ALNUM + "+/", int(40, 120))}${pick(["", "=", "=="])}`])() },
  twilio_key: { rule: "twilio-api-key", env: "TWILIO_API_KEY", value: () => `SK${mixedHex(32)}` },
  square_token: { rule: "square-access-token", env: "SQUARE_ACCESS_TOKEN", value: () => `${pick(["EAAA", "sq0atp-"])}${chars(ALNUM + "-_", int(22, 60))}` },
  pulumi_token: { rule: "pulumi-api-token", env: "PULUMI_ACCESS_TOKEN", value: () => `pul-${chars(HEX, 40)}` },
  rubygems_key: { rule: "rubygems-api-token", env: "GEM_HOST_API_KEY", value: () => `rubygems_${chars(HEX, 48)}` },
  planetscale_token: { rule: "planetscale-api-token", env: "PLANETSCALE_SERVICE_TOKEN", value: () => `pscale_tkn_${chars(ALNUM + "_-", int(32, 64))}` },
  notion_token: { rule: "notion-api-token", env: "NOTION_TOKEN", value: () => `ntn_${chars("0123456789", 11)}${chars(ALNUM, 35)}` },
  heroku_key: { rule: "heroku-api-key-v2", env: "HEROKU_API_KEY", value: () => `HRKU-AA${chars(ALNUM + "_-", 58)}` },
  alibaba_key: { rule: "alibaba-access-key-id", env: "ALIBABA_CLOUD_ACCESS_KEY_ID", value: () => `LTAI${chars("abcdefghijklmnopqrstuvwxyz", 10)}${chars("0123456789", 4)}${chars(ALNUM, 6)}` },
  dynatrace_token: { rule: "dynatrace-api-token", env: "DT_API_TOKEN", value: () => `dt0c01.${chars(UPNUM, 24)}.${chars(UPNUM, 64)}` },
  perplexity_key: { rule: "perplexity-api-key", env: "PERPLEXITY_API_KEY", value: () => `pplx-${chars(ALNUM, 48)}` },
  terraform_token: { rule: "hashicorp-tf-api-token", env: "TFE_TOKEN", value: () => `${chars(LOWER_NUM, 14)}.atlasv1.${chars(LOWER_NUM + "-_", int(60, 70))}` },
  artifactory_key: { rule: "artifactory-api-key", env: "ARTIFACTORY_API_KEY", value: () => `AKCp${chars(ALNUM, 69)}` },
  onepassword_token: { rule: "1password-service-account-token", env: "OP_SERVICE_ACCOUNT_TOKEN", value: () => `ops_eyJ${chars(ALNUM + "+/", int(260, 600))}` },
  atlassian_token: { rule: "atlassian-api-token", env: "JIRA_API_TOKEN", value: () => `ATATT3${chars(ALNUM + "_-", 186)}` },
  newrelic_key: { rule: "new-relic-user-api-key", env: "NEW_RELIC_API_KEY", value: () => `NRAK-${chars(UPNUM, 27)}` },
  sentry_token: { rule: "sentry-user-token", env: "SENTRY_AUTH_TOKEN", value: () => `sntryu_${chars(HEX, 64)}` },
  telegram_bot_token: { rule: "telegram-bot-api-token", env: "TELEGRAM_BOT_TOKEN", value: () => `${int(100000000, 999999999)}:AA${chars(ALNUM + "_-", 33)}` },
  azure_client_secret: { rule: "azure-ad-client-secret", env: "AZURE_CLIENT_SECRET", value: () => `${chars(ALNUM, 3)}${int(0, 9)}Q~${chars(ALNUM + "_~.-", 34)}` },
  flyio_token: { rule: "flyio-access-token", env: "FLY_API_TOKEN", value: () => `fo1_${chars(ALNUM + "_-", 43)}` },
  openshift_token: { rule: "openshift-user-token", env: "OPENSHIFT_TOKEN", value: () => `sha256~${chars(ALNUM + "_-", 43)}` },
  prefect_key: { rule: "prefect-api-token", env: "PREFECT_API_KEY", value: () => `pnu_${chars(ALNUM, 36)}` },
  readme_key: { rule: "readme-api-token", env: "README_API_KEY", value: () => `rdme_${chars(LOWER_NUM, 70)}` },
  infracost_key: { rule: "infracost-api-token", env: "INFRACOST_API_KEY", value: () => `ico-${chars(ALNUM, 31)}${int(0, 9)}` },
};
const providerTemplates = ["export {env}={v}", '{"provider": "{name}", "credential": "{v}"}', "WARN credential {v} rejected by {name} check (expired)", "- name: {env}\n  value: {v}\n"];
for (const [type, g] of Object.entries(providers)) {
  for (let i = 0; i < 20; i++) {
    const text = pick(providerTemplates).replace("{env}", g.env).replace("{name}", g.rule).replace("{v}", `⟦${type}:${g.value()}⟧`);
    add({ source: "provider", text, note: `format of gitleaks rule ${g.rule}` }, true);
  }
}
// Look-alikes of those formats that are not credentials.
const providerNegatives: Gen[] = [
  () => `SKU-${int(10000, 99999)} restocked, SK${int(1000, 9999)} sold out`,
  () => `image digest sha256:${chars(HEX, 64)}`,
  () => `model hf_${pick(["hub", "transfer", "xet"])} cache at ~/.cache/huggingface`,
  () => `dapi ${pick(["v2", "client", "docs"])} updated; see dapi-${int(1, 9)}.example.com`,
  () => `column sq0_${pick(["total", "avg"])} = ${int(1, 999)}`,
  () => `plugin pul-${pick(["aws", "gcp", "kubernetes"])}@${int(1, 9)}.${int(0, 40)}.${int(0, 9)}`,
  () => `ticket NRAK-${int(1, 999)} closed`,
  () => `sha256~${pick(["pending", "unknown"])} placeholder in template`,
  () => `LTAI ${pick(["team", "standup"])} notes: ${int(1, 9)} items`,
  () => `SG.${int(1, 99)}.${int(1, 99)} is the sensor grid id`,
];
for (let i = 0; i < 6; i++) for (const gen of providerNegatives) add({ source: "provider-negative", text: gen() }, true);

const out = new URL("./corpus.jsonl", import.meta.url);
writeFileSync(out, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
console.log(`wrote ${records.length} records to corpus.jsonl`);
