/**
 * The team list: each team's limits, its key count and its budget bar. The list answer carries
 * the limits only; each row loads its team (GET /admin/teams/:id) for the key count and the
 * period's spend, so a slow or failed row does not hold up the others.
 */
import { api, query } from '../api';
import { Pager, useCursors } from '../components/pager';
import { ErrorMessage, Loading } from '../components/common';
import { QuotaMeter } from '../components/quota-meter';
import { formatMoney, formatNumber, limitText } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';
import type { Team, TeamPage, TeamWithUsage } from '../types';

const PAGE_SIZE = 20;

function TeamRow({ team, currency }: { team: Team; currency: string }) {
  const detail = useLoad(() => api<TeamWithUsage>('GET', `/admin/teams/${team.id}`), [team.id]);
  const data = detail.data;
  return (
    <tr data-team-id={team.id}>
      <td>
        <a class="team-name" href={href({ page: 'team', id: team.id })}>
          {team.name}
        </a>
      </td>
      <td class="num">{limitText(team.rpm_limit)}</td>
      <td class="num wide-only">{limitText(team.tpm_limit)}</td>
      <td class="num wide-only">{limitText(team.monthly_quota)}</td>
      <td class="num" data-cell="keys">
        {data ? formatNumber(data.key_count) : '…'}
      </td>
      <td class="budget-cell">
        {data ? (
          <QuotaMeter
            id="budget"
            label="Spend"
            used={data.usage.cost}
            quota={data.monthly_budget}
            format={(value) => formatMoney(value, currency)}
            none="(no budget)"
          />
        ) : detail.error ? (
          <ErrorMessage error={detail.error} />
        ) : (
          '…'
        )}
      </td>
    </tr>
  );
}

export function Teams({ currency }: { currency: string }) {
  /** Cursors of the pages before this one, so Previous can go back (the API pages forward only). */
  const { cursor, cursors, setCursors } = useCursors();
  const page = useLoad(() => api<TeamPage>('GET', `/admin/teams${query({ limit: PAGE_SIZE, cursor })}`), [cursor]);

  return (
    <main>
      <div class="page-head">
        <h1>Teams</h1>
        <a class="button primary" href={href({ page: 'new-team' })}>
          New team
        </a>
      </div>
      <p class="muted">
        A team's limits apply to all its keys together, beside each key's own. Spend is this month's (UTC), in{' '}
        {currency}.
      </p>
      <ErrorMessage error={page.error} />
      {page.loading && !page.data ? <Loading /> : null}
      {page.data ? (
        page.data.data.length === 0 ? (
          <p class="muted">No teams yet.</p>
        ) : (
          <div class="table-wrap">
            <table class="teams">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" class="num">
                    RPM
                  </th>
                  <th scope="col" class="num wide-only">
                    TPM
                  </th>
                  <th scope="col" class="num wide-only">
                    Requests / month
                  </th>
                  <th scope="col" class="num">
                    Keys
                  </th>
                  <th scope="col">Budget</th>
                </tr>
              </thead>
              <tbody>
                {page.data.data.map((team) => (
                  <TeamRow key={team.id} team={team} currency={currency} />
                ))}
              </tbody>
            </table>
          </div>
        )
      ) : null}
      <Pager cursors={cursors} setCursors={setCursors} nextCursor={page.data?.next_cursor} />
    </main>
  );
}
