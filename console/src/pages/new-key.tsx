/** Creating a key: on success the key page opens with the plaintext shown once. */
import { api } from '../api';
import { ErrorMessage, Loading } from '../components/common';
import { FieldForm } from '../components/field-form';
import { visibleFields } from '../fields';
import { useLoad } from '../hooks';
import { KEY_FIELDS } from '../key-fields';
import { href } from '../router';
import { useTeamChoices } from '../team-choices';
import type { CreatedKey, KeyPage } from '../types';

interface Props {
  modelNames: string[];
  /** The unit of budgets. */
  currency: string;
  onCreated: (key: CreatedKey) => void;
}

export function NewKey({ modelNames, currency, onCreated }: Props) {
  // Any existing key shows which optional fields this server's keys have.
  const sample = useLoad(() => api<KeyPage>('GET', '/admin/keys?limit=1'), []);
  const teams = useTeamChoices();
  return (
    <main>
      <p>
        <a href={href({ page: 'keys' })}>← Keys</a>
      </p>
      <h1>New key</h1>
      <ErrorMessage error={sample.error} />
      {sample.loading ? (
        <Loading />
      ) : (
        <FieldForm
          kind="key"
          currency={currency}
          fields={visibleFields(KEY_FIELDS, sample.data?.data[0] ?? null, 'create')}
          original={null}
          modelNames={modelNames}
          teams={teams}
          submitLabel="Create key"
          onSubmit={async (body) => onCreated(await api<CreatedKey>('POST', '/admin/keys', body))}
        />
      )}
    </main>
  );
}
