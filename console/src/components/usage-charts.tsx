/** Requests, cached requests and tokens per day and model: the same three charts for one key or all. */
import type { DailyUsage } from '../types';
import { MEASURES, seriesByModel } from '../usage';
import { BarChart } from './bar-chart';

export function UsageCharts({ rows, days }: { rows: DailyUsage[]; days: string[] }) {
  return (
    <div class="charts">
      <BarChart
        id="requests"
        title="Requests per day"
        unit="requests"
        days={days}
        series={seriesByModel(rows, days, MEASURES.requests)}
      />
      <BarChart
        id="cached"
        title="Cached requests per day"
        unit="cached requests"
        days={days}
        series={seriesByModel(rows, days, MEASURES.cached)}
      />
      <BarChart
        id="tokens"
        title="Tokens per day (prompt + completion)"
        unit="tokens"
        days={days}
        series={seriesByModel(rows, days, MEASURES.tokens)}
      />
    </div>
  );
}
