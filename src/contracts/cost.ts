/**
 * Money, exactly (API.md "Teams, prices and budgets"): prices are per million tokens in CURRENCY,
 * costs are kept with full precision and never rounded per request. A cost is a bigint count of
 * femto-units (1e-15 of a CURRENCY unit): a price per million tokens with up to 9 decimals is a
 * whole number of femto-units per token, so every cost is an exact integer, sums stay exact, and
 * the database (numeric columns) receives decimal strings that it keeps as they are.
 */
import type { TokenUsage } from './generation';

/** Decimal places of a cost in femto-units. */
export const COST_SCALE = 15;
/** A price per million tokens has at most this many decimals (so a token costs whole femto-units). */
export const PRICE_DECIMALS = 9;

/** A model's prices, in femto-units per token. */
export interface ModelPricing {
  input: bigint;
  output: bigint;
  cachedInput: bigint;
}

/** Parses a non-negative decimal (`12`, `0.2`, `1e-3`) into an integer count of 10^-scale units; null when it has more decimals than `scale`. */
export function decimalToUnits(value: number | string, scale: number): bigint | null {
  const text = typeof value === 'number' ? numberText(value) : value.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return null;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > scale) return null;
  return BigInt(match[1]) * 10n ** BigInt(scale) + BigInt(fraction.padEnd(scale, '0') || '0');
}

/** A JS number as plain decimal digits (no exponent), the shortest text that reads back as it. */
function numberText(value: number): string {
  if (!Number.isFinite(value) || value < 0) return 'invalid';
  const text = String(value);
  if (!/e/i.test(text)) return text;
  const [mantissa, exponentText] = text.toLowerCase().split('e');
  const exponent = Number(exponentText);
  const [whole, fraction = ''] = mantissa.split('.');
  const digits = whole + fraction;
  const point = whole.length + exponent;
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A price per million tokens → femto-units per token (null: more than PRICE_DECIMALS decimals, or negative). */
export function pricePerToken(perMillion: number): bigint | null {
  return decimalToUnits(perMillion, PRICE_DECIMALS);
}

/** The cost of `usage`: prompt tokens at the input price (those served from cache at the cached price) plus completion tokens. */
export function costOf(usage: TokenUsage, pricing: ModelPricing | null): bigint {
  if (!pricing) return 0n;
  const cached = Math.min(usage.cachedPromptTokens ?? 0, usage.promptTokens);
  return (
    BigInt(usage.promptTokens - cached) * pricing.input +
    BigInt(cached) * pricing.cachedInput +
    BigInt(usage.completionTokens) * pricing.output
  );
}

/** The largest cost a request can have: every prompt token at the dearer input price, and all its output tokens. */
export function largestCost(promptTokensAtMost: number, maxNewTokens: number, pricing: ModelPricing | null): bigint {
  if (!pricing) return 0n;
  const input = pricing.input > pricing.cachedInput ? pricing.input : pricing.cachedInput;
  return BigInt(promptTokensAtMost) * input + BigInt(maxNewTokens) * pricing.output;
}

/** Femto-units as a decimal string in CURRENCY units (`0.000000200000000`), what numeric columns take. */
export function costDecimal(femtos: bigint): string {
  const negative = femtos < 0n;
  const digits = (negative ? -femtos : femtos).toString().padStart(COST_SCALE + 1, '0');
  const text = `${digits.slice(0, -COST_SCALE)}.${digits.slice(-COST_SCALE)}`;
  return negative ? `-${text}` : text;
}

/** A numeric column's value (string, or a number from PGlite) as a JSON number for answers. */
export function costNumber(value: string | number | null | undefined): number {
  return value === null || value === undefined ? 0 : Number(value);
}

/**
 * An upper bound of a prompt's tokens, for reserving a budget before the backend counts them:
 * every tokenizer the gateway fronts (BPE and byte-level) makes at most one token per UTF-8 byte,
 * and a chat template adds a few per message (role markers, separators): 16 is above every
 * common template's per-message overhead.
 */
export function promptTokensAtMost(promptBytes: number, messages: number): number {
  return promptBytes + 16 * (messages + 1);
}
