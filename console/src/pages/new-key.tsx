/** Creating a key: on success the key page opens with the plaintext shown once. */
import { api } from '../api';
import { ErrorMessage, Loading } from '../components/common';
import { KeyForm } from '../components/key-form';
import { visibleFields } from '../fields';
import { useLoad } from '../hooks';
import { href } from '../router';
import type { CreatedKey, KeyPage } from '../types';

export function NewKey({ modelNames, onCreated }: { modelNames: string[]; onCreated: (key: CreatedKey) => void }) {
  // Any existing key shows which optional fields this server's keys have.
  const sample = useLoad(() => api<KeyPage>('GET', '/admin/keys?limit=1'), []);
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
        <KeyForm
          fields={visibleFields(sample.data?.data[0] ?? null, 'create')}
          original={null}
          modelNames={modelNames}
          submitLabel="Create key"
          onSubmit={async (body) => onCreated(await api<CreatedKey>('POST', '/admin/keys', body))}
        />
      )}
    </main>
  );
}
