/**
 * Checks for request parts that come in many typed shapes (Responses input items, Anthropic
 * content blocks and tools), which the translators read field by field rather than through a
 * DTO per shape. Every failure is a 400 naming the field's path, like the validation pipe's.
 */
import { applyDecorators } from '@nestjs/common';
import { IsObject, IsOptional, IsString, registerDecorator } from 'class-validator';
import { invalidRequest } from '../../contracts/app-error';

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function objectAt(value: unknown, at: string): JsonObject {
  if (!isObject(value)) throw invalidRequest(`${at} must be an object`, at);
  return value;
}

/** Only `allowed` keys (an unknown field is a 400, as everywhere). */
export function onlyKeys(object: JsonObject, allowed: readonly string[], at: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw invalidRequest(`unknown field ${key}`, `${at}.${key}`);
  }
}

export function stringAt(object: JsonObject, key: string, at: string, { max = 10_000_000 } = {}): string {
  const value = object[key];
  if (typeof value !== 'string') throw invalidRequest(`${at}.${key} must be a string`, `${at}.${key}`);
  if (value.length > max) throw invalidRequest(`${at}.${key} must be at most ${max} characters`, `${at}.${key}`);
  return value;
}

export function optionalStringAt(object: JsonObject, key: string, at: string): string | undefined {
  return object[key] === undefined || object[key] === null ? undefined : stringAt(object, key, at);
}

export function arrayAt(value: unknown, at: string, max: number): unknown[] {
  if (!Array.isArray(value) || value.length > max) {
    throw invalidRequest(`${at} must be a list of at most ${max} items`, at);
  }
  return value;
}

/** A string, or a list of plain objects (checked one by one by the translator). */
export function IsStringOrObjects(max: number): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isStringOrObjects',
      target: target.constructor,
      propertyName: String(propertyName),
      options: { message: `${String(propertyName)} must be a string or a list of at most ${max} objects` },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' ||
          (Array.isArray(value) &&
            value.length <= max &&
            value.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item))),
      },
    });
  };
}

/** An optional string (fields accepted for what they are, most of which change nothing here). */
export function OptionalString(): PropertyDecorator {
  return applyDecorators(IsOptional(), IsString());
}

/** An optional JSON object. */
export function OptionalObject(): PropertyDecorator {
  return applyDecorators(IsOptional(), IsObject());
}
