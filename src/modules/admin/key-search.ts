/**
 * The `q` filter of GET /admin/keys: the name contains q (case-insensitive) or the key prefix
 * starts with q. q only ever travels as a bound parameter; its LIKE wildcards (% and _) and the
 * escape character are escaped, so `50%_off` matches those characters literally.
 */

/** Escapes LIKE's metacharacters for `ESCAPE '\'`. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/** The condition for `q`, its two values appended to `params` (positional parameters). */
export function keySearchCondition(q: string, params: unknown[]): string {
  params.push(`%${escapeLike(q)}%`, `${escapeLike(q)}%`);
  const n = params.length;
  return `(name ILIKE $${n - 1} ESCAPE '\\' OR key_prefix LIKE $${n} ESCAPE '\\')`;
}
