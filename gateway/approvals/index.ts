// Approvals: calls held for a human decision (see service.ts for the flow).
export { ApprovalService, isSelfApproval, newApprovalId, describeSlackError, type ApprovalServiceOptions, type ApprovalServiceStatus } from "./service.js";
export { ApprovalStore, NOTIFY_CHANNEL } from "../store/approvals.js";
export { EmailDirectory } from "./directory.js";
export { canonicalArgumentsHash } from "./canonical.js";
export type * from "./types.js";
