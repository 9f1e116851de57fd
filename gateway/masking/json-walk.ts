/**
 * Base64 bodies in text fields: a data: URI or a long unbroken base64 run is checked as media
 * (media.ts) rather than scanned as prose, where a random run can look like a key.
 */

const BASE64_BODY = /^[A-Za-z0-9+/\r\n]+={0,2}$/;
const DATA_URI = /^data:[\w.+-]{1,64}\/[\w.+-]{1,64}(?:;[\w=.-]{1,64})*;base64,/;

/** A whole string that is a data: URI or a long unbroken base64 body. */
export function looksLikeBase64Blob(text: string): boolean {
  if (text.startsWith("data:")) return DATA_URI.test(text);
  return text.length >= 256 && !text.includes(" ") && BASE64_BODY.test(text);
}
