/**
 * Requests, cached requests, tokens and spend per day and model: the same charts for one key, one
 * team or all keys.
 */
import { formatAmount } from '../format';
import type { DailyUsage } from '../types';
import { MEASURES, seriesByModel, type UsageMeasure } from '../usage';
import { BarChart } from './bar-chart';

const CHARTS: { id: string; title: string; unit: string; measure: UsageMeasure }[] = [
  { id: 'requests', title: 'Requests per day', unit: 'requests', measure: MEASURES.requests },
  { id: 'cached', title: 'Cached requests per day', unit: 'cached requests', measure: MEASURES.cached },
  { id: 'tokens', title: 'Tokens per day (prompt + completion)', unit: 'tokens', measure: MEASURES.tokens },
];

/** `currency`: the unit of spend (the server's CURRENCY). */
export function UsageCharts({ rows, days, currency }: { rows: DailyUsage[]; days: string[]; currency: string }) {
  return (
    <div class="charts">
      <SpendChart rows={rows} days={days} currency={currency} />
      {CHARTS.map(({ id, title, unit, measure }) => (
        <BarChart key={id} id={id} title={title} unit={unit} days={days} series={seriesByModel(rows, days, measure)} />
      ))}
    </div>
  );
}

/** Spend per day and model, from each request's real tokens at its model's prices. */
function SpendChart({ rows, days, currency }: { rows: DailyUsage[]; days: string[]; currency: string }) {
  return (
    <BarChart
      id="cost"
      title="Spend per day"
      unit={currency}
      empty="No spend in these days (models without prices cost nothing)."
      format={formatAmount}
      whole={false}
      days={days}
      series={seriesByModel(rows, days, MEASURES.cost)}
    />
  );
}
