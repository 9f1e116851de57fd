// Every place content can hide from a pattern: keys, media fields that are not media, JSON
// escapes, encodings, credential-named keys of AWS's own spelling.
import { describe, expect, it } from "vitest";
import { createMasker } from "../../gateway/masking/index.js";

const GITHUB = ["ghp_", "R2d2C3p0BeepBoopWhirrClick0123456789"].join("");
const AWS_ID = ["AKIA", "ZQ3T7Y2K5M4N8P6R"].join("");
const AWS_SECRET = ["wJalrXUtnFEMI/K7MDENG", "bPxRfiCYzq8R3KEYX2m1"].join("/");
const EMAIL = ["dana.kowalski", "example-corp.com"].join("@");
const PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const masker = createMasker({ personalData: "placeholder" });
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** The client's view: everything a JSON.parse and a base64 decode of any field would give. */
function everythingVisible(value: unknown): string {
  const parts: string[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      parts.push(v);
      if (/^[A-Za-z0-9+/]+={0,2}$/.test(v) && v.length % 4 === 0) parts.push(Buffer.from(v, "base64").toString("latin1"));
      try {
        parts.push(JSON.stringify(JSON.parse(v)));
      } catch {
        /* not JSON */
      }
    } else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) (parts.push(k), visit(x));
  };
  visit(value);
  return parts.join("\n");
}

const CASES: Array<{ name: string; result: unknown; secret: string }> = [
  { name: "a secret as an object key", result: { structuredContent: { [GITHUB]: "owner" } }, secret: GITHUB },
  { name: "an e-mail as an object key", result: { structuredContent: { byUser: { [EMAIL]: 3 } } }, secret: EMAIL },
  { name: "plain text in an image's data", result: { content: [{ type: "image", mimeType: "image/png", data: `key ${AWS_ID}` }] }, secret: AWS_ID },
  { name: "base64 text in an image's data", result: { content: [{ type: "image", mimeType: "image/png", data: b64(`key ${AWS_ID} here`) }] }, secret: AWS_ID },
  { name: "a text file as a resource blob", result: { contents: [{ uri: "file:///etc/app.env", mimeType: "text/plain", blob: b64(`GITHUB_TOKEN=${GITHUB}\n`) }] }, secret: GITHUB },
  { name: "JSON text with \\u escapes", result: { content: [{ type: "text", text: `{"t":"${GITHUB.replace("g", "\\u0067").replace("R", "\\u0052")}"}` }] }, secret: GITHUB },
  { name: "JSON text with \\/ escapes", result: { content: [{ type: "text", text: `{"u":"https:\\/\\/ci:${"S3cr3tPassw0rd"}@ci.example-corp.com\\/hook"}` }] }, secret: "S3cr3tPassw0rd" },
  { name: "an AWS secret key under aws_secret_access_key", result: { structuredContent: { aws_secret_access_key: AWS_SECRET } }, secret: AWS_SECRET },
  { name: "an AWS secret key under SecretAccessKey", result: { structuredContent: { Credentials: { AccessKeyId: AWS_ID, SecretAccessKey: AWS_SECRET } } }, secret: AWS_SECRET },
  { name: "a base64-encoded secret in text", result: { content: [{ type: "text", text: `config: ${b64(GITHUB)}` }] }, secret: GITHUB },
  { name: "a hex-encoded secret in text", result: { content: [{ type: "text", text: `config: ${Buffer.from(GITHUB).toString("hex")}` }] }, secret: GITHUB },
  { name: "a URL-encoded e-mail in text", result: { content: [{ type: "text", text: `https://crm.example-corp.com/find?q=${encodeURIComponent(EMAIL)}` }] }, secret: EMAIL },
];

describe("nothing hides from masking", () => {
  for (const c of CASES) {
    it(`masks ${c.name}`, () => {
      const msg = { jsonrpc: "2.0", id: 1, result: c.result };
      const r = masker.maskMessage(msg);
      expect(r.refused).toBeUndefined();
      expect(r.changed).toBe(true);
      expect(everythingVisible(r.masked)).not.toContain(c.secret);
    });
  }

  it("masks a log notification carrying type image whose data is text", () => {
    const msg = { jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: { type: "image", mimeType: "image/png", data: `token ${GITHUB}` } } };
    expect(JSON.stringify(masker.maskMessage(msg).masked)).not.toContain(GITHUB);
  });

  it("keeps valid base64 in a media field it had to mask", () => {
    const r = masker.maskMessage({ result: { contents: [{ uri: "file:///a", mimeType: "text/plain", blob: b64(`owner: ${EMAIL}\n`) }] } });
    const blob = r.masked.result.contents[0]!.blob;
    expect(Buffer.from(blob, "base64").toString("utf8")).toBe("owner: [MASKED:email]\n");
  });

  it("keeps two keys masked alike apart", () => {
    const other = ["lee.ostrowski", "example-corp.com"].join("@");
    const r = masker.maskMessage({ result: { structuredContent: { [EMAIL]: 1, [other]: 2 } } });
    expect(Object.values(r.masked.result.structuredContent)).toEqual([1, 2]);
  });

  it("does not take hashes, UUIDs, words or real images for encoded secrets", () => {
    const text = `sha256 ${"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"} id 123e4567-e89b-12d3-a456-426614174000 InternationalizationConfiguration data:image/png;base64,${PNG_1x1}`;
    const msg = { result: { content: [{ type: "text", text }, { type: "image", mimeType: "image/png", data: PNG_1x1 }] } };
    expect(masker.maskMessage(msg).changed).toBe(false);
  });
});

describe("things that are not personal data", () => {
  it("leaves an scp-style git remote and a loopback address with its port intact", () => {
    const text = "clone git@github.com:org/repo.git, then open http://127.0.0.1:8080/ and [::1]:5432";
    expect(masker.maskText(text).masked).toBe(text);
  });
});
