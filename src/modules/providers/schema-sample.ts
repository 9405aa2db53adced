/**
 * A deterministic JSON value that satisfies a JSON schema, for the mock provider's structured
 * outputs and tool-call arguments. Covers what OpenAI's strict mode allows and what tool
 * definitions use in practice: `type` (one or a list), `enum`, `const`, `properties` with
 * `required` (every property is produced, so strict schemas with `additionalProperties: false`
 * hold too), `items` with `minItems`/`maxItems`, `anyOf`/`oneOf` (the first branch), `allOf`
 * (merged properties), local `$ref`s into `$defs`/`definitions`, string `minLength`/`maxLength`
 * and number `minimum`/`maximum`. Anything else gets a string: the mock is for tests, not a
 * validator. Schemas come from clients, so the value is bounded whatever they say: strings of at
 * most MAX_STRING characters, arrays of at most MAX_ITEMS items, MAX_NODES values in all (past
 * it, null); a schema asking for more gets a value that does not satisfy it.
 */
import type { JsonSchema } from '../../contracts/generation';

type Random = () => number;

const WORDS = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'llama', 'token', 'gateway', 'model'];
const MAX_DEPTH = 16;
const MAX_STRING = 256;
const MAX_ITEMS = 8;
const MAX_NODES = 2000;

/** How many values may still be produced (shared by one sampleForSchema call). */
interface Budget {
  nodes: number;
}

function asSchema(value: unknown): JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonSchema) : {};
}

function resolveRef(root: JsonSchema, ref: string): JsonSchema {
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
  if (!match) return {};
  return asSchema(asSchema(root[match[1]])[match[2]]);
}

function numberIn(schema: JsonSchema, random: Random, integer: boolean): number {
  const min = typeof schema.minimum === 'number' ? schema.minimum : 0;
  const max = typeof schema.maximum === 'number' ? schema.maximum : min + 100;
  const value = min + random() * (max - min);
  return integer
    ? Math.min(Math.max(Math.round(value), Math.ceil(min)), Math.floor(max))
    : Math.round(value * 100) / 100;
}

function stringFor(schema: JsonSchema, random: Random): string {
  const min = typeof schema.minLength === 'number' ? Math.min(schema.minLength, MAX_STRING) : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : 32;
  let text = WORDS[Math.floor(random() * WORDS.length)];
  while (text.length < min) text += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
  return text.slice(0, Math.max(min, Math.min(max, text.length)));
}

function sample(schema: JsonSchema, root: JsonSchema, random: Random, depth: number, budget: Budget): unknown {
  if (depth > MAX_DEPTH || --budget.nodes < 0) return null;
  if (typeof schema.$ref === 'string') return sample(resolveRef(root, schema.$ref), root, random, depth + 1, budget);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    return schema.enum[Math.floor(random() * schema.enum.length)];
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0)
      return sample(asSchema(branches[0]), root, random, depth + 1, budget);
  }
  if (Array.isArray(schema.allOf)) {
    const merged: JsonSchema = { type: 'object', properties: {}, required: [] };
    for (const part of schema.allOf.map(asSchema)) {
      Object.assign(merged.properties as JsonSchema, asSchema(part.properties));
    }
    return sample(merged, root, random, depth + 1, budget);
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? (schema.properties ? 'object' : 'string')];
  const type = types.find((t) => t !== 'null') ?? 'null';
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [name, property] of Object.entries(asSchema(schema.properties))) {
        out[name] = sample(asSchema(property), root, random, depth + 1, budget);
      }
      return out;
    }
    case 'array': {
      const min = typeof schema.minItems === 'number' ? schema.minItems : 1;
      const max = typeof schema.maxItems === 'number' ? schema.maxItems : Math.max(min, 3);
      const wanted = Math.min(max, Math.max(min, 1 + Math.floor(random() * 3)));
      const count = Math.max(0, Math.min(MAX_ITEMS, Number.isFinite(wanted) ? Math.floor(wanted) : 1));
      return Array.from({ length: count }, () => sample(asSchema(schema.items), root, random, depth + 1, budget));
    }
    case 'integer':
      return numberIn(schema, random, true);
    case 'number':
      return numberIn(schema, random, false);
    case 'boolean':
      return random() < 0.5;
    case 'null':
      return null;
    default:
      return stringFor(schema, random);
  }
}

/** A value valid against `schema` (see the file comment for what is understood). */
export function sampleForSchema(schema: JsonSchema, random: Random): unknown {
  return sample(schema, schema, random, 0, { nodes: MAX_NODES });
}
