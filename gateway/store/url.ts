// Database URLs in messages and logs: never with their password. (Apart from the Prisma client,
// so commands that only print a URL do not load it.)

/** The URL with its password hidden, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable database URL)";
  }
}
