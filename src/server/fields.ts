/**
 * Reading the fields of a request body: each API says in its own terms (see FieldRules) what is
 * wrong with a field that is missing, of the wrong JSON type, or out of bounds.
 */
import { ApiError } from './errors.js';

export type Body = Record<string, unknown>;

/** How an API reports a field that is missing, of the wrong type, or out of its bounds. */
export interface FieldRules {
  missing(field: string): ApiError;
  wrongType(field: string, expected: string, value: unknown): ApiError;
  outOfBounds(field: string, constraint: string): ApiError;
}

/** The body of a request as a JSON object; `{}` for an empty body. */
export function parseBody(text: string, invalid: (message: string) => ApiError): Body {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalid(
      `the request body must be a JSON object, not ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
    );
  return value as Body;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** Bytes of `text` in UTF-8 (AWS's payload limits count bytes). */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** The fields of one request body, each read with its type and bounds checked. */
export class Fields {
  constructor(
    /** The request body as received (a request shape passed on whole reads it). */
    readonly body: Body,
    private readonly rules: FieldRules,
  ) {}

  /** Whether the body has the field (null counts as absent, as AWS's services read it). */
  has(field: string): boolean {
    return this.body[field] !== undefined && this.body[field] !== null;
  }

  raw(field: string): unknown {
    return this.body[field] ?? undefined;
  }

  string(
    field: string,
    bounds: { min?: number; max?: number; bytes?: boolean } = {},
  ): string | undefined {
    const value = this.raw(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw this.rules.wrongType(field, 'a string', value);
    const length = bounds.bytes ? utf8Bytes(value) : value.length;
    if (bounds.min !== undefined && length < bounds.min)
      throw this.rules.outOfBounds(
        field,
        `Member must have length greater than or equal to ${bounds.min}`,
      );
    if (bounds.max !== undefined && length > bounds.max)
      throw this.rules.outOfBounds(
        field,
        `Member must have length less than or equal to ${bounds.max}`,
      );
    return value;
  }

  requiredString(
    field: string,
    bounds: { min?: number; max?: number; bytes?: boolean } = {},
  ): string {
    const value = this.string(field, bounds);
    if (value === undefined) throw this.rules.missing(field);
    return value;
  }

  integer(field: string, bounds: { min?: number; max?: number } = {}): number | undefined {
    const value = this.raw(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value))
      throw this.rules.wrongType(field, 'a whole number', value);
    if (bounds.min !== undefined && value < bounds.min)
      throw this.rules.outOfBounds(
        field,
        `Member must have value greater than or equal to ${bounds.min}`,
      );
    if (bounds.max !== undefined && value > bounds.max)
      throw this.rules.outOfBounds(
        field,
        `Member must have value less than or equal to ${bounds.max}`,
      );
    return value;
  }

  boolean(field: string): boolean | undefined {
    const value = this.raw(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw this.rules.wrongType(field, 'true or false', value);
    return value;
  }

  /** One of `values`. */
  oneOf<T extends string>(field: string, values: readonly T[]): T | undefined {
    const value = this.string(field);
    if (value === undefined) return undefined;
    if (!values.includes(value as T))
      throw this.rules.outOfBounds(
        field,
        `Member must satisfy enum value set: [${values.join(', ')}]`,
      );
    return value as T;
  }

  stringList(field: string, bounds: { max?: number } = {}): string[] | undefined {
    const value = this.raw(field);
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
      throw this.rules.wrongType(field, 'a list of strings', value);
    if (bounds.max !== undefined && value.length > bounds.max)
      throw this.rules.outOfBounds(
        field,
        `Member must have length less than or equal to ${bounds.max}`,
      );
    return value as string[];
  }

  object(field: string): Body | undefined {
    const value = this.raw(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || Array.isArray(value))
      throw this.rules.wrongType(field, 'an object', value);
    return value as Body;
  }

  list(field: string): unknown[] | undefined {
    const value = this.raw(field);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw this.rules.wrongType(field, 'a list', value);
    return value;
  }
}

/** A wrong-type message naming the field, what it should be, and what it was. */
export function wrongTypeMessage(field: string, expected: string, value: unknown): string {
  return `${field} must be ${expected}, not ${typeName(value)} ${JSON.stringify(value)?.slice(0, 80) ?? ''}`.trim();
}
