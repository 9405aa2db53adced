/**
 * The editable fields of a key, as one list the create and edit forms are drawn from. Fields
 * marked `optional` (limits other features add to the key object, like max_concurrent) are
 * shown only when the server's key objects carry them, so the console follows the API rather
 * than guessing which version it talks to.
 */
import type { Key } from './types';

export type FieldKind = 'text' | 'limit' | 'integer' | 'choice' | 'models' | 'instant' | 'flag';

export interface KeyField {
  name: string;
  label: string;
  kind: FieldKind;
  help: string;
  min?: number;
  max?: number;
  choices?: string[];
  /** Only when key objects have this field. */
  optional?: boolean;
  /** Only when editing (the create request does not take it). */
  editOnly?: boolean;
  /** What a new key's form starts with (the server's default), for fields that cannot be empty. */
  initial?: string;
}

const INT32_MAX = 2_147_483_647;

export const KEY_FIELDS: KeyField[] = [
  { name: 'name', label: 'Name', kind: 'text', help: '1 to 200 characters' },
  {
    name: 'rpm_limit',
    label: 'Requests per minute',
    kind: 'limit',
    min: 1,
    max: INT32_MAX,
    help: 'empty: the server default (DEFAULT_RPM)',
  },
  { name: 'tpm_limit', label: 'Tokens per minute', kind: 'limit', min: 1, max: INT32_MAX, help: 'empty: unlimited' },
  {
    name: 'monthly_quota',
    label: 'Requests per month',
    kind: 'limit',
    min: 0,
    max: INT32_MAX,
    help: 'empty: unlimited; the month is the calendar month in UTC',
  },
  {
    name: 'monthly_token_quota',
    label: 'Tokens per month',
    kind: 'limit',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    help: 'empty: unlimited',
  },
  {
    name: 'max_concurrent',
    label: 'Concurrent generations',
    kind: 'limit',
    min: 1,
    max: INT32_MAX,
    help: 'empty: unlimited',
    optional: true,
  },
  {
    name: 'priority',
    label: 'Priority',
    kind: 'choice',
    choices: ['high', 'normal', 'low'],
    help: 'order of service when a model is busy',
    optional: true,
  },
  {
    name: 'weight',
    label: 'Weight',
    kind: 'integer',
    min: 1,
    max: 100,
    help: 'share within its priority, 1 to 100',
    optional: true,
    initial: '1',
  },
  { name: 'models', label: 'Models', kind: 'models', help: 'the models this key may use' },
  { name: 'expires_at', label: 'Expires', kind: 'instant', help: 'empty: never; in UTC' },
  {
    name: 'active',
    label: 'Active',
    kind: 'flag',
    help: 'an inactive key is refused until it is activated again',
    editOnly: true,
  },
];

/** The fields a form shows: optional ones only when `sample` (a key object) has them. */
export function visibleFields(sample: Record<string, unknown> | null, mode: 'create' | 'edit'): KeyField[] {
  return KEY_FIELDS.filter(
    (field) => (!field.optional || (sample !== null && field.name in sample)) && (mode === 'edit' || !field.editOnly),
  );
}

/** A form value: inputs hold strings; models a list (null = every model); flags a boolean. */
export type FormValue = string | boolean | string[] | null;
export type FormValues = Record<string, FormValue>;

/** `2026-12-31T23:59:00.000Z` as the `2026-12-31T23:59` a UTC datetime input shows. */
function instantToInput(iso: string): string {
  return new Date(iso).toISOString().slice(0, 16);
}

export function formValues(fields: KeyField[], key: Record<string, unknown> | null): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    const value = key?.[field.name];
    if (field.kind === 'flag') values[field.name] = value === undefined ? true : value === true;
    else if (field.kind === 'models') values[field.name] = Array.isArray(value) ? value.map(String) : null;
    else if (field.kind === 'instant') values[field.name] = typeof value === 'string' ? instantToInput(value) : '';
    else if (field.kind === 'choice' && value === undefined) values[field.name] = field.choices?.[1] ?? '';
    else if (value === undefined && field.initial !== undefined) values[field.name] = field.initial;
    else values[field.name] = value === null || value === undefined ? '' : String(value);
  }
  return values;
}

export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function parseInteger(field: KeyField, text: string): number {
  if (!/^\d+$/.test(text)) throw new FieldError(field.name, 'a whole number');
  const value = Number(text);
  if ((field.min !== undefined && value < field.min) || (field.max !== undefined && value > field.max)) {
    throw new FieldError(field.name, `between ${field.min} and ${field.max}`);
  }
  return value;
}

/** The request value of one field, or a FieldError saying what is wrong with it. */
export function requestValue(field: KeyField, value: FormValue): unknown {
  switch (field.kind) {
    case 'flag':
      return value === true;
    case 'models':
      if (Array.isArray(value) && value.length === 0) throw new FieldError(field.name, 'pick at least one model');
      return value;
    case 'limit': {
      const text = String(value ?? '').trim();
      return text === '' ? null : parseInteger(field, text);
    }
    case 'integer':
      return parseInteger(field, String(value ?? '').trim());
    case 'instant': {
      const text = String(value ?? '').trim();
      if (text === '') return null;
      const date = new Date(`${text}Z`);
      if (Number.isNaN(date.getTime())) throw new FieldError(field.name, 'a date and time');
      return date.toISOString();
    }
    case 'text':
      if (String(value ?? '').trim() === '') throw new FieldError(field.name, 'required');
      return String(value);
    case 'choice':
      return String(value);
  }
}

/**
 * The request body: every field on create (empty optional limits left out, so the server's
 * defaults apply), only the fields whose input changed on edit.
 */
export function requestBody(fields: KeyField[], values: FormValues, original: Key | null): Record<string, unknown> {
  const initial = original === null ? null : formValues(fields, original);
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.name] ?? null;
    if (initial !== null) {
      if (JSON.stringify(value) !== JSON.stringify(initial[field.name] ?? null)) {
        body[field.name] = requestValue(field, value);
      }
      continue;
    }
    const parsed = requestValue(field, value);
    if (parsed !== null) body[field.name] = parsed;
  }
  return body;
}
