// Reads fields of a JSON request body with validation. Every failure is a 400 that names the parameter
// (as OpenAI does: `param: "temperature"`), so a client sees which field to fix.
import { invalidParam } from "./errors.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing (the body is empty)";
  if (Array.isArray(value)) return value.length === 0 ? "an empty array" : "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

export class Fields {
  constructor(private readonly body: Record<string, unknown>, private readonly prefix = "") {}

  static of(body: unknown): Fields {
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw invalidParam("body", `The request body must be a JSON object, got ${describe(body)}.`);
    }
    return new Fields(body as Record<string, unknown>);
  }

  name(key: string): string {
    return this.prefix + key;
  }

  /** The raw value; undefined and null both mean "not given" (OpenAI clients send null for defaults). */
  raw(key: string): unknown {
    const value = this.body[key];
    return value === null ? undefined : value;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  number(key: string, range: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    const name = this.name(key);
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw invalidParam(name, `'${name}' must be a number, got ${describe(value)}.`);
    }
    if (range.integer && !Number.isInteger(value)) throw invalidParam(name, `'${name}' must be an integer, got ${value}.`);
    if (range.min !== undefined && value < range.min) {
      throw invalidParam(name, `'${name}' must be at least ${range.min}, got ${value}.`);
    }
    if (range.max !== undefined && value > range.max) {
      throw invalidParam(name, `'${name}' must be at most ${range.max}, got ${value}.`);
    }
    return value;
  }

  integer(key: string, range: { min?: number; max?: number } = {}): number | undefined {
    return this.number(key, { ...range, integer: true });
  }

  boolean(key: string): boolean | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") throw invalidParam(this.name(key), `'${this.name(key)}' must be a boolean, got ${describe(value)}.`);
    return value;
  }

  string(key: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== "string") throw invalidParam(this.name(key), `'${this.name(key)}' must be a string, got ${describe(value)}.`);
    return value;
  }

  object(key: string): Fields | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) {
      throw invalidParam(this.name(key), `'${this.name(key)}' must be an object, got ${describe(value)}.`);
    }
    return new Fields(value as Record<string, unknown>, this.name(key) + ".");
  }

  /** Keys of the body that the endpoint does not know; OpenAI ignores unknown fields, so do we. */
  keys(): string[] {
    return Object.keys(this.body);
  }

  /** Rejects a field we cannot honour rather than silently ignoring it. */
  unsupported(key: string, allowed: (value: unknown) => boolean, why: string): void {
    const value = this.raw(key);
    if (value !== undefined && !allowed(value)) throw invalidParam(this.name(key), `'${this.name(key)}' is not supported: ${why}`);
  }
}

export { describe as describeJson };
