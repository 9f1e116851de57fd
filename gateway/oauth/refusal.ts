// An OAuth refusal: the RFC 6749 error code and description the client gets, its HTTP status,
// and the reason recorded (every refusal of the authorization server is a recorded event).
import type { EventReason } from "../audit/events.js";

export type OAuthErrorCode =
  | "invalid_request" | "invalid_client" | "invalid_grant" | "unauthorized_client" | "unsupported_grant_type"
  | "unsupported_response_type" | "invalid_target" | "invalid_redirect_uri" | "invalid_client_metadata"
  | "access_denied" | "temporarily_unavailable" | "slow_down";

export class OAuthRefusal extends Error {
  /** Set once the refusal is recorded, so that it is recorded once. */
  recorded = false;

  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly reason: EventReason<"oauth">,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }

  get body(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}
