/** Reads the fields of one YAML mapping of models.yaml and reports problems with their full location. */
import { ConfigError } from './config.errors';

export type Fields = Record<string, unknown>;

/** Reads fields of one YAML mapping and reports problems with the full location. */
export class FieldReader {
  constructor(
    private readonly fields: Fields,
    private readonly where: string,
  ) {}

  fail(field: string, problem: string): never {
    throw new ConfigError(`${this.where}: field "${field}": ${problem}`);
  }

  has(field: string): boolean {
    return this.fields[field] !== undefined && this.fields[field] !== null;
  }

  rejectUnknown(allowed: readonly string[]): void {
    for (const field of Object.keys(this.fields)) {
      if (!allowed.includes(field)) this.fail(field, 'unknown field');
    }
  }

  string(field: string): string {
    const value = this.fields[field];
    if (value === undefined || value === null) this.fail(field, 'is required');
    if (typeof value !== 'string' || value.trim() === '') this.fail(field, 'must be a non-empty string');
    return value;
  }

  optionalString(field: string): string | null {
    return this.has(field) ? this.string(field) : null;
  }

  int(field: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (!this.has(field)) return fallback;
    const value = this.fields[field];
    if (typeof value !== 'number' || !Number.isInteger(value)) this.fail(field, 'must be an integer');
    if (value < min || value > max) this.fail(field, `must be between ${min} and ${max}`);
    return value;
  }

  bool(field: string, fallback: boolean): boolean {
    if (!this.has(field)) return fallback;
    const value = this.fields[field];
    if (typeof value !== 'boolean') this.fail(field, 'must be true or false');
    return value;
  }

  mapping(field: string): Fields {
    const value = asMapping(this.fields[field]);
    if (!value) this.fail(field, 'must be a mapping');
    return value;
  }

  list(field: string): unknown[] {
    if (!this.has(field)) return [];
    const value = this.fields[field];
    if (!Array.isArray(value)) this.fail(field, 'must be a list');
    return value;
  }
}

export function asMapping(value: unknown): Fields | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Fields) : null;
}
