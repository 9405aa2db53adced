/** The create and edit form of a key, drawn from the field list in fields.ts. */
import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { FieldError, type FormValue, type FormValues, type KeyField, formValues, requestBody } from '../fields';
import type { Key } from '../types';
import { ErrorMessage } from './common';

interface Props {
  fields: KeyField[];
  /** The key being edited; null to create one. */
  original: Key | null;
  /** Names of the configured models, for the models field. */
  modelNames: string[];
  submitLabel: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
}

function FieldInput({
  field,
  value,
  modelNames,
  onChange,
}: {
  field: KeyField;
  value: FormValue;
  modelNames: string[];
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
          inputMode={field.kind === 'text' ? undefined : 'numeric'}
          autocomplete="off"
          value={String(value ?? '')}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      );
  }
}

export function KeyForm({ fields, original, modelNames, submitLabel, onSubmit }: Props) {
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
    <form class="key-form" onSubmit={(e) => void submit(e)} noValidate>
      {fields.map((field) => {
        const wrong = fieldError?.field === field.name || serverParam === field.name;
        return (
          <div class={`field${wrong ? ' field-wrong' : ''}`} key={field.name} data-field={field.name}>
            <label for={`field-${field.name}`}>{field.label}</label>
            <FieldInput
              field={field}
              value={values[field.name] ?? null}
              modelNames={modelNames}
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
