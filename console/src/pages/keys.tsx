/** The key list: search by name or prefix, pages through the API's cursor; each key's team links to it. */
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api';
import { Pager, useCursors } from '../components/pager';
import { ErrorMessage, Loading, StatusBadge } from '../components/common';
import { formatDay, keyStatus, limitText } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';
import { useTeamChoices } from '../team-choices';
import type { KeyPage } from '../types';

const PAGE_SIZE = 20;
const SEARCH_DELAY_MS = 250;

export function Keys() {
  const [typed, setTyped] = useState('');
  const [search, setSearch] = useState('');
  /** Cursors of the pages before this one, so Previous can go back (the API pages forward only). */
  const { cursor, cursors, setCursors } = useCursors();

  useEffect(() => {
    const timer = setTimeout(() => {
      setSearch(typed.trim());
      setCursors([null]);
    }, SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [typed]);

  const teams = useTeamChoices();
  const teamName = (id: string): string => teams.find((team) => team.id === id)?.name ?? 'a team';
  const page = useLoad(
    () => api<KeyPage>('GET', `/admin/keys${query({ limit: PAGE_SIZE, cursor, q: search })}`),
    [cursor, search],
  );

  return (
    <main>
      <div class="page-head">
        <h1>Keys</h1>
        <a class="button primary" href={href({ page: 'new-key' })}>
          New key
        </a>
      </div>
      <form class="search" role="search" onSubmit={(e) => e.preventDefault()}>
        <label for="key-search">Search by name or prefix</label>
        <input
          id="key-search"
          type="search"
          autocomplete="off"
          value={typed}
          onInput={(e) => setTyped(e.currentTarget.value)}
        />
      </form>
      <ErrorMessage error={page.error} />
      {page.loading && !page.data ? <Loading /> : null}
      {page.data ? (
        page.data.data.length === 0 ? (
          <p class="muted">{search ? 'No key matches this search.' : 'No keys yet.'}</p>
        ) : (
          <div class="table-wrap">
            <table class="keys">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Prefix</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    RPM
                  </th>
                  <th scope="col" class="num wide-only">
                    Requests / month
                  </th>
                  <th scope="col" class="wide-only">
                    Team
                  </th>
                  <th scope="col" class="wide-only">
                    Created
                  </th>
                </tr>
              </thead>
              <tbody>
                {page.data.data.map((key) => (
                  <tr key={key.id} data-key-id={key.id}>
                    <td>
                      <a class="key-name" href={href({ page: 'key', id: key.id })}>
                        {key.name}
                      </a>
                    </td>
                    <td>
                      <code>{key.key_prefix}</code>
                    </td>
                    <td>
                      <StatusBadge status={keyStatus(key)} />
                    </td>
                    <td class="num">{limitText(key.rpm_limit, 'default')}</td>
                    <td class="num wide-only">{limitText(key.monthly_quota)}</td>
                    <td class="wide-only" data-cell="team">
                      {key.team_id ? (
                        <a href={href({ page: 'team', id: key.team_id })}>{teamName(key.team_id)}</a>
                      ) : (
                        '—'
                      )}
                    </td>
                    <td class="wide-only">{formatDay(key.created_at)}</td>
                  </tr>
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
