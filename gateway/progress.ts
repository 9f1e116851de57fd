// A progress bar for long work (sealing, verify, digest, migrate), drawn on stderr and only when
// stderr is a terminal: logs, pipes and CI see nothing of it.
export interface ProgressBar {
  update(done: number, total: number, label?: string): void;
  done(): void;
}

/** Draws nothing: for --json output, and wherever stderr is not a terminal. */
export const noProgress: ProgressBar = { update() {}, done() {} };

/** A bar unless the output is for machines (--json): then nothing, even on a terminal. */
export function progressFor(title: string, opts: { json?: boolean | undefined }, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  return opts.json ? noProgress : progressBar(title, stream);
}

export function progressBar(title: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return noProgress;
  let drawn = false;
  let last = 0;
  return {
    update(done, total, label) {
      const now = Date.now();
      if (drawn && now - last < 100 && done < total) return; // at most ten redraws a second
      last = now;
      const width = Math.max(10, Math.min(40, (stream.columns || 80) - title.length - 40));
      const ratio = total > 0 ? Math.min(1, done / total) : 0;
      const fill = Math.round(ratio * width);
      const text = `${title} [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${done}/${total}${label ? ` ${label}` : ""}`;
      stream.write(`\r\x1b[2K${text.slice(0, (stream.columns || 80) - 1)}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\r\x1b[2K");
      drawn = false;
    },
  };
}
