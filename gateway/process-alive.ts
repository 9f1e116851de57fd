// Whether a process of this machine is running, from its pid (a pid file's owner, say).

/** Signal 0 checks without signalling; EPERM means it runs under another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
