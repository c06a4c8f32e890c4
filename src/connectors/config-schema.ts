import { Type, type Static, type TObject, type TProperties, type TSchema } from 'typebox';
// The JSON Schema validator alone (typebox/schema): half the start-up of typebox/compile, the same checks.
import { Compile } from 'typebox/schema';
import { badRequest } from '../core/errors.js';
import type { EgressTarget } from '../net/egress-policy.js';
import {
  type ConfigField,
  type ConfigFieldType,
  type Connector,
  type ConnectorConfig,
  type ConnectorContext,
  type Engine,
} from './connector.js';
import { checkedAtOpen } from './support.js';

/**
 * A connector's configuration as one TypeBox schema, and everything made from it: the validation a
 * client's configuration passes (with messages naming the field), the typed configuration its engine
 * sees (`Static<typeof schema>`), the field list of GET /api/connection_types, the JSON Schema for the
 * OpenAPI document, and `defineConnector`, which puts a typed Engine behind the schema.
 *
 * A schema is a `Type.Object` of fields made by `field.*` (so every string has the length cap and every
 * field a description). A field with a `default` is not Optional: the default is filled in before the
 * check, so the engine's type has it (`port: number`), while the API lists the field as not required.
 * Metadata beyond JSON Schema's own (`description`, `default`, `title`, bounds) are the keywords
 * `x-secret`, `x-target` and `x-aliases` (see FieldOptions), which OpenAPI tools pass through.
 */

/** What a field says beyond its type. */
export interface FieldOptions {
  description: string;
  /** Sealed at rest, shown as "********", scrubbed from database messages. */
  secret?: boolean;
  /**
   * Part of where the connection goes: a stored secret sent back as the placeholder is kept only while
   * every target field stays the same (ConnectionService).
   */
  target?: boolean;
  /**
   * Other names the field is accepted under on input (the stored and returned name is the field's own).
   * A configuration may name a field only once, by its name or by one alias.
   */
  aliases?: readonly string[];
}

/** The longest string any field accepts. */
const MAX_STRING = 4096;

/** A field's JSON Schema keywords beyond its type: the plain ones as given, the rest as `x-…`. */
function keywords(
  options: FieldOptions & { default?: unknown; title?: string; minimum?: number; maximum?: number },
): Record<string, unknown> {
  const { secret, target, aliases, ...plain } = options;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(plain)) if (value !== undefined) out[name] = value;
  if (secret) out['x-secret'] = true;
  if (target) out['x-target'] = true;
  if (aliases?.length) out['x-aliases'] = [...aliases];
  return out;
}

/** Field builders for configuration schemas. Wrap a field in `Type.Optional` when it may be left out. */
export const field = {
  string: (options: FieldOptions & { default?: string }) =>
    Type.String({ maxLength: MAX_STRING, ...keywords(options) }),
  /** `title` names the kind of number in the message for a value out of range ("must be a port number from 1 to 65535"). */
  integer: (
    options: FieldOptions & { default?: number; minimum?: number; maximum?: number; title?: string },
  ) => Type.Integer(keywords(options)),
  boolean: (options: FieldOptions & { default?: boolean }) => Type.Boolean(keywords(options)),
  /** A TCP port, 1 to 65535. */
  port: (options: FieldOptions & { default?: number }) =>
    field.integer({ ...options, minimum: 1, maximum: 65535, title: 'port number' }),
};

/** A configuration schema: these fields and no others. */
export function configSchema<P extends TProperties>(properties: P): TObject<P> {
  return Type.Object(properties, { additionalProperties: false });
}

/** One keyword of a schema, read without trusting its type. */
function keyword(schema: TSchema, name: string): unknown {
  const value: unknown = Object.getOwnPropertyDescriptor(schema, name)?.value;
  return value;
}

function fieldType(name: string, schema: TSchema): ConfigFieldType {
  if (Type.IsString(schema)) return 'string';
  if (Type.IsInteger(schema)) return 'integer';
  if (Type.IsBoolean(schema)) return 'boolean';
  throw new Error(`Configuration field ${name}: only string, integer and boolean fields are supported.`);
}

function defaultOf(schema: TSchema): string | number | boolean | undefined {
  const value = keyword(schema, 'default');
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? value
    : undefined;
}

/** A field as the validator needs it. */
interface FieldRule extends ConfigField {
  aliases: readonly string[];
  schema: TSchema;
}

function fieldRules(schema: TObject): FieldRule[] {
  return Object.entries(schema.properties).map(([name, property]) => {
    const description = keyword(property, 'description');
    const aliases = keyword(property, 'x-aliases');
    const fallback = defaultOf(property);
    // In the order GET /api/connection_types has always listed the keys.
    const rule: FieldRule = {
      name,
      type: fieldType(name, property),
      required: !Type.IsOptional(property) && fallback === undefined,
      secret: keyword(property, 'x-secret') === true,
      ...(fallback === undefined ? {} : { default: fallback }),
      description: typeof description === 'string' ? description : '',
      ...(keyword(property, 'x-target') === true ? { target: true } : {}),
      aliases: Array.isArray(aliases) ? aliases.filter((a): a is string => typeof a === 'string') : [],
      schema: property,
    };
    return rule;
  });
}

const configurationError = (name: string, message: string) =>
  badRequest('invalid_configuration', `configuration.${name} ${message}`, {
    field: `configuration.${name}`,
  });

/** How a value of this type is described when it has the wrong type. */
const EXPECTED: Record<ConfigFieldType, string> = {
  string: 'a string',
  integer: 'a whole number',
  boolean: 'true or false',
};

/** "a port number from 1 to 65535": the field's title (else "whole number") and its bounds. */
function range(schema: TSchema): string {
  const title = keyword(schema, 'title');
  const [min, max] = [keyword(schema, 'minimum'), keyword(schema, 'maximum')];
  const bounds =
    min !== undefined && max !== undefined
      ? `from ${String(min)} to ${String(max)}`
      : min !== undefined
        ? `of at least ${String(min)}`
        : `of at most ${String(max)}`;
  return `a ${typeof title === 'string' ? title : 'whole number'} ${bounds}`;
}

/**
 * A compiled configuration schema: `parse` is the validation every configuration passes, on input
 * (400 naming the field) and again before an engine runs it.
 */
export class ConfigSpec<S extends TObject> {
  /** The fields as GET /api/connection_types lists them (plus `target`, which it does not show). */
  readonly fields: readonly ConfigField[];
  private readonly rules: readonly FieldRule[];
  /** Each accepted input name (field or alias) → the field's name. */
  private readonly names = new Map<string, string>();
  private readonly validator;

  constructor(readonly schema: S) {
    this.rules = fieldRules(schema);
    this.fields = this.rules.map(({ aliases: _aliases, schema: _schema, ...wire }) => wire);
    for (const rule of this.rules) {
      for (const name of [rule.name, ...rule.aliases]) {
        if (this.names.has(name)) throw new Error(`Configuration field name ${name} is used twice.`);
        this.names.set(name, rule.name);
      }
    }
    this.validator = Compile(schema);
  }

  /**
   * Checks a configuration: a JSON object whose every key is a field (or an alias of one, each field
   * named once); null and '' count as absent, and absent fields take their default. Then the schema
   * decides: required fields present, every value of its field's type and in its range. The first
   * problem, in field order, is the 400; the result has the fields in schema order.
   */
  parse(input: unknown): Static<S> {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw badRequest('invalid_configuration', 'configuration must be a JSON object.');
    }
    /** Field name → the key it was sent under, and its value. */
    const given = new Map<string, { key: string; value: unknown }>();
    for (const [key, value] of Object.entries(input)) {
      const name = this.names.get(key);
      if (name === undefined) {
        throw configurationError(
          key,
          `is not a field of this connection type (expected: ${this.rules.map((r) => r.name).join(', ')}).`,
        );
      }
      const earlier = given.get(name);
      if (earlier) {
        throw configurationError(
          key,
          `names the same field as configuration.${earlier.key}; send only one of them.`,
        );
      }
      given.set(name, { key, value });
    }
    const config: Record<string, unknown> = {};
    for (const rule of this.rules) {
      const value = given.get(rule.name)?.value;
      if (value !== undefined && value !== null && value !== '') config[rule.name] = value;
      else if (rule.default !== undefined) config[rule.name] = rule.default;
    }
    if (this.validator.Check(config)) return config;
    throw this.firstProblem(config, given);
  }

  /** The 400 for a configuration the validator refused: its first problem, in field order. */
  private firstProblem(config: unknown, given: ReadonlyMap<string, { key: string }>): Error {
    const problems: { rule: FieldRule; message: string }[] = [];
    const ruleOf = (name: string | undefined) => this.rules.find((r) => r.name === name);
    const [, errors] = this.validator.Errors(config);
    for (const error of errors) {
      if (error.keyword === 'required') {
        for (const name of error.params.requiredProperties) {
          const rule = ruleOf(name);
          if (rule) problems.push({ rule, message: 'is required.' });
        }
        continue;
      }
      const rule = ruleOf(error.instancePath.split('/')[1]);
      if (!rule) continue;
      switch (error.keyword) {
        case 'type':
          problems.push({ rule, message: `must be ${EXPECTED[rule.type]}.` });
          break;
        case 'maxLength':
          problems.push({ rule, message: `must be at most ${error.params.limit} characters.` });
          break;
        case 'minimum':
        case 'maximum':
          problems.push({ rule, message: `must be ${range(rule.schema)}.` });
          break;
        default:
          problems.push({ rule, message: `is not valid (${error.message}).` });
      }
    }
    const first = problems.sort((a, b) => this.rules.indexOf(a.rule) - this.rules.indexOf(b.rule))[0];
    if (!first) return badRequest('invalid_configuration', 'configuration is not valid.');
    // A value is named as it was sent (an alias, maybe); a missing field by its own name.
    return configurationError(given.get(first.rule.name)?.key ?? first.rule.name, first.message);
  }

  /**
   * A stored configuration under the fields' own names: each alias key renamed to its field (the field's
   * own key wins when both are there), everything else as it is, nothing checked. For configurations
   * saved under names that are aliases since (MySQL's `database`, `username`, `password`), before their
   * sealed secrets are opened or shown.
   */
  canonicalNames(stored: Readonly<Record<string, unknown>>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(stored)) {
      const name = this.names.get(key) ?? key;
      if (name === key || !Object.hasOwn(stored, name)) out[name] = value;
    }
    return out;
  }

  /**
   * The schema as a client writes a configuration, for the OpenAPI document: required are only the
   * fields without a default.
   */
  inputSchema(): TObject {
    const properties: TProperties = {};
    for (const rule of this.rules) {
      properties[rule.name] = rule.required ? rule.schema : Type.Optional(rule.schema);
    }
    return configSchema(properties);
  }
}

/**
 * The Connector the registry holds for an engine typed by `schema`: every configuration that reaches
 * the engine has passed `schema` (the check narrows it to `Static<S>`), whether it comes from a client,
 * from the store (where an older configuration may lack a field that has a default since) or from a test.
 */
export function defineConnector<S extends TObject>(schema: S, engine: Engine<Static<S>>): Connector {
  const spec = new ConfigSpec(schema);
  const targetOf =
    (target: (config: Static<S>) => EgressTarget) =>
    (input: ConnectorConfig): EgressTarget =>
      target(spec.parse(input));
  return {
    type: engine.type,
    name: engine.name,
    capabilities: engine.capabilities,
    configSchema: spec.inputSchema(),
    configFields: spec.fields,
    parseConfig: (input: unknown) => spec.parse(input),
    canonicalNames: (stored) => spec.canonicalNames(stored),
    ...(engine.target ? { target: targetOf(engine.target) } : {}),
    validateConfig(input: ConnectorConfig, context: ConnectorContext): ConnectorConfig {
      const config = spec.parse(input);
      engine.checkConfig?.(config, context);
      return config;
    },
    test: async (input, context) =>
      engine.test(
        checkedAtOpen(() => spec.parse(input)),
        context,
      ),
    stream: async (input, sql, parameters, options, context) =>
      engine.stream(
        checkedAtOpen(() => spec.parse(input)),
        sql,
        parameters,
        options,
        context,
      ),
  };
}
