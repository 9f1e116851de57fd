// What the gateway process does with an error nothing else caught (installed by `countersign
// start`). An unhandled promise rejection is a bug in one code path: it is logged at error level
// with its error object (stack kept) and counted (countersign_unhandled_rejections_total), and the
// gateway keeps serving. An uncaught exception leaves the process in an unknown state: it is
// logged at fatal level, the gateway stops gracefully (in-flight calls drained, the recorder
// drained, the stop recorded) within a bound, and the process exits 1.
import type { Logger } from "./log.js";

export interface ProcessHandlerTarget {
  log: Logger;
  /** Counts an unhandled rejection (the metric, once the gateway is up). */
  countRejection(): void;
  /** The graceful stop; undefined while the gateway is still starting. */
  stop(): Promise<void> | undefined;
  /** Called with the exit code once the stop ended or its bound passed. */
  exit(code: number): void;
  /** How long the graceful stop may take after an uncaught exception. */
  stopBoundMs?: number;
}

export interface InstalledHandlers {
  uninstall(): void;
}

export function installProcessHandlers(t: ProcessHandlerTarget, proc: NodeJS.Process = process): InstalledHandlers {
  let exiting = false;
  const onRejection = (reason: unknown) => {
    t.log.error({ err: reason }, "unhandled promise rejection (a bug: please report it); the gateway keeps running");
    t.countRejection();
  };
  const onException = (err: unknown, origin: string) => {
    if (exiting) {
      // A second one during the stop: no more waiting.
      t.log.fatal({ err, origin }, "uncaught exception while stopping: exiting now");
      t.exit(1);
      return;
    }
    exiting = true;
    t.log.fatal({ err, origin }, "uncaught exception: stopping the gateway, then exiting 1");
    const stopping = t.stop();
    if (!stopping) return t.exit(1);
    const bound = setTimeout(() => {
      t.log.error({ boundMs: t.stopBoundMs ?? 30_000 }, "the graceful stop did not end in time: exiting 1");
      t.exit(1);
    }, t.stopBoundMs ?? 30_000);
    bound.unref();
    stopping.then(
      () => t.exit(1),
      (stopErr: unknown) => {
        t.log.error({ err: stopErr }, "the graceful stop after an uncaught exception failed");
        t.exit(1);
      },
    ).finally(() => clearTimeout(bound));
  };
  proc.on("unhandledRejection", onRejection);
  proc.on("uncaughtException", onException);
  return {
    uninstall() {
      proc.off("unhandledRejection", onRejection);
      proc.off("uncaughtException", onException);
    },
  };
}
