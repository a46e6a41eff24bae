import { z } from 'zod';
import { Errors, invalidField } from '../errors.js';

/** Parses with a zod schema; the first problem becomes a 400 naming the field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join('.') : what;
  if (issue.code === 'unrecognized_keys') return failUnknown(issue.keys);
  throw invalidField(field, issue.message);
}

function failUnknown(keys: string[]): never {
  throw invalidField(keys.join(', '), 'unknown field');
}

/** The request body as a JSON object, or a 400. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) throw Errors.invalidInput('body: a JSON object is required');
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw Errors.invalidInput('body: must be a JSON object');
  return body as Record<string, unknown>;
}
