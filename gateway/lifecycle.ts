// Shutdown as a list of onClose steps, registered as each part starts and run in the reverse
// order (as Fastify runs its onClose hooks): what started last stops first. Each step is isolated:
// one that throws or hangs is logged with its error and the next steps still run, so a failing
// stop never skips the drain of the recorder or the closing of the database pools.
import type { Logger } from "./log.js";

export interface CloseStep {
  readonly name: string;
  readonly run: () => unknown;
  /** How long the step may take before it is given up on (logged) and the next one runs; read when it starts. */
  readonly timeoutMs: number | (() => number);
}

export interface CloseReport {
  /** Steps that threw or timed out, in the order they ran. */
  readonly failed: ReadonlyArray<{ step: string; err: unknown }>;
}

/** A shutdown that completed with failed steps; every step ran. */
export class ShutdownError extends AggregateError {
  constructor(readonly failed: CloseReport["failed"]) {
    super(failed.map((f) => f.err), `shutdown steps failed: ${failed.map((f) => f.step).join(", ")} (the others ran)`);
    this.name = "ShutdownError";
  }
}

export const DEFAULT_STEP_TIMEOUT_MS = 15_000;

export class CloseSteps {
  readonly #steps: CloseStep[] = [];
  #running: Promise<CloseReport> | undefined;

  /** Registers what undoes the part just started. Bounded by the parts of a gateway (a few dozen). */
  onClose(name: string, run: () => unknown, timeoutMs: number | (() => number) = DEFAULT_STEP_TIMEOUT_MS): void {
    if (this.#running) throw new Error(`onClose(${name}) after the shutdown began`);
    this.#steps.push({ name, run, timeoutMs });
  }

  get names(): string[] {
    return this.#steps.map((s) => s.name);
  }

  /** Runs every step once, last registered first; a second call returns the first run's report. */
  close(log: Logger): Promise<CloseReport> {
    return (this.#running ??= (async () => {
      const failed: Array<{ step: string; err: unknown }> = [];
      for (const step of [...this.#steps].reverse()) {
        try {
          await runBounded(step);
        } catch (err) {
          failed.push({ step: step.name, err });
          log.error({ err, step: step.name }, "shutdown step failed; the next steps still run");
        }
      }
      return { failed };
    })());
  }
}

async function runBounded(step: CloseStep): Promise<void> {
  const ms = typeof step.timeoutMs === "function" ? step.timeoutMs() : step.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step.name} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    await Promise.race([Promise.resolve().then(step.run), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
