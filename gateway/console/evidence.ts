// Evidence, for auditors and admins: the stored weekly digests (each signature checked against
// the configured checkpoint keys on every view), the audit chain's state (the last verification
// run here, the last signed checkpoint, any failure in red), and tool pins with the diff of each
// changed definition; admins accept a change (re-pin) from here.
//
//   GET  /console/evidence?page=N
//   GET  /console/evidence/digests/:id           the rendered digest (its own page, inline styles only)
//   POST /console/evidence/verify                {_csrf}: verify the whole chain now
//   POST /console/evidence/pins/repin            {_csrf, connection, tool}: admins
import { createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { latestCheckpoint } from "../audit/chain/checkpoint.js";
import { loadCheckpointKeys } from "../audit/chain/keys.js";
import { verifyChain, type VerifyResult } from "../audit/chain/verify.js";
import { renderDigest } from "../evidence/render.js";
import { verifyDigestSignature, digestBytes } from "../evidence/sign.js";
import { digestById, listDigests, type StoredDigest } from "../store/digests.js";
import { diffDefinitions, formatChanges, summarizeChanges } from "../pinning/diff.js";
import { PinStore } from "../store/pins.js";
import type { ChainClient } from "../store/pools.js";
import type { ConsoleContext } from "./context.js";
import { timeView } from "./render.js";

const PAGE_SIZE = 10;

export function registerEvidence(app: FastifyInstance, ctx: ConsoleContext): void {
  const { config, pool } = ctx.deps;
  // Reads only (the store's background pool); verification holds one connection for its duration.
  const pins = new PinStore(pool);
  const keys = () => loadCheckpointKeys(config, false).verifiers;
  /** The last verification run from the console on this replica (one value, replaced each run). */
  let lastVerification: { at: Date; by: string; result: VerifyResult } | undefined;
  let verifying: Promise<unknown> | undefined;

  const sealOf = (d: StoredDigest) => {
    const verifier = d.keyId ? keys().get(d.keyId) : undefined;
    const intact = createHash("sha256").update(digestBytes(d.content)).digest("hex") === d.sha256.trim();
    const signed = Boolean(d.signature && verifier && verifyDigestSignature(d.content, d.signature, verifier.key));
    return { intact, signed, verifier };
  };

  app.get<{ Querystring: { page?: string; result?: string } }>("/evidence", async (req, reply) => {
    const roles = ctx.state(req).roles;
    if (!roles?.auditor) return ctx.forbidden(req, reply, "reading evidence");
    const page = Math.max(1, Math.min(1000, Number(req.query.page) || 1));
    const c = await pool.connect();
    try {
      const digests = await listDigests(c, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE);
      const checkpoint = await latestCheckpoint(c as unknown as ChainClient);
      const allPins = await pins.list();
      const v = lastVerification;
      const changed = allPins.filter((p) => p.hash !== p.currentHash);
      return ctx.page(req, reply, "evidence", { title: "Evidence", nav: "evidence", notice: req.query.result === "repinned" ? { text: "Re-pinned: calls to the tool follow its pin again." } : undefined }, {
        digests: digests.slice(0, PAGE_SIZE).map((d) => {
          const s = sealOf(d);
          return {
            id: d.id,
            week: d.week,
            timeZone: d.timeZone,
            href: `/console/evidence/digests/${encodeURIComponent(d.id)}`,
            generated: timeView(d.generatedAt),
            posted: timeView(d.postedAt),
            exceptions: d.content.summary.exceptions,
            signatureOk: s.intact && s.signed,
            signatureText: !d.signature ? "not signed (no checkpoint key)" : !s.verifier ? `signed with key '${d.keyId}', which is not configured here` : s.intact && s.signed ? `signature valid (key ${d.keyId})` : "SIGNATURE INVALID: the stored digest was changed",
            unsigned: !d.signature,
          };
        }),
        noDigests: digests.length === 0,
        prev: page > 1 ? `/console/evidence?page=${page - 1}` : null,
        next: digests.length > PAGE_SIZE ? `/console/evidence?page=${page + 1}` : null,
        checkpoint: checkpoint ? { id: checkpoint.id, seq: checkpoint.body.sequence, head: checkpoint.body.head.slice(0, 16), time: timeView(checkpoint.body.time), keyId: checkpoint.body.keyId } : null,
        verification: v
          ? {
              ok: v.result.ok,
              at: timeView(v.at),
              by: v.by,
              records: v.result.range?.records ?? 0,
              head: v.result.head ? `${v.result.head.hash.slice(0, 16)}… at seq ${v.result.head.seq}` : "empty chain",
              problems: v.result.problems.slice(0, 20).map((p) => ({ ...p, seqText: p.seq ?? "—" })),
              moreProblems: v.result.problems.length > 20 ? v.result.problems.length - 20 : 0,
              warnings: v.result.warnings,
            }
          : null,
        pins: allPins.map((p) => ({ connection: p.connection, tool: p.tool, ok: p.hash === p.currentHash, hash: p.hash.slice(0, 12), pinnedAt: timeView(p.pinnedAt), pinnedBy: p.pinnedBy })),
        noPins: allPins.length === 0,
        changed: changed.map((p) => {
          const changes = diffDefinitions(p.definition, p.currentDefinition);
          return { connection: p.connection, tool: p.tool, from: p.hash.slice(0, 12), to: p.currentHash.slice(0, 12), seen: timeView(p.currentSeenAt), summary: summarizeChanges(changes), diff: formatChanges(changes).join("\n") };
        }),
        admin: roles.admin,
      });
    } finally {
      c.release();
    }
  });

  app.get<{ Params: { id: string } }>("/evidence/digests/:id", async (req, reply) => {
    if (!ctx.state(req).roles?.auditor) return ctx.forbidden(req, reply, "reading evidence");
    if (!/^\d{1,18}$/.test(req.params.id)) return reply.code(404).type("text/plain").send("no such digest");
    const d = await digestById(pool, req.params.id);
    if (!d) return reply.code(404).type("text/plain").send("no such digest");
    const s = sealOf(d);
    const html = renderDigest(d.content, { sha256: d.sha256, signature: d.signature, keyId: d.keyId, publicKey: null }, "html");
    const banner = s.intact && s.signed
      ? `<p role="status" style="background:#e6f4ea;border:1px solid #1a7f37;padding:.6rem">Signature verified with key ${escapeHtml(d.keyId ?? "")}.</p>`
      : `<p role="alert" style="background:#fde8e8;border:2px solid #b42318;color:#7a0f0f;padding:.6rem;font-weight:600">${d.signature ? (s.verifier ? "Signature INVALID: this digest was changed after it was signed." : `Signed with key ${escapeHtml(d.keyId ?? "")}, which is not configured here: cannot verify.`) : "Not signed: no checkpoint key was configured."}</p>`;
    // The digest is a self-contained page with its own <style>: its own policy, no script at all.
    return reply
      .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
      .type("text/html; charset=utf-8")
      .send(html.replace(/<body>/, `<body>\n<p><a href="/console/evidence">← Evidence</a></p>\n${banner}`));
  });

  app.post("/evidence/verify", async (req, reply) => {
    const login = ctx.state(req).login!;
    if (!ctx.state(req).roles?.auditor) return ctx.forbidden(req, reply, "verifying the audit chain");
    // One verification at a time on this replica: a second click waits for the running one.
    verifying ??= (async () => {
      const client = await pool.connect();
      let failed: unknown;
      try {
        const result = await verifyChain(client as unknown as ChainClient, { keys: keys(), checkpointsDir: config.audit.checkpoint?.directory, checkpointIntervalMinutes: config.audit.checkpoint?.intervalMinutes });
        lastVerification = { at: new Date(), by: login.email ?? login.subject, result };
        await ctx.record(req, "chain_verified", { ok: result.ok, records: result.range?.records ?? 0, problems: result.problems.length, firstBad: result.firstBad }).catch(() => {});
      } catch (err) {
        failed = err;
        throw err;
      } finally {
        // A connection that failed mid-verification is dropped, not returned to the pool.
        client.release(failed !== undefined);
      }
    })().finally(() => (verifying = undefined));
    await verifying;
    return reply.redirect("/console/evidence#chain");
  });

  app.post<{ Body: { connection?: string; tool?: string } }>("/evidence/pins/repin", async (req, reply) => {
    const login = ctx.state(req).login!;
    if (!ctx.state(req).roles?.admin) return ctx.forbidden(req, reply, "re-pinning tools (admins only)");
    const connection = String(req.body?.connection ?? "").slice(0, 100);
    const tool = String(req.body?.tool ?? "").slice(0, 300);
    if (!connection || !tool) return reply.code(400).type("text/plain").send("connection and tool are required");
    const by = `${login.email ?? login.subject} (console)`;
    const result = await pins.repin(connection, by, tool);
    await ctx.record(req, "tools_repinned", { tools: result.repinned.map((r) => ({ tool: r.tool, oldHash: r.previousHash, newHash: r.hash })) }, { connection }).catch(() => {});
    // This replica applies it now; the others hear the NOTIFY.
    await ctx.deps.pins?.reload(connection).catch(() => {});
    return reply.redirect("/console/evidence?result=repinned#pins");
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
