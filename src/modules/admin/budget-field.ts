/** `monthly_budget` of keys and teams (API.md "Teams, prices and budgets"): an amount in CURRENCY. */
import { invalidRequest } from '../../contracts/app-error';
import { COST_SCALE, costDecimal, decimalToUnits } from '../../contracts/cost';

/** Budgets up to a trillion CURRENCY units: far beyond any team's, and exact in a JS number's display. */
const MAX_BUDGET = 1e12;

/** The budget as the exact decimal the database stores (null clears it), or 400 naming the field. */
export function parseBudget(value: number | null): string | null {
  if (value === null) return null;
  const units = value >= 0 && value <= MAX_BUDGET ? decimalToUnits(value, COST_SCALE) : null;
  if (units === null) {
    throw invalidRequest(
      `monthly_budget must be a number between 0 and ${MAX_BUDGET} with at most ${COST_SCALE} decimals`,
      'monthly_budget',
    );
  }
  return costDecimal(units);
}
