// Tool pins as every replica sees them: an in-memory copy of tool_pins per connection, loaded at
// start, refreshed after each write from this replica, on NOTIFY from other replicas and the CLI
// (a re-pin), and by a slow poll as the fallback. The data path reads it synchronously.
import type { Logger } from "../log.js";
import { diffDefinitions, summarizeChanges, type DefinitionChange } from "./diff.js";
import type { PinState } from "./decide.js";
import type { ChannelListener, ListenHub } from "../store/listener.js";
import type { Pool } from "../store/pools.js";
import { PIN_NOTIFY_CHANNEL, PinStore, type ObserveContext, type ObservedTool, type PinEvent, type ToolPin } from "../store/pins.js";

export interface ToolPinsOptions {
  /** The store's background pool (gateway/store/pools.ts): not owned here. */
  pool: Pool;
  /** The replica's LISTEN hub. */
  hub: ListenHub;
  log: Logger;
  /** How often the cache is reloaded when notifications are down (and once a minute regardless). */
  pollIntervalMs?: number | undefined;
  /** Sees the events each write committed (metrics). */
  onEvents?: ((events: readonly PinEvent[]) => void) | undefined;
  /** Hears of each definition change the moment it is first recorded (the real-time alert). */
  onDefinitionChanged?: ((change: { connection: string; tool: string; pinnedHash: string; hash: string; changes: DefinitionChange[]; detectedAt: Date }) => void) | undefined;
}

const FULL_RELOAD_MS = 60_000;

export class ToolPins {
  readonly store: PinStore;
  readonly #opts: ToolPinsOptions;
  #cache = new Map<string, Map<string, PinState>>();
  readonly #listener: ChannelListener;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #lastFullLoad = 0;

  constructor(opts: ToolPinsOptions) {
    this.#opts = opts;
    this.store = new PinStore(opts.pool);
    this.#listener = opts.hub.channel({
      channel: PIN_NOTIFY_CHANNEL,
      name: "tool pins",
      onNotify: (connection) => void this.reload(connection).catch((err) => opts.log.warn({ err }, "tool pins: reload failed")),
      // Changes made while not listening: caught by a full reload (start() does the first).
      onRelisten: () => this.reloadAll(),
    });
  }

  async start(): Promise<void> {
    this.#running = true;
    await this.reloadAll();
    await this.#listener.start();
    this.#timer = setInterval(() => void this.#poll(), this.#opts.pollIntervalMs ?? 2000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    await this.#listener.stop();
  }

  get listening(): boolean {
    return this.#listener.listening;
  }

  /** The pin of one tool, as last loaded. */
  get(connection: string, tool: string): PinState | undefined {
    return this.#cache.get(connection)?.get(tool);
  }

  /**
   * Records what a tools/list showed. Resolves at once when it matches what is known (the usual
   * case: no write); otherwise pins, updates and reports in one transaction, then reloads.
   */
  async observe(connection: string, tools: readonly ObservedTool[], ctx: ObserveContext): Promise<void> {
    const known = this.#cache.get(connection);
    const work = tools.filter((t) => known?.get(t.tool)?.currentHash !== t.hash);
    if (work.length === 0) return;
    const result = await this.store.observe(connection, work, ctx);
    if (result.events.length > 0) this.#opts.onEvents?.(result.events);
    for (const c of result.changed) this.#opts.onDefinitionChanged?.({ connection, ...c, detectedAt: new Date() });
    await this.reload(connection);
  }

  async reload(connection: string): Promise<void> {
    this.#cache.set(connection, toStates(await this.store.list(connection)));
  }

  async reloadAll(): Promise<void> {
    const byConnection = new Map<string, ToolPin[]>();
    for (const p of await this.store.list()) {
      const list = byConnection.get(p.connection) ?? [];
      list.push(p);
      byConnection.set(p.connection, list);
    }
    this.#cache = new Map([...byConnection].map(([c, pins]) => [c, toStates(pins)]));
    this.#lastFullLoad = Date.now();
  }

  async #poll(): Promise<void> {
    if (!this.#running) return;
    if (this.#listener.listening && Date.now() - this.#lastFullLoad < FULL_RELOAD_MS) return;
    await this.reloadAll().catch(() => {}); // the database is down; the next tick tries again
  }
}

function toStates(pins: readonly ToolPin[]): Map<string, PinState> {
  return new Map(
    pins.map((p) => [
      p.tool,
      { hash: p.hash, currentHash: p.currentHash, changeSummary: p.hash === p.currentHash ? "" : summarizeChanges(diffDefinitions(p.definition, p.currentDefinition)) },
    ]),
  );
}
