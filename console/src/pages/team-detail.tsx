/**
 * One team: its period's requests, tokens and spend against its quotas and budget, 30 days of
 * spend and usage as charts, its keys, the edit form of its limits, and delete (which the API
 * refuses with 409 team_not_empty while keys belong to it; the page shows that answer).
 */
import { useState } from 'preact/hooks';
import { api, query } from '../api';
import { ErrorMessage, Loading } from '../components/common';
import { ConfirmButton } from '../components/confirm';
import { FieldForm } from '../components/field-form';
import { QuotaMeter } from '../components/quota-meter';
import { TeamKeys } from '../components/team-keys';
import { UsageCharts } from '../components/usage-charts';
import { visibleFields } from '../fields';
import { formatInstant, formatMoney, lastDays } from '../format';
import { useLoad } from '../hooks';
import { href, navigate } from '../router';
import { TEAM_FIELDS } from '../team-fields';
import type { DailyUsage, Team, TeamWithUsage } from '../types';

const DAYS = 30;

export function TeamDetail({ id, currency }: { id: string; currency: string }) {
  const days = lastDays(DAYS);
  const team = useLoad(() => api<TeamWithUsage>('GET', `/admin/teams/${id}`), [id]);
  const usage = useLoad(
    () => api<{ data: DailyUsage[] }>('GET', `/admin/teams/${id}/usage${query({ from: days[0], to: days[DAYS - 1] })}`),
    [id, days[0]],
  );
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const back = (
    <p>
      <a href={href({ page: 'teams' })}>← Teams</a>
    </p>
  );
  if (!team.data) {
    return (
      <main>
        {back}
        <ErrorMessage error={team.error} />
        {team.loading ? <Loading /> : null}
      </main>
    );
  }
  const data = team.data;
  const money = (value: number): string => formatMoney(value, currency);

  return (
    <main>
      {back}
      <h1 class="team-title">{data.name}</h1>
      <p class="muted">
        created {formatInstant(data.created_at)} · {data.key_count} {data.key_count === 1 ? 'key' : 'keys'}
      </p>

      <section aria-labelledby="period-title">
        <h2 id="period-title">This period</h2>
        <QuotaMeter
          id="budget"
          label="Spend"
          used={data.usage.cost}
          quota={data.monthly_budget}
          format={money}
          none="(no budget)"
          note={data.usage.reserved > 0 ? `${money(data.usage.reserved)} held by requests in flight` : null}
        />
        <QuotaMeter id="requests" label="Requests" used={data.usage.requests} quota={data.monthly_quota} />
        <QuotaMeter id="tokens" label="Tokens" used={data.usage.tokens} quota={data.monthly_token_quota} />
        <p class="muted">Resets {formatInstant(data.usage.quota_reset_at)}.</p>
      </section>

      <section aria-labelledby="usage-title">
        <h2 id="usage-title">Spend and usage, last {DAYS} days</h2>
        <ErrorMessage error={usage.error} />
        {usage.data ? <UsageCharts rows={usage.data.data} days={days} currency={currency} /> : <Loading />}
      </section>

      <section aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        <TeamKeys teamId={id} />
      </section>

      <section aria-labelledby="limits-title">
        <h2 id="limits-title">Limits</h2>
        <FieldForm
          kind="team"
          currency={currency}
          key={data.id}
          fields={visibleFields(TEAM_FIELDS, data, 'edit')}
          original={data}
          submitLabel="Save changes"
          onSubmit={async (body) => {
            const updated = await api<Team>('PATCH', `/admin/teams/${id}`, body);
            team.set({ ...data, ...updated });
          }}
        />
      </section>

      <section aria-labelledby="danger-title" class="danger-zone">
        <h2 id="danger-title">Delete</h2>
        <div class="danger-actions">
          <ConfirmButton
            label="Delete team"
            question="Delete this team? Its limits and budget go with it; its usage history stays with its keys."
            confirmLabel="Yes, delete"
            onConfirm={async () => {
              setDeleteError(null);
              try {
                await api<void>('DELETE', `/admin/teams/${id}`);
              } catch (error) {
                // 409 team_not_empty while keys belong to it: said as the server says it.
                setDeleteError(error);
                team.reload();
                return;
              }
              navigate({ page: 'teams' });
            }}
          />
        </div>
        <ErrorMessage error={deleteError} />
      </section>
    </main>
  );
}
