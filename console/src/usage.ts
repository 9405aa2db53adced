/** Turns ledger rows (per day and model) into chart series over a fixed run of days. */
import type { DailyUsage } from './types';

export interface Series {
  name: string;
  /** One value per day of the chart, zero where the ledger has no row. */
  values: number[];
}

export type UsageMeasure = (row: DailyUsage) => number;

export const MEASURES = {
  requests: (row: DailyUsage) => row.requests,
  cached: (row: DailyUsage) => row.cached_requests,
  tokens: (row: DailyUsage) => row.prompt_tokens + row.completion_tokens,
  cost: (row: DailyUsage) => row.cost ?? 0,
} satisfies Record<string, UsageMeasure>;

/** One series per model (sorted by name, so colours stay put between pages). */
export function seriesByModel(rows: DailyUsage[], days: string[], measure: UsageMeasure): Series[] {
  const dayIndex = new Map(days.map((day, i) => [day, i]));
  const byModel = new Map<string, number[]>();
  for (const row of rows) {
    const i = dayIndex.get(row.date);
    if (i === undefined) continue;
    const values = byModel.get(row.model) ?? days.map(() => 0);
    values[i] += measure(row);
    byModel.set(row.model, values);
  }
  return [...byModel.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, values]) => ({ name, values }));
}

export function totals(rows: DailyUsage[]): {
  requests: number;
  cached: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
} {
  return rows.reduce(
    (sum, row) => ({
      requests: sum.requests + row.requests,
      cached: sum.cached + row.cached_requests,
      promptTokens: sum.promptTokens + row.prompt_tokens,
      completionTokens: sum.completionTokens + row.completion_tokens,
      cost: sum.cost + (row.cost ?? 0),
    }),
    { requests: 0, cached: 0, promptTokens: 0, completionTokens: 0, cost: 0 },
  );
}
