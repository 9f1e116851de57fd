// Click → decision latency (a measurement, not a test): a real signed click POSTed to the bot,
// timed until the waiter holding the call is released, on the same service instance and on a
// second instance (another replica) released by NOTIFY. Run: npx tsx test/approvals/latency.ts
import { pino } from "pino";
import { ApprovalService } from "../../gateway/approvals/service.js";
import { EmailDirectory } from "../../gateway/approvals/directory.js";
import { baseRequest, startStack } from "./harness.js";

const ROUNDS = Number(process.env.ROUNDS ?? 200);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const s = await startStack();
const other = new ApprovalService({
  databaseUrl: s.db.url,
  recorder: s.recorder,
  directory: new EmailDirectory({}),
  log: pino({ level: "silent" }),
  pollIntervalMs: 60_000,
  sweepIntervalMs: 60_000,
});
await other.start();
try {
  const same: number[] = [];
  const cross: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Interleaved, so both see the same machine conditions.
    for (const [svc, into] of [[s.service, same], [other, cross]] as const) {
      const { request } = await svc.request(baseRequest(s.sessionId));
      const waiting = svc.waitForDecision(request.id, undefined, 30_000);
      await new Promise((r) => setTimeout(r, 5));
      const t0 = process.hrtime.bigint();
      const click = s.click("bob", "approve", request.id);
      const r = await waiting;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      await click;
      if (r.status !== "approved") throw new Error(`round ${i}: ${r.status}`);
      into.push(ms);
    }
  }
  const line = (name: string, xs: number[]) => `${name.padEnd(28)} n=${xs.length}  p50=${pct(xs, 50).toFixed(1)} ms  p99=${pct(xs, 99).toFixed(1)} ms  max=${Math.max(...xs).toFixed(1)} ms`;
  console.log(line("same instance (in-process)", same));
  console.log(line("other instance (NOTIFY)", cross));
} finally {
  await other.stop();
  await s.stop();
}
