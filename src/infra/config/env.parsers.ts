/**
 * Small typed readers for environment variables. Each failure names the variable and says what
 * is wrong, so a bad deployment stops at once with a useful message.
 */
import { ConfigError } from './config.errors';

export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function readString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

export function readOptionalString(env: Env, name: string): string | null {
  return raw(env, name) ?? null;
}

export function readInt(env: Env, name: string, fallback: number, bounds: { min: number; max?: number }): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value)) throw new ConfigError(`${name}: expected an integer, got "${value}"`);
  const parsed = Number(value);
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (parsed < bounds.min || parsed > max) {
    throw new ConfigError(`${name}: must be between ${bounds.min} and ${max}, got ${value}`);
  }
  return parsed;
}

export function readOptionalInt(env: Env, name: string, bounds: { min: number; max?: number }): number | null {
  return raw(env, name) === undefined ? null : readInt(env, name, 0, bounds);
}

export function readBool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${value}"`);
}

export function readEnum<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name}: must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses sizes like `1mb`, `512kb` or a plain byte count (the body-parser notation). */
export function readByteSize(env: Env, name: string, fallback: string): number {
  const value = (raw(env, name) ?? fallback).toLowerCase();
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/.exec(value);
  if (!match) throw new ConfigError(`${name}: expected a size like 1mb or 512kb, got "${value}"`);
  const bytes = Math.floor(Number(match[1]) * SIZE_UNITS[match[2] ?? 'b']);
  if (bytes < 1) throw new ConfigError(`${name}: must be at least 1 byte`);
  return bytes;
}

/** `postgres://` / `postgresql://` for PostgreSQL, `pglite://memory` for an in-memory PGlite. */
export function readDatabaseUrl(env: Env, name: string): string | null {
  const value = raw(env, name);
  if (value === undefined) return null;
  if (value === 'pglite://memory') return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name}: not a valid URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`${name}: must start with postgres:// or be pglite://memory`);
  }
  return value;
}

/** A URL whose scheme is one of `protocols` (e.g. `['redis:', 'rediss:']`), or null when unset. */
export function readUrl(env: Env, name: string, protocols: readonly string[]): string | null {
  const value = raw(env, name);
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name}: not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name}: must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return value;
}

export function readRedisUrl(env: Env, name: string): string | null {
  return readUrl(env, name, ['redis:', 'rediss:']);
}
