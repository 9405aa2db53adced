/**
 * One key: its quota and budget use, 30 days of usage and spend as charts, the edit form (its
 * team among the fields), rotate and revoke. A revoked key is shown read-only: the API refuses
 * to re-activate or rotate it anyway.
 */
import { api, query } from '../api';
import { ErrorMessage, Loading, StatusBadge } from '../components/common';
import { ConfirmButton } from '../components/confirm';
import { FieldForm } from '../components/field-form';
import { QuotaMeter } from '../components/quota-meter';
import { SecretOnce } from '../components/secret-once';
import { UsageCharts } from '../components/usage-charts';
import { type FormField, visibleFields } from '../fields';
import { formatInstant, formatMoney, keyStatus, lastDays } from '../format';
import { useLoad } from '../hooks';
import { KEY_FIELDS } from '../key-fields';
import { href } from '../router';
import { useTeamChoices } from '../team-choices';
import type { CreatedKey, DailyUsage, Key, KeyWithUsage, TeamChoice } from '../types';

const DAYS = 30;

function fieldText(field: FormField, value: unknown, teams: TeamChoice[]): string {
  if (field.kind === 'flag') return value === true ? 'yes' : 'no';
  if (field.kind === 'models') return Array.isArray(value) ? value.join(', ') : 'every model';
  if (field.kind === 'instant') return formatInstant(typeof value === 'string' ? value : null);
  if (field.kind === 'team') return value ? (teams.find((team) => team.id === value)?.name ?? String(value)) : 'none';
  if (field.kind === 'money' && (value === null || value === undefined)) return 'none';
  if (value === null || value === undefined) return field.name === 'rpm_limit' ? 'server default' : 'unlimited';
  return String(value);
}

function ReadOnlyFields({ fields, keyData, teams }: { fields: FormField[]; keyData: Key; teams: TeamChoice[] }) {
  return (
    <dl class="fields">
      {fields.map((field) => (
        <div key={field.name} data-field={field.name}>
          <dt>{field.label}</dt>
          <dd>{fieldText(field, keyData[field.name], teams)}</dd>
        </div>
      ))}
    </dl>
  );
}

interface Props {
  id: string;
  modelNames: string[];
  /** The unit of spend and budgets. */
  currency: string;
  secret: string | null;
  onSecret: (created: CreatedKey | null) => void;
}

export function KeyDetail({ id, modelNames, currency, secret, onSecret }: Props) {
  const days = lastDays(DAYS);
  const teams = useTeamChoices();
  const money = (value: number): string => formatMoney(value, currency);
  const key = useLoad(() => api<KeyWithUsage>('GET', `/admin/keys/${id}`), [id]);
  const usage = useLoad(
    () => api<{ data: DailyUsage[] }>('GET', `/admin/keys/${id}/usage${query({ from: days[0], to: days[DAYS - 1] })}`),
    [id, days[0]],
  );
  if (!key.data) {
    return (
      <main>
        <p>
          <a href={href({ page: 'keys' })}>← Keys</a>
        </p>
        <ErrorMessage error={key.error} />
        {key.loading ? <Loading /> : null}
      </main>
    );
  }
  const data = key.data;
  const status = keyStatus(data);
  const revoked = status === 'revoked';
  const fields = visibleFields(KEY_FIELDS, data, 'edit');
  const team = data.team_id
    ? (teams.find((t) => t.id === data.team_id) ?? { id: data.team_id, name: 'its team' })
    : null;

  return (
    <main>
      <p>
        <a href={href({ page: 'keys' })}>← Keys</a>
      </p>
      <div class="page-head">
        <h1 class="key-title">{data.name}</h1>
        <StatusBadge status={status} />
      </div>
      <p class="muted">
        <code>{data.key_prefix}…</code> · created {formatInstant(data.created_at)}
        {team ? (
          <>
            {' '}
            · team{' '}
            <a class="key-team" href={href({ page: 'team', id: team.id })}>
              {team.name}
            </a>
          </>
        ) : null}
      </p>
      {secret ? <SecretOnce secret={secret} onDismiss={() => onSecret(null)} /> : null}
      {revoked ? (
        <p class="notice" role="status">
          Revoked {formatInstant(data.revoked_at)}. A revoked key is read-only: it cannot be changed, rotated or
          activated again.
        </p>
      ) : null}

      <section aria-labelledby="quota-title">
        <h2 id="quota-title">This period</h2>
        <QuotaMeter id="requests" label="Requests" used={data.usage.requests} quota={data.monthly_quota} />
        <QuotaMeter id="tokens" label="Tokens" used={data.usage.tokens} quota={data.monthly_token_quota} />
        <QuotaMeter
          id="budget"
          label="Spend"
          used={data.usage.cost ?? 0}
          quota={data.monthly_budget ?? null}
          format={money}
          none="(no budget of its own)"
        />
        <p class="muted">Resets {formatInstant(data.usage.quota_reset_at)}.</p>
      </section>

      <section aria-labelledby="usage-title">
        <h2 id="usage-title">Spend and usage, last {DAYS} days</h2>
        <ErrorMessage error={usage.error} />
        {usage.data ? <UsageCharts rows={usage.data.data} days={days} currency={currency} /> : <Loading />}
      </section>

      <section aria-labelledby="settings-title">
        <h2 id="settings-title">Settings</h2>
        {revoked ? (
          <ReadOnlyFields fields={fields} keyData={data} teams={teams} />
        ) : (
          <FieldForm
            kind="key"
            currency={currency}
            key={data.id}
            fields={fields}
            original={data}
            modelNames={modelNames}
            teams={teams}
            submitLabel="Save changes"
            onSubmit={async (body) => {
              const updated = await api<Key>('PATCH', `/admin/keys/${id}`, body);
              key.set({ ...data, ...updated });
            }}
          />
        )}
      </section>

      {revoked ? null : (
        <section aria-labelledby="danger-title" class="danger-zone">
          <h2 id="danger-title">Rotate or revoke</h2>
          <div class="danger-actions">
            <ConfirmButton
              label="Rotate key"
              question="Rotate this key? The current key stops working at once; the new one is shown once."
              confirmLabel="Yes, rotate"
              onConfirm={async () => {
                const rotated = await api<CreatedKey>('POST', `/admin/keys/${id}/rotate`);
                onSecret(rotated);
                key.reload();
              }}
            />
            <ConfirmButton
              label="Revoke key"
              question="Revoke this key? It stops working at once, for good."
              confirmLabel="Yes, revoke"
              onConfirm={async () => {
                await api<void>('DELETE', `/admin/keys/${id}`);
                onSecret(null);
                key.reload();
              }}
            />
          </div>
        </section>
      )}
    </main>
  );
}
