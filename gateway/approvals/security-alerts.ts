// Security alerts on their way to the notifier (the Slack bot): sent at once, in the background of
// whatever detected them. Bounded: at most MAX_IN_FLIGHT alerts are being sent at a time; one
// more is refused and logged (the event it reports is recorded in the audit chain regardless).
import type { Logger } from "../log.js";
import type { ApprovalNotifier, SecurityAlert } from "./types.js";

/** Bound on alerts being posted at once (a flood of changed tools must not pile up requests to Slack). */
export const MAX_IN_FLIGHT = 32;

export class SecurityAlerts {
  #inFlight = 0;
  dropped = 0;

  constructor(private readonly log: Logger) {}

  async send(notifier: ApprovalNotifier | undefined, alert: SecurityAlert): Promise<boolean> {
    const what = { kind: alert.kind, connection: alert.connection, tool: alert.tool };
    if (!notifier?.securityAlert) {
      this.log.warn(what, `security alert not sent (no Slack bot configured): ${alert.title}`);
      return false;
    }
    if (this.#inFlight >= MAX_IN_FLIGHT) {
      this.dropped++;
      this.log.error({ ...what, dropped: this.dropped }, `security alert refused: ${MAX_IN_FLIGHT} alerts are already being sent: ${alert.title}`);
      return false;
    }
    this.#inFlight++;
    try {
      await notifier.securityAlert(alert);
      return true;
    } catch (err) {
      this.log.error({ ...what, err }, `security alert could not be posted: ${alert.title}`);
      return false;
    } finally {
      this.#inFlight--;
    }
  }
}
