/**
 * How a group of settings is defined once: each setting's kind, range and default sit in one
 * schema object, with its doc comment on the schema's property. The types callers write
 * ({@link SettingsInput}, every field optional) and read ({@link Settings}, every field set)
 * are derived from the schema, and keep those doc comments; {@link resolveSettings} fills the
 * defaults and refuses, with an INVALID_ARGUMENT naming the setting, an unknown name or a bad
 * value. Names put the unit last (`electionTimeoutTicks`, `inflightBytesMax`).
 */
import { fail } from './assert.ts';
import { invalidArgument } from './errors.ts';

export interface IntegerSetting {
  readonly kind: 'integer';
  readonly default: number;
  readonly min: number;
  readonly max: number;
}
export interface BooleanSetting {
  readonly kind: 'boolean';
  readonly default: boolean;
}
export interface ChoiceSetting<T extends string = string> {
  readonly kind: 'choice';
  readonly choices: readonly T[];
  readonly default: T;
}
export type Setting = IntegerSetting | BooleanSetting | ChoiceSetting;
export type SettingsSchema = { readonly [name: string]: Setting };

type ValueOf<S extends Setting> = S extends IntegerSetting ? number : S extends BooleanSetting ? boolean : S extends ChoiceSetting<infer T> ? T : never;

/** Every setting of a group, resolved. */
export type Settings<S extends SettingsSchema> = { readonly [K in keyof S]: ValueOf<S[K]> };
/** What a caller passes: any of the group's settings, the rest take their defaults. */
export type SettingsInput<S extends SettingsSchema> = { readonly [K in keyof S]?: ValueOf<S[K]> };

/** An integer setting in [min, max] (safe integers only). */
export function integer(defaultValue: number, min: number, max: number): IntegerSetting {
  if (!(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= defaultValue && defaultValue <= max && Number.isSafeInteger(defaultValue))) {
    fail(`integer setting default ${defaultValue} in [${min}, ${max}]`);
  }
  return { kind: 'integer', default: defaultValue, min, max };
}

export function boolean(defaultValue: boolean): BooleanSetting {
  return { kind: 'boolean', default: defaultValue };
}

export function choice<const T extends string>(choices: readonly T[], defaultValue: NoInfer<T>): ChoiceSetting<T> {
  return { kind: 'choice', choices, default: defaultValue };
}

/** The defaults of a group. */
export function defaultSettings<S extends SettingsSchema>(schema: S): Settings<S> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(schema)) out[name] = schema[name]!.default;
  return out as Settings<S>;
}

/**
 * `input` checked against `schema`, with defaults for what it leaves out (or sets to
 * undefined). `path` prefixes the names in error messages (`raft.` gives
 * `raft.electionTimeoutTicks`).
 */
export function resolveSettings<S extends SettingsSchema>(schema: S, input: unknown, path = ''): Settings<S> {
  if (input === undefined) return defaultSettings(schema);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidArgument(`${path === '' ? 'options' : path.slice(0, -1)} must be an object, got ${describe(input)}`);
  }
  checkKnown(schema, input, path);
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(schema)) {
    const value = (input as Record<string, unknown>)[name];
    out[name] = value === undefined ? schema[name]!.default : checkValue(schema[name]!, value, path + name);
  }
  return out as Settings<S>;
}

/**
 * Refuses resolved settings whose order is broken: `lower` must be less than `upper`
 * (`'less'`) or at most it (`'at-most'`). The error names both, with `path` and their values.
 */
export function checkOrder<S extends object>(settings: S, path: string, lower: keyof S & string, upper: keyof S & string, relation: 'less' | 'at-most'): void {
  const low = settings[lower] as number;
  const high = settings[upper] as number;
  if (relation === 'less' ? low < high : low <= high) return;
  throw invalidArgument(`${path}${lower} (${low}) must ${relation === 'less' ? 'be less than' : 'not exceed'} ${path}${upper} (${high})`);
}

/** Refuses a name in `input` that `schema` does not define (a misspelled option must not pass silently). */
export function checkKnown(schema: object, input: object, path = '', alsoKnown: readonly string[] = []): void {
  for (const name of Object.keys(input)) {
    if (!Object.hasOwn(schema, name) && !alsoKnown.includes(name)) {
      const known = [...Object.keys(schema), ...alsoKnown].sort();
      throw invalidArgument(`unknown option ${path}${name} (known: ${known.join(', ')})`);
    }
  }
}

function checkValue(setting: Setting, value: unknown, name: string): unknown {
  switch (setting.kind) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < setting.min || value > setting.max) {
        throw invalidArgument(`${name} must be an integer in [${setting.min}, ${setting.max}], got ${describe(value)}`);
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw invalidArgument(`${name} must be true or false, got ${describe(value)}`);
      return value;
    case 'choice':
      if (typeof value !== 'string' || !setting.choices.includes(value)) {
        throw invalidArgument(`${name} must be one of ${setting.choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
      }
      return value;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}
