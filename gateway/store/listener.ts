// One PostgreSQL connection LISTENing on one channel, for the services that learn of other
// replicas' writes by NOTIFY (approvals decided elsewhere, tools re-pinned). It reconnects by
// itself after a loss; while it is down the services fall back to polling, so `listening` says
// which of the two is in force. Changes made while it was down are for `onRelisten` to catch up
// (the service loads its state itself at start, so the first LISTEN has nothing to catch up).
import pg from "pg";
import type { Logger } from "../log.js";

export interface ChannelListenerOptions {
  databaseUrl: string;
  channel: string;
  log: Logger;
  /** What the service is called in log lines ("approvals", "tool pins"). */
  name: string;
  onNotify(payload: string): void;
  /** Runs each time LISTEN is established again after a loss or a failed first try: reload what may have been missed. */
  onRelisten?: (() => Promise<void>) | undefined;
  retryMs?: number | undefined;
}

export class ChannelListener {
  readonly #opts: ChannelListenerOptions;
  #client: pg.Client | undefined;
  #listening = false;
  #running = false;
  #retry: NodeJS.Timeout | undefined;
  #attempted = false;

  constructor(opts: ChannelListenerOptions) {
    if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`channel name ${JSON.stringify(opts.channel)}: use lower-case letters, digits and _`);
    this.#opts = opts;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Connects and listens; a failure is logged and retried in the background, never thrown. */
  async start(): Promise<void> {
    this.#running = true;
    await this.#connect().catch((err) => {
      this.#opts.log.warn({ err }, `${this.#opts.name}: LISTEN unavailable; polling until it is back`);
      this.#scheduleRetry();
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#retry) clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    this.#listening = false;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const again = this.#attempted;
    this.#attempted = true;
    const client = new pg.Client({ connectionString: this.#opts.databaseUrl, keepAlive: true });
    const lost = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#listening = false;
      client.end().catch(() => {});
      this.#scheduleRetry();
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (msg) => {
      if (msg.channel === this.#opts.channel && msg.payload) this.#opts.onNotify(msg.payload);
    });
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#opts.channel}`);
    } catch (err) {
      if (this.#client === client) this.#client = undefined;
      await client.end().catch(() => {});
      throw err;
    }
    this.#listening = true;
    if (again) await this.#opts.onRelisten?.().catch((err) => this.#opts.log.warn({ err }, `${this.#opts.name}: catching up after LISTEN failed`));
  }

  #scheduleRetry(): void {
    if (!this.#running || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#running && !this.#client) void this.#connect().catch(() => this.#scheduleRetry());
    }, this.#opts.retryMs ?? 1000);
    this.#retry.unref();
  }
}
