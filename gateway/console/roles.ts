// What a console login may do, from its groups: approvers (the approver groups of approvals,
// by name or by e-mail), auditors (console.auditorGroups), admins (admin.groups). Admins are
// auditors too. Deciding a request is still the approvals service's call, per request.
import type { GatewayConfig } from "../config/load.js";
import type { ConsoleUser } from "./session.js";

export interface Roles {
  approver: boolean;
  auditor: boolean;
  admin: boolean;
}

export function rolesOf(user: ConsoleUser, config: GatewayConfig): Roles {
  const groups = new Set(user.groups);
  const email = user.email?.toLowerCase();
  const approverGroups = Object.entries(config.approvals?.groups ?? {});
  const approver = approverGroups.some(([name, g]) => groups.has(name) || (email !== undefined && g.emails.includes(email)));
  const admin = config.admin.groups.some((g) => groups.has(g));
  const auditor = admin || config.console.auditorGroups.some((g) => groups.has(g));
  return { approver, auditor, admin };
}
