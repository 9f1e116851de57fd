// Links into the console, for the places that point people at it (the approvals API and
// `approvals show`, the Slack messages, the paused-call notice).

/** The page of one approval request: where an approver decides it. */
export function consoleUrlFor(approvalId: string, publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/console/approvals/${encodeURIComponent(approvalId)}`;
}

/** The page of one recorded session (its replay). */
export function consoleSessionUrl(sessionId: string, publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/console/sessions/${encodeURIComponent(sessionId)}`;
}

/** The page of one stored weekly digest. */
export function consoleDigestUrl(digestId: string, publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/console/evidence/digests/${encodeURIComponent(digestId)}`;
}
