/** Quota periods are calendar months in UTC: [first instant of the month, first instant of the next). */

export function monthStartUtc(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

export function nextMonthStartUtc(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}

/** The period `at` falls in: [start, resetAt). */
export function quotaPeriodAt(at: Date): { start: Date; resetAt: Date } {
  return { start: monthStartUtc(at), resetAt: nextMonthStartUtc(at) };
}
