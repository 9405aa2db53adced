/** The create and edit form of a key or a team, drawn from a field list (key-fields.ts, team-fields.ts). */
import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { FieldError, type FormField, type FormValue, type FormValues, formValues, requestBody } from '../fields';
import type { TeamChoice } from '../types';
import { ErrorMessage } from './common';

interface Props {
  fields: FormField[];
  /** The object being edited; null to create one. */
  original: Record<string, unknown> | null;
  /** Names of the configured models, for the models field. */
  modelNames?: string[];
  /** The teams a key may join, for the team field. */
  teams?: TeamChoice[];
  /** The unit of money fields (budgets), shown in their label. */
  currency?: string;
  /** The form's class: `key-form` or `team-form`. */
  kind: 'key' | 'team';
  submitLabel: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
}

function FieldInput({
  field,
  value,
  modelNames,
  teams,
  onChange,
}: {
  field: FormField;
  value: FormValue;
  modelNames: string[];
  teams: TeamChoice[];
  onChange: (value: FormValue) => void;
}) {
  const id = `field-${field.name}`;
  switch (field.kind) {
    case 'flag':
      return (
        <input
          id={id}
          name={field.name}
          type="checkbox"
          checked={value === true}
          onChange={(e) => onChange(e.currentTarget.checked)}
        />
      );
    case 'choice':
      return (
        <select id={id} name={field.name} value={String(value)} onChange={(e) => onChange(e.currentTarget.value)}>
          {(field.choices ?? []).map((choice) => (
            <option key={choice} value={choice}>
              {choice}
            </option>
          ))}
        </select>
      );
    case 'team': {
      const chosen = String(value ?? '');
      // A team not in the loaded list (beyond its first page) stays selectable by its id.
      const known = chosen === '' || teams.some((team) => team.id === chosen);
      return (
        <select id={id} name={field.name} value={chosen} onChange={(e) => onChange(e.currentTarget.value)}>
          <option value="">no team</option>
          {teams.map((team) => (
            <option key={team.id} value={team.id}>
              {team.name}
            </option>
          ))}
          {known ? null : <option value={chosen}>{chosen}</option>}
        </select>
      );
    }
    case 'models': {
      const chosen = Array.isArray(value) ? value : null;
      // Models the key names that are no longer configured stay visible, so they can be removed.
      const names = [...new Set([...modelNames, ...(chosen ?? [])])];
      return (
        <fieldset id={id} class="models">
          <legend class="visually-hidden">{field.label}</legend>
          <label class="inline">
            <input type="radio" name={`${field.name}-mode`} checked={chosen === null} onChange={() => onChange(null)} />
            every model
          </label>
          <label class="inline">
            <input
              type="radio"
              name={`${field.name}-mode`}
              checked={chosen !== null}
              onChange={() => onChange(chosen ?? [])}
            />
            only these:
          </label>
          {chosen !== null ? (
            <div class="model-choices">
              {names.map((name) => (
                <label class="inline" key={name}>
                  <input
                    type="checkbox"
                    name={field.name}
                    value={name}
                    checked={chosen.includes(name)}
                    onChange={(e) =>
                      onChange(e.currentTarget.checked ? [...chosen, name] : chosen.filter((m) => m !== name))
                    }
                  />
                  {name}
                </label>
              ))}
            </div>
          ) : null}
        </fieldset>
      );
    }
    case 'instant':
      return (
        <input
          id={id}
          name={field.name}
          type="datetime-local"
          value={String(value ?? '')}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      );
    default:
      return (
        <input
          id={id}
          name={field.name}
          type="text"
          inputMode={field.kind === 'text' ? undefined : field.kind === 'money' ? 'decimal' : 'numeric'}
          autocomplete="off"
          value={String(value ?? '')}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      );
  }
}

export function FieldForm({
  fields,
  original,
  modelNames = [],
  teams = [],
  currency,
  kind,
  submitLabel,
  onSubmit,
}: Props) {
  const [values, setValues] = useState<FormValues>(() => formValues(fields, original));
  const [fieldError, setFieldError] = useState<FieldError | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setError(null);
    setFieldError(null);
    setSaved(false);
    let body: Record<string, unknown>;
    try {
      body = requestBody(fields, values, original);
    } catch (err) {
      if (err instanceof FieldError) setFieldError(err);
      else setError(err);
      return;
    }
    setBusy(true);
    try {
      await onSubmit(body);
      setSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const serverParam = error instanceof ApiError ? error.param : null;
  return (
    <form class={`${kind}-form`} onSubmit={(e) => void submit(e)} noValidate>
      {fields.map((field) => {
        const wrong = fieldError?.field === field.name || serverParam === field.name;
        return (
          <div class={`field${wrong ? ' field-wrong' : ''}`} key={field.name} data-field={field.name}>
            <label for={`field-${field.name}`}>
              {field.kind === 'money' && currency ? `${field.label} (${currency})` : field.label}
            </label>
            <FieldInput
              field={field}
              value={values[field.name] ?? null}
              modelNames={modelNames}
              teams={teams}
              onChange={(value) => {
                setSaved(false);
                setValues({ ...values, [field.name]: value });
              }}
            />
            <small class="help">
              {fieldError?.field === field.name ? `Must be ${fieldError.message}.` : field.help}
            </small>
          </div>
        );
      })}
      <ErrorMessage error={error} />
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {submitLabel}
        </button>
        {saved && original !== null ? (
          <span class="saved" role="status">
            Saved.
          </span>
        ) : null}
      </div>
    </form>
  );
}
