/**
 * Media fields (`data` of image/audio content, `blob` of resources): passed untouched only when
 * they decode as media of their declared type. Anything else (plain text in an image's `data`,
 * a text file as a blob, base64 of a secret) is content and is masked: its decoded text is
 * scanned and, when something is masked, re-encoded so the field stays valid base64.
 */

const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of a base64 field, or undefined when it is not strict base64 (then it is text). */
export function decodeBase64Field(value: string): Buffer | undefined {
  const compact = value.includes("\n") || value.includes("\r") ? value.replace(/[\r\n]/g, "") : value;
  if (compact.length % 4 !== 0 || !STRICT_BASE64.test(compact)) return undefined;
  return Buffer.from(compact, "base64");
}

function startsWith(buf: Buffer, bytes: readonly number[], at = 0): boolean {
  if (buf.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Magic numbers of the media types MCP servers send. */
const SIGNATURES: Array<{ test: (b: Buffer) => boolean; family: string }> = [
  { family: "image/png", test: (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { family: "image/jpeg", test: (b) => startsWith(b, [0xff, 0xd8, 0xff]) },
  { family: "image/gif", test: (b) => startsWith(b, ascii("GIF87a")) || startsWith(b, ascii("GIF89a")) },
  { family: "image/webp", test: (b) => startsWith(b, ascii("RIFF")) && startsWith(b, ascii("WEBP"), 8) },
  { family: "image/bmp", test: (b) => startsWith(b, ascii("BM")) },
  { family: "image/tiff", test: (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a]) },
  { family: "image/x-icon", test: (b) => startsWith(b, [0x00, 0x00, 0x01, 0x00]) },
  { family: "image/avif", test: (b) => startsWith(b, ascii("ftypavif"), 4) || startsWith(b, ascii("ftypheic"), 4) },
  { family: "audio/wav", test: (b) => startsWith(b, ascii("RIFF")) && startsWith(b, ascii("WAVE"), 8) },
  { family: "audio/mpeg", test: (b) => startsWith(b, ascii("ID3")) || (b.length > 1 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0) },
  { family: "audio/ogg", test: (b) => startsWith(b, ascii("OggS")) },
  { family: "audio/flac", test: (b) => startsWith(b, ascii("fLaC")) },
  { family: "audio/webm", test: (b) => startsWith(b, [0x1a, 0x45, 0xdf, 0xa3]) },
  { family: "audio/mp4", test: (b) => startsWith(b, ascii("ftyp"), 4) },
  { family: "application/pdf", test: (b) => startsWith(b, ascii("%PDF-")) },
  { family: "application/zip", test: (b) => startsWith(b, [0x50, 0x4b, 0x03, 0x04]) },
  { family: "application/gzip", test: (b) => startsWith(b, [0x1f, 0x8b]) },
];

const ALIASES: Record<string, string> = {
  "image/jpg": "image/jpeg",
  "image/x-png": "image/png",
  "image/vnd.microsoft.icon": "image/x-icon",
  "image/heic": "image/avif",
  "audio/x-wav": "audio/wav",
  "audio/wave": "audio/wav",
  "audio/mp3": "audio/mpeg",
  "audio/x-flac": "audio/flac",
  "audio/m4a": "audio/mp4",
  "audio/x-m4a": "audio/mp4",
  "audio/aac": "audio/mp4",
  "video/webm": "audio/webm",
  "video/mp4": "audio/mp4",
  "application/x-gzip": "application/gzip",
  "application/x-zip-compressed": "application/zip",
};

/**
 * True when the bytes are media of the declared type (its magic number matches). A declared
 * type we cannot check (application/octet-stream, text/*, image/svg+xml: SVG is text) is
 * not media here: its bytes are scanned.
 */
export function isDeclaredMedia(bytes: Buffer, mimeType: unknown): boolean {
  if (typeof mimeType !== "string") return false;
  const base = mimeType.split(";")[0]!.trim().toLowerCase();
  const family = ALIASES[base] ?? base;
  for (const s of SIGNATURES) if (s.family === family) return s.test(bytes);
  return false;
}

/** `{type: "image"|"audio", data}` content (also inside log notifications) and `{blob}` resources. */
export function isMediaField(obj: Record<string, unknown>, key: string): boolean {
  if (key === "data") return (obj.type === "image" || obj.type === "audio") && typeof obj.data === "string";
  if (key === "blob") return typeof obj.blob === "string";
  return false;
}
