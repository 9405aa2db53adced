/**
 * What a form field of an admin object is (the lists: key-fields.ts, team-fields.ts), and how a
 * form's values become a request body. Fields marked `optional` (limits other
 * features add to an object, like a key's max_concurrent) are shown only when the server's
 * objects carry them, so the console follows the API rather than guessing which version it
 * talks to.
 */
import { plainDecimal } from './format';

export type FieldKind = 'text' | 'limit' | 'integer' | 'money' | 'choice' | 'team' | 'models' | 'instant' | 'flag';

export interface FormField {
  name: string;
  label: string;
  kind: FieldKind;
  help: string;
  min?: number;
  max?: number;
  choices?: string[];
  /** Only when the objects have this field. */
  optional?: boolean;
  /** Only when editing (the create request does not take it). */
  editOnly?: boolean;
  /** What a new object's form starts with (the server's default), for fields that cannot be empty. */
  initial?: string;
}

/** The fields a form shows: optional ones only when `sample` (an object of that kind) has them. */
export function visibleFields(
  fields: FormField[],
  sample: Record<string, unknown> | null,
  mode: 'create' | 'edit',
): FormField[] {
  return fields.filter(
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

export function formValues(fields: FormField[], object: Record<string, unknown> | null): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    const value = object?.[field.name];
    if (field.kind === 'flag') values[field.name] = value === undefined ? true : value === true;
    else if (field.kind === 'models') values[field.name] = Array.isArray(value) ? value.map(String) : null;
    else if (field.kind === 'instant') values[field.name] = typeof value === 'string' ? instantToInput(value) : '';
    else if (field.kind === 'money') values[field.name] = typeof value === 'number' ? plainDecimal(value) : '';
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

function parseInteger(field: FormField, text: string): number {
  if (!/^\d+$/.test(text)) throw new FieldError(field.name, 'a whole number');
  const value = Number(text);
  if ((field.min !== undefined && value < field.min) || (field.max !== undefined && value > field.max)) {
    throw new FieldError(field.name, `between ${field.min} and ${field.max}`);
  }
  return value;
}

/** The server keeps budgets exactly, to 15 decimals (1e-15 of a CURRENCY unit), up to 10^12. */
const MONEY_DECIMALS = 15;
const MONEY_MAX = 1e12;

function parseMoney(field: FormField, text: string): number {
  if (!/^\d+(\.\d{1,15})?$/.test(text)) {
    throw new FieldError(field.name, `an amount like 12.50, with at most ${MONEY_DECIMALS} decimals`);
  }
  const value = Number(text);
  if (value > MONEY_MAX) throw new FieldError(field.name, `at most ${plainDecimal(MONEY_MAX)}`);
  return value;
}

/** The request value of one field, or a FieldError saying what is wrong with it. */
export function requestValue(field: FormField, value: FormValue): unknown {
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
    case 'money': {
      const text = String(value ?? '').trim();
      return text === '' ? null : parseMoney(field, text);
    }
    case 'team':
      // '' is "no team": null leaves the team on edit, and is left out on create.
      return value === '' || value === null ? null : String(value);
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
export function requestBody(
  fields: FormField[],
  values: FormValues,
  original: Record<string, unknown> | null,
): Record<string, unknown> {
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
