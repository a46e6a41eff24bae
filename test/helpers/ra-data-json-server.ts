/**
 * The requests react-admin 5's `ra-data-json-server` data provider makes, with `fetchUtils.fetchJson` as its
 * HTTP client, written out by hand from their sources (marmelab/react-admin,
 * packages/ra-data-json-server/src/index.ts and packages/ra-core/src/dataProvider/fetch.ts):
 * - query strings as `query-string`'s `stringify` writes them: keys sorted, arrays as repeated keys;
 * - `Accept: application/json` on every call, `Content-Type: application/json` on every call but GET;
 * - a status outside 200-299 rejects with the status and the parsed body;
 * - `getList` needs `X-Total-Count`; `update`, `delete`, `updateMany` and `deleteMany` read the answer's `id`.
 * The only setting added is the `X-Api-Key` header, as the issue says.
 */

/** What `fetchJson` rejects with (ra-core's HttpError). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

type Value = string | number | boolean | undefined | (string | number)[];

/** `query-string`'s stringify with its defaults: sorted keys, repeated keys for arrays, undefined left out. */
function stringify(query: Record<string, Value>): string {
  const encode = (v: string | number | boolean) =>
    encodeURIComponent(String(v)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return Object.keys(query)
    .sort()
    .flatMap((key) => {
      const value = query[key];
      if (value === undefined) return [];
      const values = Array.isArray(value) ? value : [value];
      return values.map((v) => `${encode(key)}=${encode(v)}`);
    })
    .join('&');
}

export interface Answer {
  status: number;
  headers: Headers;
  json: any;
}

function fetchJson(apiKey: string) {
  return async (url: string, options: { method?: string; body?: string } = {}): Promise<Answer> => {
    const headers = new Headers({ Accept: 'application/json' });
    if (options.method !== undefined && options.method !== 'GET') headers.set('Content-Type', 'application/json');
    headers.set('X-Api-Key', apiKey);
    const res = await fetch(url, { ...options, headers });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // fetchJson: not JSON, no matter.
    }
    if (res.status < 200 || res.status >= 300) throw new HttpError(res.status, json);
    return { status: res.status, headers: res.headers, json };
  };
}

export interface ListParams {
  pagination: { page: number; perPage: number };
  sort: { field: string; order: 'ASC' | 'DESC' };
  filter?: Record<string, string | number | boolean>;
}

type Id = string | number;
type Data = Record<string, unknown>;

/** The data provider, with the default HTTP client and an `X-Api-Key` header. */
export function jsonServerProvider(apiUrl: string, apiKey: string) {
  const http = fetchJson(apiKey);
  return {
    async getList(resource: string, { pagination: { page, perPage }, sort, filter = {} }: ListParams) {
      const query = { ...filter, _sort: sort.field, _order: sort.order, _start: (page - 1) * perPage, _end: page * perPage };
      const { headers, json } = await http(`${apiUrl}/${resource}?${stringify(query)}`);
      const total = headers.get('x-total-count');
      if (total === null) throw new Error('The X-Total-Count header is missing in the HTTP Response.');
      return { data: json as Data[], total: parseInt(total.split('/').pop()!, 10) };
    },
    async getOne(resource: string, { id }: { id: Id }) {
      return { data: (await http(`${apiUrl}/${resource}/${id}`)).json as Data };
    },
    async getMany(resource: string, { ids }: { ids: Id[] }) {
      return { data: (await http(`${apiUrl}/${resource}?${stringify({ id: ids })}`)).json as Data[] };
    },
    async create(resource: string, { data }: { data: Data }) {
      const { json } = await http(`${apiUrl}/${resource}`, { method: 'POST', body: JSON.stringify(data) });
      return { data: { ...data, id: json.id } };
    },
    async update(resource: string, { id, data }: { id: Id; data: Data; previousData?: Data }) {
      return { data: (await http(`${apiUrl}/${resource}/${id}`, { method: 'PUT', body: JSON.stringify(data) })).json as Data };
    },
    async updateMany(resource: string, { ids, data }: { ids: Id[]; data: Data }) {
      const answers = await Promise.all(ids.map((id) => http(`${apiUrl}/${resource}/${id}`, { method: 'PUT', body: JSON.stringify(data) })));
      return { data: answers.map(({ json }) => json.id as Id) };
    },
    async delete(resource: string, { id }: { id: Id }) {
      return { data: (await http(`${apiUrl}/${resource}/${id}`, { method: 'DELETE' })).json as Data };
    },
    async deleteMany(resource: string, { ids }: { ids: Id[] }) {
      const answers = await Promise.all(ids.map((id) => http(`${apiUrl}/${resource}/${id}`, { method: 'DELETE' })));
      return { data: answers.map(({ json }) => json.id as Id) };
    },
  };
}

export type DataProvider = ReturnType<typeof jsonServerProvider>;
