/**
 * Key material. A key is `sk-` + 32 random bytes in base64url; only its SHA-256 (hex) and a
 * short display prefix are stored. SHA-256 without salt is right for 256-bit random secrets:
 * they cannot be guessed, and an unsalted hash allows the indexed lookup.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_BYTES = 32;
const PREFIX_CHARS = 8;

export interface NewApiKey {
  plaintext: string;
  prefix: string;
  hash: string;
}

/** `sk-` + base64url of 32 to 256 random bytes: what generateApiKey() makes, checked before hashing. */
const KEY_SHAPE = /^sk-[A-Za-z0-9_-]{43,342}$/;

export function looksLikeApiKey(presented: string): boolean {
  return KEY_SHAPE.test(presented);
}

export function hashApiKey(plaintext: string): string {
  return createHash('sha256').update(plaintext, 'utf8').digest('hex');
}

export function generateApiKey(): NewApiKey {
  const plaintext = `sk-${randomBytes(KEY_BYTES).toString('base64url')}`;
  return { plaintext, prefix: plaintext.slice(0, 3 + PREFIX_CHARS), hash: hashApiKey(plaintext) };
}

/** Compares secrets in constant time (the digests have equal length whatever the input). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
