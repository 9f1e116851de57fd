// The console's place in the URL space, and the one rule for where a login may send the browser
// back to. Apart from plugin.ts so that the login routes need not import the plugin that mounts them.

export const CONSOLE_PREFIX = "/console";

/** The path a login form should return to: only console paths, never another site. */
export function safeNext(next: unknown): string {
  return typeof next === "string" && /^\/console\/[A-Za-z0-9/_?=&%.:-]*$/.test(next) && !next.startsWith("//") ? next : `${CONSOLE_PREFIX}/`;
}
