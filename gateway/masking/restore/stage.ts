/**
 * The two places the data path meets the pseudonym map, kept here so the data path calls each in
 * one line:
 *
 * - restore stage (client → upstream, right after admission, before policy): pseudonyms this
 *   caller was shown come back as the originals, so policy, the approval's arguments hash and the
 *   forward see what the caller meant. Only content is restored: the envelope, protocol members
 *   of `params` (progress token, cursor, request state, URI…) and `_meta` pass as sent.
 * - mask stage (upstream → client): the pseudonyms a caller's view carries are remembered before
 *   that view is delivered, so the caller can send them back at once, to any replica.
 *
 * Both fail closed: a map that cannot be read or written fails that call only
 * (CS_ERR_AUDIT_UNAVAILABLE: the map lives in the audit store), never passes a pseudonym on as
 * if it were data, and never delivers a pseudonym that could not be restored later.
 */
import { CountersignError } from "../../errors.js";
import type { EventRecord } from "../../audit/recorder.js";
import type { IssuedPseudonym } from "../engine.js";
import { protocolFieldKind } from "../protocol-fields.js";
import type { Restorer } from "./restorer.js";

export interface RestoreOutcome<M> {
  /** The message to decide, record and forward: the input itself when nothing was restored. */
  message: M;
  /** How many pseudonyms were replaced by their originals. */
  restored: number;
  /** Set when the map could not be read or the arguments are beyond the walk's bounds: fail the call with it. */
  error?: CountersignError;
}

/** The restore stage: the caller's pseudonyms in a request's or notification's `params` (content only) become the originals. */
export async function restoreRequest<M extends object>(restorer: Restorer | undefined, message: M, scope: string): Promise<RestoreOutcome<M>> {
  // Only params: a response's result (the client answering the upstream) and the envelope pass as sent.
  const params = (message as { params?: unknown }).params;
  if (restorer === undefined || params === null || typeof params !== "object" || Array.isArray(params)) return { message, restored: 0 };
  const content: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    if (k === "_meta" || protocolFieldKind(["params"], k, true) !== undefined) continue;
    content[k] = v;
    any = true;
  }
  if (!any) return { message, restored: 0 };
  try {
    const { params: restored, restored: count } = await restorer.restore(scope, content);
    if (count === 0) return { message, restored: 0 };
    return { message: { ...message, params: { ...(params as Record<string, unknown>), ...restored } }, restored: count };
  } catch (err) {
    return { message, restored: 0, error: asStoreError(err, "read") };
  }
}

/** The recorded fact of a restoration: how many, never which values (the records keep the masked view). */
export function restoredEvent(where: { sessionId: string | null; connection: string; subject: string; requestId: string | null }, restored: number, method: string | null): EventRecord<"pseudonyms_restored"> {
  return { type: "pseudonyms_restored", reason: "request", ...where, detail: { count: restored, method } };
}

/** A caller's masked view, with the pseudonyms it shows (engine.ts: MaskResult.issued). */
export interface IssuedView {
  issued?: readonly IssuedPseudonym[] | undefined;
}

/** The mask stage's second half: remembers the pseudonyms a caller is about to see; deliver only once it resolves. */
export async function rememberIssued(restorer: Restorer | undefined, scope: string, view: IssuedView): Promise<void> {
  if (restorer === undefined || view.issued === undefined || view.issued.length === 0) return;
  try {
    await restorer.remember(scope, view.issued);
  } catch (err) {
    throw asStoreError(err, "write");
  }
}

function asStoreError(err: unknown, what: "read" | "write"): CountersignError {
  if (err instanceof CountersignError) return err;
  // The driver's message names the table or the connection problem, never a value.
  return new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", `the pseudonym map could not be ${what === "read" ? "read" : "written"}: ${(err as Error).message ?? String(err)}`);
}
