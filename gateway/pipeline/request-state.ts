// One state machine per pending client request. Every path through the data path is one of
//
//   received ─▶ decided ─┬─▶ held ─(approved)─▶ forwarding ─▶ forwarded ─▶ answered
//                        └────────────────────▶ forwarding                  │
//   any non-terminal state ─▶ answered (by the gateway) | failed | cancelled ◀┘
//
// Timers belong to transitions: the upstream timeout is armed on entering `forwarding`, never on
// arrival, so a hold is judged by the approver's clock and not the upstream's.
export type RequestState = "received" | "decided" | "held" | "forwarding" | "forwarded" | "answered" | "failed" | "cancelled";

const NEXT: Readonly<Record<RequestState, readonly RequestState[]>> = {
  received: ["decided", "answered", "failed", "cancelled"],
  decided: ["held", "forwarding", "answered", "failed", "cancelled"],
  // held → held: a chain of holds (a changed tool's pin, then a policy rule).
  held: ["held", "forwarding", "answered", "failed", "cancelled"],
  forwarding: ["forwarded", "failed", "cancelled"],
  forwarded: ["answered", "failed", "cancelled"],
  answered: [],
  failed: [],
  cancelled: [],
};

export const isTerminalState = (s: RequestState): boolean => NEXT[s].length === 0;

export class RequestLifecycle {
  #state: RequestState = "received";

  get state(): RequestState {
    return this.#state;
  }

  /** Whether the upstream has (or may have) seen the request: a cancel must then go upstream. */
  get upstreamKnows(): boolean {
    return this.#state === "forwarding" || this.#state === "forwarded";
  }

  /** Moves on when the transition is legal; returns false (and stays) otherwise. */
  move(to: RequestState): boolean {
    if (!NEXT[this.#state].includes(to)) return false;
    this.#state = to;
    return true;
  }
}
