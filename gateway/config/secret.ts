// A secret value taken from the environment or a file. It never prints itself: logs, JSON dumps
// and `util.inspect` all show "[secret]", so configuration can be logged safely.
import { inspect } from "node:util";

export class Secret {
  readonly #value: string;
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "[secret]";
  }
  toJSON(): string {
    return `[secret from ${this.source}]`;
  }
  [inspect.custom](): string {
    return `[secret from ${this.source}]`;
  }
}

/** A value from the config file: a plain string or a resolved secret reference. */
export type ConfigValue = string | Secret;

export function revealValue(v: ConfigValue): string {
  return typeof v === "string" ? v : v.reveal();
}
