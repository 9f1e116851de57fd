/**
 * Which parts of an MCP payload are binary and must pass through untouched: masking inside
 * base64 would corrupt images and audio, and a random base64 run can look like a key.
 */

/** `{type: "image"|"audio", data}` content items and `{uri, blob}` resource contents. */
export function isSkippedBinary(obj: Record<string, unknown>, key: string): boolean {
  if (key === "data") return obj.type === "image" || obj.type === "audio";
  if (key === "blob") return typeof obj.blob === "string";
  return false;
}

const BASE64_BODY = /^[A-Za-z0-9+/\r\n]+={0,2}$/;
const DATA_URI = /^data:[\w.+-]{1,64}\/[\w.+-]{1,64}(?:;[\w=.-]{1,64})*;base64,/;

/** A whole string that is a data: URI or a long unbroken base64 body. */
export function looksLikeBase64Blob(text: string): boolean {
  if (text.startsWith("data:")) return DATA_URI.test(text);
  return text.length >= 256 && !text.includes(" ") && BASE64_BODY.test(text);
}
