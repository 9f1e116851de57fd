// Slack's documented Block Kit limits, checked the way Slack checks them: on the JSON as sent (so
// after mrkdwn escaping). Written from docs.slack.dev (Block Kit reference: blocks, block elements,
// composition objects, surfaces) independently of bot/blocks.ts, so a builder bug cannot hide here.
// Slack answers a message or view that breaks any of them with `invalid_blocks` (views:
// `invalid_arguments`), naming the JSON pointer of each problem.

type J = Record<string, unknown>;

const isObj = (v: unknown): v is J => typeof v === "object" && v !== null && !Array.isArray(v);

export function blockKitProblems(surface: "message" | "modal", blocks: unknown): string[] {
  const problems: string[] = [];
  const bad = (path: string, what: string) => problems.push(`${what} [json-pointer:${path}]`);
  const text = (path: string, t: unknown, max: number, only?: "plain_text" | "mrkdwn") => {
    if (!isObj(t)) return bad(path, "must be a text object");
    if (t.type !== "plain_text" && t.type !== "mrkdwn") return bad(`${path}/type`, "must be plain_text or mrkdwn");
    if (only && t.type !== only) bad(`${path}/type`, `must be ${only}`);
    if (typeof t.text !== "string" || t.text.length < 1) return bad(`${path}/text`, "must be at least 1 character");
    if (t.text.length > max) bad(`${path}/text`, `must be at most ${max} characters (is ${t.text.length})`);
  };
  const str = (path: string, v: unknown, max: number) => {
    if (v === undefined) return;
    if (typeof v !== "string") return bad(path, "must be a string");
    if (v.length > max) bad(path, `must be at most ${max} characters (is ${v.length})`);
  };
  const confirm = (path: string, c: unknown) => {
    if (c === undefined) return;
    if (!isObj(c)) return bad(path, "must be a confirmation dialog");
    text(`${path}/title`, c.title, 100, "plain_text");
    text(`${path}/text`, c.text, 300);
    text(`${path}/confirm`, c.confirm, 30, "plain_text");
    text(`${path}/deny`, c.deny, 30, "plain_text");
  };
  const element = (path: string, e: unknown) => {
    if (!isObj(e)) return bad(path, "must be an element");
    str(`${path}/action_id`, e.action_id, 255);
    switch (e.type) {
      case "button":
        text(`${path}/text`, e.text, 75, "plain_text");
        str(`${path}/value`, e.value, 2000);
        str(`${path}/url`, e.url, 3000);
        if (e.style !== undefined && e.style !== "primary" && e.style !== "danger") bad(`${path}/style`, "must be primary or danger");
        confirm(`${path}/confirm`, e.confirm);
        break;
      case "plain_text_input":
        if (e.placeholder !== undefined) text(`${path}/placeholder`, e.placeholder, 150, "plain_text");
        if (e.max_length !== undefined && (typeof e.max_length !== "number" || e.max_length > 3000)) bad(`${path}/max_length`, "must be at most 3000");
        str(`${path}/initial_value`, e.initial_value, 3000);
        break;
      case "image":
        str(`${path}/image_url`, e.image_url, 3000);
        str(`${path}/alt_text`, e.alt_text, 2000);
        break;
      case "plain_text":
      case "mrkdwn":
        text(path, e, 3000);
        break;
      default:
        bad(`${path}/type`, `unknown element type ${String(e.type)}`);
    }
  };

  if (!Array.isArray(blocks)) {
    if (blocks !== undefined) bad("/blocks", "must be an array");
    return problems;
  }
  const max = surface === "modal" ? 100 : 50;
  if (blocks.length > max) bad("/blocks", `no more than ${max} items allowed (is ${blocks.length})`);
  const ids = new Set<string>();
  blocks.forEach((b, i) => {
    const p = `/blocks/${i}`;
    if (!isObj(b)) return bad(p, "must be a block");
    if (b.block_id !== undefined) {
      str(`${p}/block_id`, b.block_id, 255);
      if (ids.has(String(b.block_id))) bad(`${p}/block_id`, "must be unique within the message");
      ids.add(String(b.block_id));
    }
    switch (b.type) {
      case "header":
        text(`${p}/text`, b.text, 150, "plain_text");
        break;
      case "section":
        if (b.text === undefined && b.fields === undefined) bad(p, "needs text or fields");
        if (b.text !== undefined) text(`${p}/text`, b.text, 3000);
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields)) bad(`${p}/fields`, "must be an array");
          else {
            if (b.fields.length > 10) bad(`${p}/fields`, `no more than 10 items allowed (is ${b.fields.length})`);
            b.fields.forEach((f, j) => text(`${p}/fields/${j}`, f, 2000));
          }
        }
        if (b.accessory !== undefined) element(`${p}/accessory`, b.accessory);
        break;
      case "context":
        if (!Array.isArray(b.elements) || b.elements.length < 1) bad(`${p}/elements`, "must have at least 1 element");
        else {
          if (b.elements.length > 10) bad(`${p}/elements`, `no more than 10 items allowed (is ${b.elements.length})`);
          b.elements.forEach((e, j) => element(`${p}/elements/${j}`, e));
        }
        break;
      case "actions":
        if (!Array.isArray(b.elements) || b.elements.length < 1) bad(`${p}/elements`, "must have at least 1 element");
        else {
          if (b.elements.length > 25) bad(`${p}/elements`, `no more than 25 items allowed (is ${b.elements.length})`);
          b.elements.forEach((e, j) => element(`${p}/elements/${j}`, e));
        }
        break;
      case "divider":
        break;
      case "image":
        str(`${p}/image_url`, b.image_url, 3000);
        str(`${p}/alt_text`, b.alt_text, 2000);
        if (b.title !== undefined) text(`${p}/title`, b.title, 2000, "plain_text");
        break;
      case "input":
        if (surface !== "modal") bad(p, "input blocks belong in modals");
        text(`${p}/label`, b.label, 2000, "plain_text");
        if (b.hint !== undefined) text(`${p}/hint`, b.hint, 2000, "plain_text");
        element(`${p}/element`, b.element);
        break;
      default:
        bad(`${p}/type`, `unknown or unchecked block type ${String(b.type)}`);
    }
  });
  return problems;
}

/** A chat.postMessage / chat.update / chat.postEphemeral payload. */
export function messageProblems(args: J): string[] {
  const problems = blockKitProblems("message", args.blocks);
  // Slack refuses top-level text beyond 40,000 characters (msg_too_long); checked separately.
  return problems;
}

/** A views.open / views.update / views.push view. */
export function viewProblems(view: unknown): string[] {
  if (!isObj(view)) return ["view must be an object"];
  const problems = blockKitProblems("modal", view.blocks);
  const t = (path: string, v: unknown, max: number) => {
    if (!isObj(v) || v.type !== "plain_text" || typeof v.text !== "string" || v.text.length < 1 || v.text.length > max) problems.push(`must be plain_text of 1 to ${max} characters [json-pointer:/view${path}]`);
  };
  if (view.type !== "modal") problems.push("type must be modal [json-pointer:/view/type]");
  t("/title", view.title, 24);
  if (view.submit !== undefined) t("/submit", view.submit, 24);
  if (view.close !== undefined) t("/close", view.close, 24);
  const hasInput = Array.isArray(view.blocks) && view.blocks.some((b) => isObj(b) && b.type === "input");
  if (hasInput && view.submit === undefined) problems.push("a view with input blocks needs submit [json-pointer:/view/submit]");
  for (const [k, max] of [["private_metadata", 3000], ["callback_id", 255], ["external_id", 255]] as const) {
    const v = view[k];
    if (v !== undefined && (typeof v !== "string" || v.length > max)) problems.push(`must be at most ${max} characters [json-pointer:/view/${k}]`);
  }
  return problems;
}

/** Throws with every problem listed: for tests that render without the fake. */
export function assertValidMessage(m: { text?: string; blocks: unknown }): void {
  const p = messageProblems(m as J);
  if (typeof m.text === "string" && m.text.length > 40_000) p.push("text is longer than 40,000 characters (msg_too_long)");
  if (p.length > 0) throw new Error(`invalid_blocks:\n${p.join("\n")}`);
}

export function assertValidView(v: unknown): void {
  const p = viewProblems(v);
  if (p.length > 0) throw new Error(`invalid view:\n${p.join("\n")}`);
}
