import { z } from 'zod';
import { invalidField } from '../errors.js';
import { rowIdProblem } from '../ids.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { SEARCH_MIN, SORT_COLUMNS, type Cursor, type ListQuery, type SortField } from './list.js';

export const DEFAULT_LIMIT = 50;
/** react-admin asks for 1000 rows (its prev/next buttons and its export). */
export const MAX_LIMIT = 1000;
/** At most this many `id` values in one list (react-admin's `getMany`). */
export const MAX_IDS = 1000;

// eslint-disable-next-line no-control-regex -- PostgreSQL refuses a NUL in text; no name holds a control character
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Navidrome's and others' names for the same sort fields. */
const SORT_ALIASES: Record<string, SortField> = { userName: 'username', lastAccessAt: 'lastActiveAt' };

function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidField(name, 'must be given once, as a plain value');
  return value;
}

function nonNegative(name: string, raw: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw invalidField(name, 'must be a non-negative integer');
  return Number(raw);
}

/**
 * The `id` filter: one value or repeated (`id=9&id=61`, react-admin's getMany), each a positive integer;
 * duplicates count once. The endpoint reads every pair of the raw query string (qs keeps only 20 array items).
 */
function idFilter(values: string | string[] | undefined): number[] | undefined {
  if (values === undefined) return undefined;
  const list = typeof values === 'string' ? [values] : values;
  if (list.length > MAX_IDS) throw invalidField('id', `must be given at most ${MAX_IDS} times`);
  const ids = new Set<number>();
  for (const value of list) {
    const problem = rowIdProblem(value);
    if (problem) throw invalidField('id', problem);
    ids.add(Number(value));
  }
  return [...ids];
}

/**
 * Reads `offset`/`after`/`limit`/`sort`/`order`/`q`/`role`/`active`/`id`, and Navidrome's `_start`/`_end`/`_sort`/`_order`.
 * A value outside an allow-list is a 400, never silently replaced; parameters it does not know are ignored.
 */
export function parseListQuery(query: Record<string, unknown>): ListQuery {
  const offsetName = query.offset !== undefined ? 'offset' : '_start';
  const offsetRaw = single(query, offsetName);
  const offset = offsetRaw === undefined ? 0 : nonNegative(offsetName, offsetRaw);

  const ids = idFilter(query.id as string | string[] | undefined);
  // react-admin's getMany sends the ids and no page: all of them come back.
  let limit = ids === undefined ? DEFAULT_LIMIT : ids.length;
  const limitRaw = single(query, 'limit');
  const endRaw = single(query, '_end');
  if (limitRaw !== undefined) {
    if (!/^\d{1,9}$/.test(limitRaw)) throw invalidField('limit', `must be an integer 1-${MAX_LIMIT}`);
    limit = Number(limitRaw);
    if (limit < 1 || limit > MAX_LIMIT) throw invalidField('limit', `must be an integer 1-${MAX_LIMIT}`);
  } else if (endRaw !== undefined) {
    const end = nonNegative('_end', endRaw);
    limit = end - offset;
    if (limit < 1 || limit > MAX_LIMIT) throw invalidField('_end', `must be 1-${MAX_LIMIT} more than _start`);
  }

  const sortRaw = single(query, 'sort') ?? single(query, '_sort');
  let sort: SortField = 'id';
  if (sortRaw !== undefined) {
    const candidate = SORT_ALIASES[sortRaw] ?? sortRaw;
    if (!Object.hasOwn(SORT_COLUMNS, candidate)) {
      throw invalidField('sort', `must be one of ${Object.keys(SORT_COLUMNS).join(', ')}`);
    }
    sort = candidate as SortField;
  }

  const orderRaw = single(query, 'order') ?? single(query, '_order');
  let order: 'asc' | 'desc' = 'asc';
  if (orderRaw !== undefined) {
    const lower = orderRaw.toLowerCase();
    if (lower !== 'asc' && lower !== 'desc') throw invalidField('order', 'must be asc or desc');
    order = lower;
  }

  const result: ListQuery = { offset, limit, sort, order };
  const after = single(query, 'after');
  if (after !== undefined) {
    if (offset > 0) throw invalidField('after', `cannot be combined with ${offsetName}`);
    result.after = decodeCursor(after, sort, order);
  }
  if (ids !== undefined) result.ids = ids;
  const q = single(query, 'q');
  if (q !== undefined && q !== '') {
    if (q.length > 256) throw invalidField('q', 'must be at most 256 characters');
    if (CONTROL.test(q)) throw invalidField('q', 'must not hold control characters');
    result.q = q.normalize('NFKC').trim();
  }
  const role = single(query, 'role');
  if (role !== undefined) {
    if (CONTROL.test(role)) throw invalidField('role', 'must not hold control characters');
    result.role = role;
  }
  const active = single(query, 'active');
  if (active !== undefined) {
    if (!['true', 'false', '1', '0'].includes(active)) throw invalidField('active', 'must be true or false');
    result.active = active === 'true' || active === '1';
  }
  return result;
}

const once = (description: string) => z.string({ error: 'must be given once, as a plain value' }).optional().meta({ description });

/** The list's query parameters, as the API document shows them; parsed by `parseListQuery`. */
export const listQuerySchema = z
  .object({
    offset: once('Rows to skip (default 0). A deep offset walks an index; `after` is faster.'),
    after: once('Opaque cursor from the `Link: <…>; rel="next"` header of the previous page: the rows after its last one. Needs the same sort and order; not with offset.'),
    limit: once(`Rows to return, 1-${MAX_LIMIT} (default ${DEFAULT_LIMIT}).`),
    _start: once('Navidrome/react-admin spelling of offset.'),
    _end: once('react-admin: the row after the last one wanted (limit = _end - _start).'),
    sort: once(`One of ${Object.keys(SORT_COLUMNS).join(', ')} (also userName, lastAccessAt).`),
    _sort: once('Navidrome/react-admin spelling of sort.'),
    order: once('asc or desc.'),
    _order: once('Navidrome/react-admin spelling of order.'),
    q: once(
      `Search, case-insensitive (at most 256 characters): from ${SEARCH_MIN} characters, text found anywhere in the username, name or email; shorter, the start of the username.`,
    ),
    role: once('Only users of this role.'),
    active: once('true or false: only enabled or disabled users.'),
    id: z
      .union([z.string(), z.array(z.string())])
      .optional()
      .meta({ description: `Only these ids (repeat the parameter; at most ${MAX_IDS}).` }),
  })
  .transform((query) => parseListQuery(query));

/**
 * The `Link` header's next page: this request's filters and sort with `after` set to the page's last row
 * (and no offset). Relative to the server, as the request was.
 */
export function nextLink(originalUrl: string, query: ListQuery, next: Cursor): string {
  const url = new URL(originalUrl, 'http://usher.invalid');
  for (const name of ['offset', '_start', '_end', 'after']) url.searchParams.delete(name);
  url.searchParams.set('limit', String(query.limit));
  url.searchParams.set('after', encodeCursor(query.sort, query.order, next));
  return `<${url.pathname}${url.search}>; rel="next"`;
}
