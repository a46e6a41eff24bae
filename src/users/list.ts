import type { Knex } from 'knex';

/**
 * The users list at a million rows (issue 14): every page walks an index, and the total is read from
 * counters the database keeps (migration 20261213100000), not counted.
 *
 * - Sorting: `ORDER BY col, id` on an index of (col, id). NULLs come last in both orders: the non-NULL
 *   rows are one index range and the NULL rows another (`col IS NULL ORDER BY id`), read one after the other.
 * - Paging: `offset` skips entries of those index ranges, selecting ids only (an index-only walk), from
 *   the nearer end of the list, then reads the page's rows by id. A cursor (`after`) seeks instead: the
 *   ties of its value after its id (`col = v AND id > i`), then the values after its own (`col > v`).
 * - Search: `q` of 3 or more characters is a substring of the username, name or email, found through a
 *   trigram index (SQLite FTS5, PostgreSQL pg_trgm); shorter, it is a prefix of the username.
 * - Total: the sum of `user_counts` rows for the role, enabled and organisation filters; with `q` or `id`
 *   it is a count of the matching rows (through the same indexes: its cost grows with the matches).
 */

type Db = Knex | Knex.Transaction;

/** Columns a list may be sorted by, keyed by their API names. */
export const SORT_COLUMNS = {
  id: 'id',
  username: 'username_key',
  name: 'name',
  email: 'email_key',
  role: 'role',
  createdAt: 'created_at',
  lastActiveAt: 'last_active_at',
} as const;
export type SortField = keyof typeof SORT_COLUMNS;

/**
 * What paging needs to know of each sort column: its values' type (a cursor's value is checked against it),
 * whether it holds NULLs (they come last in both orders), and whether it is unique (no `id` tie-breaker).
 * Each has an index ending in `id` (migration 20261213100000), or is unique.
 */
export const SORT_KINDS: Record<SortField, { type: 'int' | 'text'; nullable: boolean; unique: boolean }> = {
  id: { type: 'int', nullable: false, unique: true },
  username: { type: 'text', nullable: false, unique: true },
  name: { type: 'text', nullable: true, unique: false },
  email: { type: 'text', nullable: true, unique: true },
  role: { type: 'text', nullable: false, unique: false },
  createdAt: { type: 'int', nullable: false, unique: false },
  lastActiveAt: { type: 'int', nullable: true, unique: false },
};

/** Where a cursor page starts: after the row with this sort value and id. */
export interface Cursor {
  value: string | number | null;
  id: number;
}

export interface ListQuery {
  offset: number;
  limit: number;
  sort: SortField;
  order: 'asc' | 'desc';
  /** Keyset paging: the rows after this one (instead of `offset`). */
  after?: Cursor;
  q?: string;
  role?: string;
  active?: boolean;
  /** Only these users. */
  ids?: number[];
  /** Only members of this organisation (an org admin's list, or the `organizationId` filter). */
  orgId?: number;
}

/** The text `?q=` searches on PostgreSQL: the expression of the `users_search_trgm` index (migration 20261213100000). */
const PG_SEARCH_DOC = "(username_key || E'\\n' || coalesce(lower(name), '') || E'\\n' || coalesce(email_key, ''))";
/** Above every character: `key < prefix + TOP` ends a prefix range. */
const TOP = '\u{10FFFF}';

const isPg = (db: Db) => db.client.config.client === 'pg';
const likeEscape = (q: string) => q.replace(/[\\%_]/g, (c) => `\\${c}`);

/** One FTS5 phrase: its trigrams in a row, in one column, is the substring (case-folded). */
const ftsPhrase = (text: string) => `"${text.replaceAll('"', '""')}"`;

/** Substring search needs three characters: a trigram index has nothing to look up for fewer. */
export const SEARCH_MIN = 3;

function filters(q: ListQuery, pg: boolean) {
  return (b: Knex.QueryBuilder) => {
    if (q.ids !== undefined) b.whereIn('id', q.ids);
    if (q.orgId !== undefined) b.where('org_id', q.orgId);
    if (q.role !== undefined) b.where('role', q.role);
    if (q.active !== undefined) b.where('active', q.active);
    if (!q.q) return;
    const text = q.q.toLowerCase();
    if ([...text].length < SEARCH_MIN) {
      b.where('username_key', '>=', text).where('username_key', '<', text + TOP);
      // PostgreSQL compares by collation: the range finds them, LIKE keeps exactly the prefix.
      if (pg) b.whereRaw("username_key LIKE ? ESCAPE '\\'", [`${likeEscape(text)}%`]);
    } else if (pg) {
      b.whereRaw(`${PG_SEARCH_DOC} LIKE ? ESCAPE '\\'`, [`%${likeEscape(text)}%`]);
    } else {
      b.whereRaw('id IN (SELECT rowid FROM users_search WHERE users_search MATCH ?)', [ftsPhrase(text)]);
    }
  };
}

/** X-Total-Count: counters for the dimensions they keep, else a count of the matches. */
async function total(db: Db, q: ListQuery, pg: boolean): Promise<number> {
  const n = (row: { n?: number | string | null } | undefined) => Number(row?.n ?? 0);
  const filtered = q.ids !== undefined || q.orgId !== undefined || q.role !== undefined || q.active !== undefined;
  if (q.q && !pg && !filtered && [...q.q].length >= SEARCH_MIN) {
    // The FTS index counts its own matches, without visiting each user's row.
    const rows = (await db.raw('SELECT count(*) AS n FROM users_search WHERE users_search MATCH ?', [ftsPhrase(q.q.toLowerCase())])) as { n: number }[];
    return n(rows[0]);
  }
  if (q.q || q.ids !== undefined) return n(await db('users').modify(filters(q, pg)).count({ n: '*' }).first());
  const sum = db('user_counts').sum({ n: 'n' });
  if (q.orgId !== undefined) sum.where('org_key', q.orgId);
  if (q.role !== undefined) sum.where('role', q.role);
  if (q.active !== undefined) sum.where('active', q.active);
  return n(await sum.first());
}

/** A run of rows in one index's order: the sort column's values, or its NULLs (by id). */
interface Segment {
  query: () => Knex.QueryBuilder;
  /** The columns it is ordered by, in the list's order or reversed. */
  keys: string[];
}

/** The list's segments in its order, from the cursor when there is one. */
function segments(db: Db, q: ListQuery, pg: boolean): Segment[] {
  const kind = SORT_KINDS[q.sort];
  const col = SORT_COLUMNS[q.sort];
  const cmp = q.order === 'desc' ? '<' : '>';
  const after = q.after;
  const base = () => db('users').modify(filters(q, pg));
  const keys = col === 'id' ? ['id'] : kind.unique ? [col] : [col, 'id'];
  let values: Segment[];
  if (!after) values = [{ keys, query: () => base().modify((b) => (kind.nullable ? b.whereNotNull(col) : b)) }];
  else if (kind.unique) values = [{ keys, query: () => base().where(col, cmp, after.value ?? after.id) }];
  else {
    // Not `(col, id) > (v, i)`: SQLite would seek on col alone and step through every tie. The ties after the
    // cursor, then the values after its own: two seeks.
    values = [
      { keys: ['id'], query: () => base().where(col, after.value).where('id', cmp, after.id) },
      { keys, query: () => base().where(col, cmp, after.value) },
    ];
  }
  if (!kind.nullable) return values;
  const nulls: Segment = {
    // By (col, id), col being NULL throughout: the order of the (col, id) index, which PostgreSQL then walks
    // rather than the primary key filtered.
    keys: [col, 'id'],
    query: () =>
      base()
        .whereNull(col)
        .modify((b) => {
          if (after && after.value === null) b.where('id', cmp, after.id);
        }),
  };
  // A cursor in the NULLs has left the values behind.
  return after && after.value === null ? [nulls] : [...values, nulls];
}

/** `want` ids from `skip` on, walking the segments in `order`: ids only, so an index alone answers. */
async function walk(parts: Segment[], order: 'asc' | 'desc', skip: number, want: number): Promise<number[]> {
  const found: number[] = [];
  for (const part of parts) {
    if (found.length >= want) break;
    const rows = (await part
      .query()
      .select('id')
      .modify((b) => {
        for (const key of part.keys) b.orderBy(key, order);
      })
      .offset(skip)
      .limit(want - found.length)) as { id: number | string }[];
    found.push(...rows.map((r) => Number(r.id)));
    if (found.length < want && skip > 0) {
      if (rows.length > 0) skip = 0;
      else {
        // The offset is past this segment: how far past needs its length.
        const row = (await part.query().count({ n: '*' }).first()) as { n: number | string } | undefined;
        skip = Math.max(0, skip - Number(row?.n ?? 0));
      }
    }
  }
  return found;
}

/**
 * The page's ids in order, and whether a next page exists. An offset past the middle walks from the other
 * end (the total says where it is): a page at 90% skips 10% of the index, not 90%.
 */
async function pageIds(db: Db, q: ListQuery, pg: boolean, total: number | undefined): Promise<{ ids: number[]; more: boolean }> {
  const parts = segments(db, q, pg);
  if (total !== undefined && !q.after) {
    const end = Math.min(total, q.offset + q.limit);
    if (q.offset >= total) return { ids: [], more: false };
    if (total - end < q.offset) {
      const reversed = [...parts].reverse();
      const ids = await walk(reversed, q.order === 'asc' ? 'desc' : 'asc', total - end, end - q.offset);
      return { ids: ids.reverse(), more: end < total };
    }
  }
  const ids = await walk(parts, q.order, q.offset, q.limit + 1);
  return { ids: ids.slice(0, q.limit), more: ids.length > q.limit };
}

/** One page of rows, the total, and the cursor of the next page when there is one. */
export async function listRows<Row extends { id: number | string }>(db: Db, q: ListQuery): Promise<{ rows: Row[]; total: number; next?: Cursor }> {
  const pg = isPg(db);
  let count: number;
  let page: { ids: number[]; more: boolean };
  if (q.offset > 0) {
    // A deep page may be nearer the end: the total first, to know.
    count = await total(db, q, pg);
    page = await pageIds(db, q, pg, count);
  } else {
    [page, count] = await Promise.all([pageIds(db, q, pg, undefined), total(db, q, pg)]);
  }
  const byId = new Map<number, Row>();
  if (page.ids.length > 0) for (const row of (await db('users').whereIn('id', page.ids).select('*')) as Row[]) byId.set(Number(row.id), row);
  const rows = page.ids.map((id) => byId.get(id)).filter((r): r is Row => r !== undefined);
  const last = rows.at(-1) as (Row & Record<string, unknown>) | undefined;
  if (!page.more || !last) return { rows, total: count };
  const raw = last[SORT_COLUMNS[q.sort]] as string | number | null;
  const value = raw === null || SORT_KINDS[q.sort].type === 'text' ? raw : Number(raw);
  return { rows, total: count, next: { value, id: Number(last.id) } };
}
