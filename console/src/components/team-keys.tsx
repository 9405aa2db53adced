/** The keys of one team (GET /admin/keys?team_id=), as links to their pages. */
import { api, query } from '../api';
import { keyStatus } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';
import type { KeyPage } from '../types';
import { ErrorMessage, Loading, StatusBadge } from './common';

const SHOWN = 100;

export function TeamKeys({ teamId }: { teamId: string }) {
  const keys = useLoad(() => api<KeyPage>('GET', `/admin/keys${query({ team_id: teamId, limit: SHOWN })}`), [teamId]);
  if (keys.error) return <ErrorMessage error={keys.error} />;
  if (!keys.data) return <Loading />;
  if (keys.data.data.length === 0) {
    return <p class="muted">No keys in this team. A key joins it with the Team field on its page.</p>;
  }
  return (
    <>
      <ul class="team-keys">
        {keys.data.data.map((key) => (
          <li key={key.id} data-key-id={key.id}>
            <a class="key-name" href={href({ page: 'key', id: key.id })}>
              {key.name}
            </a>{' '}
            <code>{key.key_prefix}</code> <StatusBadge status={keyStatus(key)} />
          </li>
        ))}
      </ul>
      {keys.data.next_cursor ? <p class="muted">The first {SHOWN} are shown.</p> : null}
    </>
  );
}
