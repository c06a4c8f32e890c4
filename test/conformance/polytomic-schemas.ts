import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { expect } from 'vitest';

/**
 * Polytomic's published response models as JSON Schemas (test/conformance/schemas/, each naming the SDK
 * file and commit it was transcribed from), and the checks the conformance tests make with them.
 */

const SCHEMA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'schemas');

/** RFC 3339 date-time, as Go's time.Time and Python's datetime read it. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true });
ajv.addFormat('date-time', RFC3339);
export const SCHEMA_NAMES = readdirSync(SCHEMA_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length));
for (const name of SCHEMA_NAMES) {
  ajv.addSchema(JSON.parse(readFileSync(path.join(SCHEMA_DIR, `${name}.json`), 'utf8')) as object);
}

const validators = new Map<string, ValidateFunction>();

/** The transcribed schema, as a JSON value. */
export function schemaOf(name: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(SCHEMA_DIR, `${name}.json`), 'utf8')) as Record<string, any>;
}

/** Every property a schema defines (the fields "every field" means). */
export function propertiesOf(name: string): string[] {
  return Object.keys(schemaOf(name).properties as object);
}

/**
 * The body validates against Polytomic's schema `name` (no JSON value of a wrong type anywhere, the
 * enums kept), and has each of `filled` present and not null, and each of `present` present (null allowed).
 */
export function conforms(
  name: string,
  body: unknown,
  what: string,
  required: { filled?: readonly string[]; present?: readonly string[]; at?: (body: any) => unknown } = {},
): void {
  let validate = validators.get(name);
  if (!validate) {
    validate = ajv.getSchema(`${name}.json`);
    if (!validate) throw new Error(`no schema ${name}`);
    validators.set(name, validate);
  }
  const ok = validate(body);
  expect(ok, `${what}: not a ${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`).toBe(
    true,
  );
  const target = (required.at ? required.at(body) : body) as Record<string, unknown> | null | undefined;
  expect(target, `${what}: nothing to check fields of`).toBeTypeOf('object');
  const missing = (required.present ?? []).filter((f) => !Object.hasOwn(target!, f));
  const empty = (required.filled ?? []).filter((f) => target![f] === undefined || target![f] === null);
  expect({ missing, empty }, `${what}: fields missing or null in ${JSON.stringify(target)}`).toEqual({
    missing: [],
    empty: [],
  });
}
