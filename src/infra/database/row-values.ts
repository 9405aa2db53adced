/** Column values as raw statements return them: bigint arrives as a string (node-postgres) or a bigint (PGlite). */

/** A bigint column's value as a number: every count stored here fits one. */
export function toNumber(value: string | number | bigint): number {
  return Number(value);
}

export function toNumberOrNull(value: string | number | bigint | null): number | null {
  return value === null ? null : Number(value);
}
