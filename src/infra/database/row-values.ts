/** Column values as raw statements return them: bigint arrives as a string (node-postgres) or a bigint (PGlite). */

/** A bigint column's value as a number: every count stored here fits one. */
export function toNumber(value: string | number | bigint): number {
  return Number(value);
}

export function toNumberOrNull(value: string | number | bigint | null): number | null {
  return value === null ? null : Number(value);
}

/**
 * A numeric (money) column's value as exact decimal text: node-postgres sends the text; PGlite a
 * number, whose shortest form is the decimal that was stored for the values money takes here.
 */
export function toDecimalOrNull(value: string | number | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : String(value);
}
