/** Display helpers. Everything they return is rendered as text, never parsed as markup. */
const DAY_MS = 86_400_000;

export function formatNumber(value: number): string {
  return value.toLocaleString('en-US');
}

/** `2026-11-24T12:00:00Z` as `2026-11-24 12:00 UTC`: the server counts days and quotas in UTC. */
export function formatInstant(iso: string | null): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatDay(iso: string): string {
  return formatInstant(iso).slice(0, 10);
}

/** An amount as plain decimal digits (no exponent, no grouping), as a form input holds it. */
export function plainDecimal(value: number): string {
  return value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 15 });
}

/**
 * Spend in CURRENCY: cents and more with up to 4 decimals, smaller amounts (one request of a
 * cheap model costs millionths) with 4 significant digits, so they never show as 0.
 */
export function formatAmount(value: number): string {
  const digits =
    Math.abs(value) >= 0.01 || value === 0 ? { maximumFractionDigits: 4 } : { maximumSignificantDigits: 4 };
  return value.toLocaleString('en-US', digits);
}

export function formatMoney(value: number, currency: string): string {
  return `${formatAmount(value)} ${currency}`;
}

export function limitText(value: number | null, unlimited = 'unlimited'): string {
  return value === null ? unlimited : formatNumber(value);
}

/** The last `days` UTC days, oldest first, ending today (by this browser's clock). */
export function lastDays(days: number, now = new Date()): string[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: days }, (_, i) => new Date(today - (days - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

export type KeyStatus = 'active' | 'inactive' | 'expired' | 'revoked';

export function keyStatus(key: { active: boolean; revoked_at: string | null; expires_at: string | null }): KeyStatus {
  if (key.revoked_at) return 'revoked';
  if (!key.active) return 'inactive';
  if (key.expires_at && Date.parse(key.expires_at) <= Date.now()) return 'expired';
  return 'active';
}
