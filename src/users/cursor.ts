import { invalidField } from '../errors.js';
import { SORT_KINDS, type Cursor, type SortField } from './list.js';

/**
 * `after`: an opaque cursor, base64url of `[sort, order, value, id]` of the last row of a page. It names
 * its sort and order: a cursor made for another one is refused rather than read in the wrong index.
 */
export function encodeCursor(sort: SortField, order: 'asc' | 'desc', at: Cursor): string {
  return Buffer.from(JSON.stringify([sort, order, at.value, at.id])).toString('base64url');
}

const bad = (problem = 'is not a cursor this list made; follow the Link header') => invalidField('after', problem);

export function decodeCursor(raw: string, sort: SortField, order: 'asc' | 'desc'): Cursor {
  if (raw.length > 1500 || !/^[A-Za-z0-9_-]+$/.test(raw)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) throw bad();
  const [s, o, value, id] = parsed as unknown[];
  if (s !== sort || o !== order) throw bad('was made for another sort or order; send the same sort and order with it');
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw bad();
  const kind = SORT_KINDS[sort];
  const fits =
    value === null
      ? kind.nullable || sort === 'id'
      : kind.type === 'int'
        ? typeof value === 'number' && Number.isSafeInteger(value)
        : typeof value === 'string' && value.length <= 320;
  if (!fits) throw bad();
  return { value: value as Cursor['value'], id };
}
