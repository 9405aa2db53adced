/** Usage and spend over all keys for the last 30 days, and how many models are ready. */
import { api, query } from '../api';
import { ErrorMessage, Loading } from '../components/common';
import { UsageCharts } from '../components/usage-charts';
import { formatMoney, formatNumber, lastDays } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';
import type { DailyUsage, ModelList } from '../types';
import { totals } from '../usage';

const DAYS = 30;

export function Overview({ currency }: { currency: string }) {
  const days = lastDays(DAYS);
  const usage = useLoad(
    () => api<{ data: DailyUsage[] }>('GET', `/admin/usage${query({ from: days[0], to: days[DAYS - 1] })}`),
    [days[0]],
  );
  const models = useLoad(() => api<ModelList>('GET', '/admin/models'), []);
  const sum = usage.data ? totals(usage.data.data) : null;
  const ready = models.data?.data.filter((m) => m.ready).length ?? 0;

  return (
    <main>
      <h1>Overview</h1>
      <p class="muted">
        All keys, {days[0]} to {days[DAYS - 1]} (UTC days).
      </p>
      <ErrorMessage error={usage.error} />
      {sum ? (
        <dl class="stats">
          <div>
            <dt>Requests</dt>
            <dd data-stat="requests">{formatNumber(sum.requests)}</dd>
          </div>
          <div>
            <dt>Cached</dt>
            <dd data-stat="cached">{formatNumber(sum.cached)}</dd>
          </div>
          <div>
            <dt>Prompt tokens</dt>
            <dd data-stat="prompt-tokens">{formatNumber(sum.promptTokens)}</dd>
          </div>
          <div>
            <dt>Completion tokens</dt>
            <dd data-stat="completion-tokens">{formatNumber(sum.completionTokens)}</dd>
          </div>
          <div>
            <dt>Spend</dt>
            <dd data-stat="cost">{formatMoney(sum.cost, currency)}</dd>
          </div>
          <div>
            <dt>Models ready</dt>
            <dd data-stat="models-ready">
              {models.data ? (
                <a href={href({ page: 'models' })}>
                  {ready} of {models.data.data.length}
                </a>
              ) : (
                '…'
              )}
            </dd>
          </div>
        </dl>
      ) : null}
      {usage.loading && !usage.data ? <Loading /> : null}
      {usage.data ? <UsageCharts rows={usage.data.data} days={days} currency={currency} /> : null}
      <ErrorMessage error={models.error} />
    </main>
  );
}
