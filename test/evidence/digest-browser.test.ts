// The manager's digest in a real browser (Debian's Chromium through playwright-core), with
// JavaScript off: the page must stand on its server-rendered HTML and inline SVG. Over a seeded
// week plus a flood of authentication failures and a break-glass decision, the red banner lists
// every exception with a link to its section, the headline strip compares with the week before,
// the four charts draw, print shows the header with week and hash and puts each criterion on its
// own page, and a phone-width screen does not scroll sideways. The screenshot is docs/digest.png.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { digestForWeek } from "../../gateway/evidence/generate.js";
import { renderDigest } from "../../gateway/evidence/render.js";
import { earlierDigests } from "../../gateway/store/digests.js";
import { parseIsoWeek } from "../../gateway/evidence/week.js";
import { keyMap, newKey } from "../chain/lib.js";
import { createTestDatabase, ROOT, type TestDatabase } from "../helpers/postgres.js";
import { SEED_WEEK, SEED_ZONE, seedWeek } from "./seed.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`digest browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

const key = newKey("digest-browser");
let db: TestDatabase;
let client: pg.Client;
let html = "";

beforeAll(async () => {
  if (!haveChromium) return;
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  await seedWeek(client, key.signer);
  const week = parseIsoWeek(SEED_WEEK, SEED_ZONE);
  const at = new Date(week.start.getTime() + 2 * 86_400_000 + 10 * 3_600_000);
  // 100,002 failed authentications in one aggregated event, and a break-glass approval.
  await client.query(`INSERT INTO events (type, reason, detail, at) VALUES ('auth_failed', 'bad_signature', '{"aggregated": true, "count": 100002}', $1)`, [at]);
  await client.query(
    `INSERT INTO approval_votes ("requestId", approver, decision, reason, via, at)
     SELECT id, 'root@example.com', 'approve', 'payments down, incident INC-9', 'break_glass', $1 FROM approval_requests ORDER BY id LIMIT 1
     ON CONFLICT DO NOTHING`,
    [at],
  );
  // The week before, stored: the headline compares with it.
  const previous = parseIsoWeek("2026-W46", SEED_ZONE);
  await digestForWeek(client, { week: previous, trigger: "on_demand", signer: key.signer, verifiers: keyMap(key.verifier) });
  const d = await digestForWeek(client, { week, trigger: "on_demand", signer: key.signer, verifiers: keyMap(key.verifier) });
  html = renderDigest(d.content, d.seal, "html", { history: await earlierDigests(client, SEED_WEEK, SEED_ZONE) });
}, 120_000);

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

it.skipIf(!haveChromium)("renders the manager's digest with banner, headline and charts, prints a page per criterion, and fits a phone", async () => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  try {
    const page = await browser.newPage({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
    await page.setContent(html, { waitUntil: "load" });

    // The banner: red, at the top, every exception with a link to its section.
    const banner = page.locator(".banner[role=alert]");
    await expect(banner.locator("h2").textContent()).resolves.toMatch(/^\d+ exception\(s\) need a look$/);
    expect(await banner.evaluate((e) => getComputedStyle(e).borderTopColor)).toBe("rgb(180, 35, 24)");
    const bannerTop = (await banner.boundingBox())!.y;
    expect(bannerTop).toBeLessThan(200);
    const items = await banner.locator("li").allTextContents();
    expect(items.some((t) => t.includes("Flood of authentication failures: 100,053 in the week"))).toBe(true);
    expect(items.some((t) => t.includes("Break-glass approve by root@example.com") && t.includes("payments down, incident INC-9"))).toBe(true);
    for (const href of await banner.locator("a").evaluateAll((as) => as.map((a) => a.getAttribute("href")))) {
      expect(await page.locator(`section${href}`).count()).toBe(1);
    }

    // The headline strip: thousands separators and a comparison with the stored week before.
    const auth = page.locator('.card[data-key="authFailures"]');
    await expect(auth.locator(".value").textContent()).resolves.toBe("100,053");
    await expect(auth.locator(".delta").textContent()).resolves.toMatch(/vs (none )?last week/);
    expect(await auth.locator(".delta").getAttribute("class")).toContain("worse");
    await expect(page.locator(".card .median").first().textContent()).resolves.toMatch(/^4-week median /);

    // Four charts, drawn (bars with a size), without JavaScript.
    const charts = page.locator("figure.chart");
    expect(await charts.count()).toBe(4);
    await expect(charts.locator("figcaption").allTextContents()).resolves.toEqual([
      "Tool calls per day",
      "Time to decision (decided requests)",
      "Authentication failures per day, by reason",
      "Masked values by type",
    ]);
    for (let i = 0; i < 4; i++) {
      const bars = await charts.nth(i).locator("rect").evaluateAll((rs) => rs.filter((r) => r.getBoundingClientRect().height > 1 && r.getBoundingClientRect().width > 1).length);
      expect(bars, `chart ${i} draws bars`).toBeGreaterThan(0);
    }

    mkdirSync(join(ROOT, "docs"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "docs", "digest.png"), clip: { x: 0, y: 0, width: 1200, height: 1250 } });

    // Print: the header with week and hash on each page; every criterion starts a page.
    await page.emulateMedia({ media: "print" });
    const header = page.locator(".print-header");
    expect(await header.isVisible()).toBe(true);
    await expect(header.textContent()).resolves.toContain(SEED_WEEK);
    expect(await page.locator("section.criterion").first().evaluate((e) => getComputedStyle(e).breakBefore)).toBe("page");
    const pdf = await page.pdf({ format: "A4" });
    expect(pdf.subarray(0, 5).toString()).toBe("%PDF-");

    // A phone: no sideways scrolling of the page itself.
    await page.emulateMedia({ media: "screen" });
    await page.setViewportSize({ width: 390, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}, 120_000);
