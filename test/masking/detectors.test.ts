import { describe, expect, it } from "vitest";
import { createMasker } from "../../gateway/masking/index.js";

const masker = createMasker({ personalData: "placeholder" });
/** Types found in a text, in order. */
const typesIn = (text: string): string[] => masker.findSpans(text).map((s) => s.type);
const masked = (text: string): string => masker.maskText(text).masked;

const positives: [string, string, string][] = [
  ["aws_access_key", "key id AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"],
  ["aws_access_key", "ASIAY34FZKBOKMUTVV7A temporary", "ASIAY34FZKBOKMUTVV7A"],
  ["aws_secret_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
  ["github_token", "GH_TOKEN=ghp_R2d2C3p0BeepBoopWhirrClick0123456789", "ghp_R2d2C3p0BeepBoopWhirrClick0123456789"],
  ["github_token", "t gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"],
  ["github_token", "t ghu_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6 ghs", "ghu_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6"],
  ["github_token", "t ghr_1B4a2e77838347a7E420ce178F2E7c6912E1", "ghr_1B4a2e77838347a7E420ce178F2E7c6912E1"],
  ["github_token", "pat github_pat_11ABCDEFG0123456789abc_Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7", "github_pat_11ABCDEFG0123456789abc_Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7"],
  ["gitlab_token", "PRIVATE-TOKEN: glpat-xY7zK9mQ2rT5vW8bN1cD", "glpat-xY7zK9mQ2rT5vW8bN1cD"],
  ["slack_token", "bot xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"],
  ["slack_token", "app xapp-1-A0123456789-1234567890123-abcdef0123", "xapp-1-A0123456789-1234567890123-abcdef0123"],
  ["slack_webhook", "POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
  ["stripe_key", "Stripe('sk_live_4eC39HqLyjWDarjtT1zdp7dc')", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"],
  ["stripe_key", "rk_live_51H8a2bCdEfGhIjKlMnOpQrStUvWx and", "rk_live_51H8a2bCdEfGhIjKlMnOpQrStUvWx"],
  ["stripe_key", "test key sk_test_26PHem9AhJZvU623DfE1x4sd", "sk_test_26PHem9AhJZvU623DfE1x4sd"],
  ["google_api_key", "?key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe&x", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"],
  ["openai_key", "OPENAI_API_KEY is sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56"],
  ["anthropic_key", "key sk-ant-api03-xY9zW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6-AA", "sk-ant-api03-xY9zW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6-AA"],
  ["npm_token", "_authToken npm_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ", "npm_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ"],
  ["jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"],
  ["bearer_token", "Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA8f3d9c", "2YotnFZFEjr1zCsicMWpAA8f3d9c"],
  ["url_password", "postgresql://app:Xk29!fpQz7@db.internal:5432/orders", "Xk29!fpQz7"],
  ["url_password", "redis://:r3d1sPa55w0rd@cache:6379", "r3d1sPa55w0rd"],
  ["secret_assignment", "DB_PASSWORD=correct-horse-battery\nDB_PORT=5432", "correct-horse-battery"],
  ["secret_assignment", "smtp:\n  password: Tr0ub4dor&3x\n", "Tr0ub4dor&3x"],
  ["secret_assignment", "User Id=crm;Password=S3cure#Pass99;Encrypt=True", "S3cure#Pass99"],
  ["secret_assignment", "GET /v1?api_key=a94a8fe5ccb19ba6&page=2", "a94a8fe5ccb19ba6"],
  ["email", "user jane.doe+billing@acme-corp.co.uk logged in", "jane.doe+billing@acme-corp.co.uk"],
  ["phone", "call +1 415-555-0132 now", "+1 415-555-0132"],
  ["phone", "office (415) 555-0198.", "(415) 555-0198"],
  ["phone", "Tel: 020 7946 0958", "020 7946 0958"],
  ["phone", "+44 7700 900123", "+44 7700 900123"],
  ["credit_card", "card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"],
  ["credit_card", "amex 3782-822463-10005", "3782-822463-10005"],
  ["credit_card", "pan=5555555555554444", "5555555555554444"],
  ["iban", "IBAN DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00"],
  ["iban", "to GB82WEST12345698765432 today", "GB82WEST12345698765432"],
  ["ssn", "SSN 123-45-6789", "123-45-6789"],
  ["ssn", "social security number 536 22 8726", "536 22 8726"],
  ["ip_address", "from 203.0.113.42 port 22", "203.0.113.42"],
  ["ip_address", "peer 2001:db8:85a3::8a2e:370:7334 up", "2001:db8:85a3::8a2e:370:7334"],
  ["ip_address", "dns 8.8.8.8", "8.8.8.8"],
];

const negatives: [string, string][] = [
  ["git SHA", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8"],
  ["UUID", "id f47ac10b-58cc-4372-a567-0e02b2c3d479"],
  ["sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
  ["versions", "nginx/1.22.1.4, version 1.2.3.4, v1.2.3.4, pkg@3.2.1.0, libfoo 2.4.1.3, 1.2.3.4.5, 1.02.3.4"],
  ["semver", "lodash 4.17.21, react ^18.2.0"],
  ["dates", "2024-01-15T09:30:00Z and 01/02/2024 and 2024-02-29 12:00:00"],
  ["invalid SSN ranges", "000-12-3456 666-45-6789 900-12-3456 123-00-4567 123-45-0000"],
  ["Luhn-invalid card", "4111111111111112"],
  ["order number", "order_id: 4000123412341234"],
  ["IBAN with bad checksum", "DE00 3704 0044 0532 0130 00"],
  ["ISBN", "ISBN 978-3-16-148410-0"],
  ["times and MACs", "12:30:45 00:1a:2b:3c:4d:5e std::vector"],
  ["placeholders", "password: ${DB_PASSWORD} secret: <your-secret> token: null api_key: {{ .Values.key }}"],
  ["non-secret names", "max_tokens=1024 token_count: 512 secretName: db password_hint: pet"],
  ["asset names", "icon@2x.png @scope/pkg"],
  ["prose", "Skip to the task-runner docs; sk-learn style; call the API"],
  ["unspecified address", "listen 0.0.0.0"],
];

describe("built-in detectors", () => {
  it.each(positives)("%s: %s", (type, text, value) => {
    const out = masked(text);
    expect(out).not.toContain(value);
    expect(out).toContain(`[MASKED:${type}]`);
    expect(typesIn(text)).toEqual([type]);
  });

  it.each(negatives)("leaves %s alone", (_name, text) => {
    expect(masker.findSpans(text)).toEqual([]);
    expect(masked(text)).toBe(text);
  });

  it("finds a credential in a short value as in a long text, whatever its body breaks token runs with", () => {
    const cases: [string, string, string][] = [
      ["bearer_token", "Authorization: Bearer abcd1234.efgh5678.ijkl9012", "abcd1234.efgh5678.ijkl9012"],
      ["slack_token", "token xoxb-1234567890 here", "xoxb-1234567890"],
      ["slack_webhook", "see https://hooks.slack.com/services/T0/B0/abcdefghij", "https://hooks.slack.com/services/T0/B0/abcdefghij"],
      ["gitlab_token", "PRIVATE-TOKEN: glpat-ab.cd.ef.gh.ij.kl.mn", "glpat-ab.cd.ef.gh.ij.kl.mn"],
    ];
    const padding = " and then some prose".repeat(40);
    for (const [type, text, value] of cases) {
      for (const t of [text, text + padding]) {
        expect(masked(t)).toBe(t.replace(value, `[MASKED:${type}]`));
      }
    }
  });

  it("masks only the password of a URL, keeping scheme, user and host", () => {
    expect(masked("mongodb+srv://admin:M0ng0Adm1n@cluster0.mongodb.net/test")).toBe("mongodb+srv://admin:[MASKED:url_password]@cluster0.mongodb.net/test");
  });

  it("masks a whole PEM private key block, and a truncated one up to its end", () => {
    const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7Jq0Vb1Zk\nLm9PqRsTuVwXyZ==\n-----END RSA PRIVATE KEY-----";
    expect(masked(`key:\n${pem}\nend`)).toBe("key:\n[MASKED:private_key]\nend");
    expect(masked("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0 ...[cut]")).toBe("[MASKED:private_key] ...[cut]");
  });

  it("tells IP addresses from versions by context", () => {
    expect(masked("server 10.2.3.4:9000 runs version 10.2.3.5")).toBe("server [MASKED:ip_address]:9000 runs version 10.2.3.5");
    expect(masked("http://172.16.254.1/status")).toBe("http://[MASKED:ip_address]/status");
  });

  it("can turn IP masking off, or only IPv6", () => {
    const text = "from 203.0.113.42 and 2001:db8::1:2";
    expect(createMasker({ personalData: "placeholder", ip: { enabled: false } }).maskText(text).masked).toBe(text);
    expect(createMasker({ personalData: "placeholder", ip: { v6: false } }).maskText(text).masked).toBe("from [MASKED:ip_address] and 2001:db8::1:2");
  });

  it("uses the JSON field name as context for phone numbers and secrets", () => {
    const { masked: out, hits } = masker.maskMessage({ phone: "020 7946 0958", password: "hunter22!", note: "020 7946 0958" });
    expect(out).toEqual({ phone: "[MASKED:phone]", password: "[MASKED:secret_assignment]", note: "020 7946 0958" });
    expect(hits).toEqual({ phone: 1, secret_assignment: 1 });
  });

  it("names a secret field's value by its own detector when one recognises it", () => {
    expect(masker.maskMessage({ api_key: "sk_live_4eC39HqLyjWDarjtT1zdp7dc" }).masked).toEqual({ api_key: "[MASKED:stripe_key]" });
  });

  it("can disable a detector", () => {
    expect(createMasker({ personalData: "placeholder", disable: ["email"] }).maskText("mail jane@example.com").masked).toBe("mail jane@example.com");
  });
});
