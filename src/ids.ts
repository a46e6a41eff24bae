import { z } from 'zod';

/** The largest row id: both databases store ids as 32-bit integers, and PostgreSQL refuses a larger value. */
export const MAX_ROW_ID = 2_147_483_647;

/** What is wrong with `raw` as a row id (a positive integer up to MAX_ROW_ID), or undefined. */
export function rowIdProblem(raw: string): string | undefined {
  if (!/^[1-9]\d{0,15}$/.test(raw)) return 'must be a positive integer';
  if (Number(raw) > MAX_ROW_ID) return `must be at most ${MAX_ROW_ID}`;
  return undefined;
}

/** A row id in a path: the string as given, checked, as a number. */
export const rowId = (description: string) =>
  z
    .string()
    .regex(/^[1-9]\d{0,15}$/, 'must be a positive integer')
    .refine((raw) => rowIdProblem(raw) === undefined, `must be at most ${MAX_ROW_ID}`)
    .transform(Number)
    .meta({ description });
