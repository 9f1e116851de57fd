// One PostgreSQL connection per replica LISTENing on every channel the services need (approvals
// decided elsewhere, tools re-pinned): the LISTEN hub. It reconnects by itself after a loss; while
// it is down the services fall back to polling, so each channel's `listening` says which of the
// two is in force. Changes made while it was down are for a channel's `onRelisten` to catch up
// (the service loads its state itself at start, so the first LISTEN has nothing to catch up).
import pg from "pg";
import type { Logger } from "../log.js";

export interface ListenHubOptions {
  databaseUrl: string;
  log: Logger;
  retryMs?: number | undefined;
}

export interface ChannelOptions {
  channel: string;
  /** What the service is called in log lines ("approvals", "tool pins"). */
  name: string;
  onNotify(payload: string): void;
  /** Runs each time LISTEN is established again after a loss or a failed first try: reload what may have been missed. */
  onRelisten?: (() => Promise<void>) | undefined;
}

/** A bound on the channels one hub carries (each is a service, named in code, not by input). */
const MAX_CHANNELS = 16;

export class ListenHub {
  readonly #opts: ListenHubOptions;
  readonly #channels = new Map<string, ChannelListener>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(opts: ListenHubOptions) {
    this.#opts = opts;
  }

  /** A channel on this hub's connection; it listens from its start() to its stop(). */
  channel(opts: ChannelOptions): ChannelListener {
    if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`channel name ${JSON.stringify(opts.channel)}: use lower-case letters, digits and _`);
    return new ChannelListener(this, opts, this.#opts.log);
  }

  /** @internal */
  async add(ch: ChannelListener): Promise<void> {
    const name = ch.options.channel;
    if (this.#channels.has(name) && this.#channels.get(name) !== ch) throw new Error(`channel ${name} is already listened to on this hub`);
    if (!this.#channels.has(name) && this.#channels.size >= MAX_CHANNELS) throw new Error(`the LISTEN hub carries at most ${MAX_CHANNELS} channels`);
    this.#channels.set(name, ch);
    try {
      // A connection being made may have started its LISTENs before this channel was added.
      if (this.#connecting) await this.#connecting;
      if (!this.#client) await (this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined)));
      if (!ch.listening) {
        const client = this.#client;
        if (!client) throw new Error("LISTEN not established");
        await client.query(`LISTEN ${name}`);
        await ch.established();
      }
    } catch (err) {
      this.#opts.log.warn({ err }, `${ch.options.name}: LISTEN unavailable; polling until it is back`);
      // Start over on a new connection: it listens on every channel, and each catches up.
      const client = this.#client;
      this.#client = undefined;
      await client?.end().catch(() => {});
      this.#lost();
    }
  }

  /** @internal */
  async remove(ch: ChannelListener): Promise<void> {
    if (this.#channels.get(ch.options.channel) !== ch) return;
    this.#channels.delete(ch.options.channel);
    if (this.#channels.size > 0) {
      await this.#client?.query(`UNLISTEN ${ch.options.channel}`).catch(() => {});
      return;
    }
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#opts.databaseUrl, keepAlive: true, application_name: "countersign-listen" });
    const lost = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      client.end().catch(() => {});
      this.#lost();
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (msg) => {
      if (msg.payload) this.#channels.get(msg.channel)?.options.onNotify(msg.payload);
    });
    this.#client = client;
    const listened: ChannelListener[] = [];
    try {
      await client.connect();
      for (const ch of [...this.#channels.values()]) {
        await client.query(`LISTEN ${ch.options.channel}`);
        listened.push(ch);
      }
    } catch (err) {
      if (this.#client === client) this.#client = undefined;
      await client.end().catch(() => {});
      throw err;
    }
    if (this.#channels.size === 0) {
      // Every channel stopped while this connection was being made.
      if (this.#client === client) this.#client = undefined;
      await client.end().catch(() => {});
      return;
    }
    await Promise.all(listened.filter((ch) => this.#channels.get(ch.options.channel) === ch).map((ch) => ch.established()));
  }

  #lost(): void {
    for (const ch of this.#channels.values()) ch.down();
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#channels.size === 0 || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#channels.size > 0 && !this.#client) {
        void (this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined))).catch(() => this.#scheduleRetry());
      }
    }, this.#opts.retryMs ?? 1000);
    this.#retry.unref();
  }
}

/** One service's channel on the hub. */
export class ChannelListener {
  readonly #hub: ListenHub;
  readonly options: ChannelOptions;
  readonly #log: Logger;
  #listening = false;
  #attempted = false;

  constructor(hub: ListenHub, opts: ChannelOptions, log: Logger) {
    this.#hub = hub;
    this.options = opts;
    this.#log = log;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Listens; a failure is logged and retried in the background, never thrown. */
  async start(): Promise<void> {
    await this.#hub.add(this);
  }

  async stop(): Promise<void> {
    this.#listening = false;
    await this.#hub.remove(this);
  }

  /** @internal LISTEN is in force (again). */
  async established(): Promise<void> {
    const again = this.#attempted;
    this.#attempted = true;
    this.#listening = true;
    if (again) await this.options.onRelisten?.().catch((err) => this.#log.warn({ err }, `${this.options.name}: catching up after LISTEN failed`));
  }

  /** @internal the connection was lost, or the first try failed. */
  down(): void {
    this.#attempted = true;
    this.#listening = false;
  }
}
