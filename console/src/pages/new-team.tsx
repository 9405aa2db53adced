/** Creating a team: on success its page opens, where keys can be seen and its limits changed. */
import { api } from '../api';
import { FieldForm } from '../components/field-form';
import { visibleFields } from '../fields';
import { href } from '../router';
import { TEAM_FIELDS } from '../team-fields';
import type { Team } from '../types';

export function NewTeam({ currency, onCreated }: { currency: string; onCreated: (team: Team) => void }) {
  return (
    <main>
      <p>
        <a href={href({ page: 'teams' })}>← Teams</a>
      </p>
      <h1>New team</h1>
      <FieldForm
        kind="team"
        currency={currency}
        fields={visibleFields(TEAM_FIELDS, null, 'create')}
        original={null}
        submitLabel="Create team"
        onSubmit={async (body) => onCreated(await api<Team>('POST', '/admin/teams', body))}
      />
    </main>
  );
}
