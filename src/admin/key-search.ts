/**
 * The `q` filter of GET /admin/keys: the name contains q (case-insensitive) or the key prefix
 * starts with q. q only ever travels as a bound parameter; its LIKE wildcards (% and _) and the
 * escape character are escaped, so `50%_off` matches those characters literally.
 */

/** Escapes LIKE's metacharacters for `ESCAPE '\'`. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}

export const keySearchCondition = {
  sql: `(k.name ILIKE :nameContains ESCAPE '\\' OR k.key_prefix LIKE :prefixStarts ESCAPE '\\')`,
  params: (q: string): { nameContains: string; prefixStarts: string } => ({
    nameContains: `%${escapeLike(q)}%`,
    prefixStarts: `${escapeLike(q)}%`,
  }),
};
