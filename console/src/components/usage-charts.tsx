/** Requests, cached requests and tokens per day and model: the same three charts for one key or all. */
import type { DailyUsage } from '../types';
import { MEASURES, seriesByModel, type UsageMeasure } from '../usage';
import { BarChart } from './bar-chart';

const CHARTS: { id: string; title: string; unit: string; measure: UsageMeasure }[] = [
  { id: 'requests', title: 'Requests per day', unit: 'requests', measure: MEASURES.requests },
  { id: 'cached', title: 'Cached requests per day', unit: 'cached requests', measure: MEASURES.cached },
  { id: 'tokens', title: 'Tokens per day (prompt + completion)', unit: 'tokens', measure: MEASURES.tokens },
];

export function UsageCharts({ rows, days }: { rows: DailyUsage[]; days: string[] }) {
  return (
    <div class="charts">
      {CHARTS.map(({ id, title, unit, measure }) => (
        <BarChart key={id} id={id} title={title} unit={unit} days={days} series={seriesByModel(rows, days, measure)} />
      ))}
    </div>
  );
}
