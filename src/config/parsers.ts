import { normalizeUsername, usernameProblem } from '../names.js';
import { compileTrustedProxies } from './trusted-proxies.js';
import { LOG_LEVELS, type LogLevel } from './schema.js';

/** The parsers every option uses, in the main table and in each oidc.providers entry: one way to read a value. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };
export type Parser<T> = (raw: unknown) => Parsed<T>;

/** What a table row ({ parse, fallback }) reads: the parser's value, or the fallback where the parser answers undefined. */
export type ValueOf<O> = O extends { parse: Parser<infer T>; fallback: infer F } ? Exclude<T, undefined> | F : never;

const show = (raw: unknown): string => JSON.stringify(typeof raw === 'string' ? raw : (raw ?? null));
export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const bad = (problem: string, raw: unknown): Parsed<never> => ({ ok: false, problem: `${problem}, got ${show(raw)}` });

export function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    const text = typeof raw === 'number' ? String(raw) : raw;
    if (typeof text === 'string' && /^\d+$/.test(text.trim())) {
      const n = Number(text.trim());
      if (n >= min && n <= max) return ok(n);
    }
    return bad(`must be an integer ${min}-${max}`, raw);
  };
}

export function text(opts: { minLength?: number; maxLength?: number; what?: string } = {}): Parser<string | undefined> {
  return (raw) => {
    if (raw === undefined || raw === null || raw === '') return ok(undefined);
    if (typeof raw !== 'string' && typeof raw !== 'number') return bad('must be a string', raw);
    const s = String(raw);
    if (opts.minLength && s.length < opts.minLength) {
      return { ok: false, problem: `must be at least ${opts.minLength} characters${opts.what ? ` (${opts.what})` : ''}` };
    }
    if (opts.maxLength && s.length > opts.maxLength) return { ok: false, problem: `must be at most ${opts.maxLength} characters` };
    return ok(s);
  };
}

export const secretText = (minLength: number, maxLength: number, what: string): Parser<string | undefined> => (raw) => {
  const r = text({ minLength, maxLength, what })(raw);
  // Never echo a secret back in an error message.
  return r.ok ? r : { ok: false, problem: r.problem.replace(/, got .*$/, '') };
};

export const databaseUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  if (/^postgres(ql)?:\/\//.test(r.value)) {
    try {
      new URL(r.value);
      return r;
    } catch {
      return { ok: false, problem: 'must be a valid postgres:// URL' };
    }
  }
  return { ok: false, problem: 'must be a postgres:// or postgresql:// URL (leave it unset for the SQLite file in the data dir)' };
};

export const schemaName: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  return /^[a-z_][a-z0-9_]{0,62}$/.test(r.value) ? r : bad('must be a lower-case SQL identifier', raw);
};

/** A list given as a YAML sequence or a comma-separated string. */
export function listOf(raw: unknown): string[] | null {
  if (Array.isArray(raw)) return raw.every((x) => typeof x === 'string') ? raw.map((x) => x.trim()).filter(Boolean) : null;
  if (typeof raw === 'string') return raw.split(',').map((x) => x.trim()).filter(Boolean);
  return null;
}

/** Addresses or CIDR ranges, IPv4 and IPv6, checked the way Express will use them. */
export const cidrList: Parser<readonly string[]> = (raw) => {
  const list = listOf(raw);
  if (list === null) return bad('must be a list of IP addresses or CIDR ranges', raw);
  for (const entry of list) {
    try {
      compileTrustedProxies([entry]);
    } catch {
      return bad(`must be IP addresses or CIDR ranges (such as 10.0.0.0/8 or ::1); ${JSON.stringify(entry)} is not one`, raw);
    }
  }
  return ok(Object.freeze(list));
};

export const publicUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash && !url.username) {
      return ok(url.origin + url.pathname.replace(/\/+$/, ''));
    }
  } catch {
    // fall through
  }
  return bad('must be an http(s) URL without query, fragment or credentials, such as https://auth.example.com', raw);
};

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration in the largest unit that writes it exactly: 120000 -> "2m", 7 days -> "7d". */
function spoken(ms: number): string {
  const unit = ms === 0 ? 's' : ((['d', 'h', 'm', 's'] as const).find((u) => ms % UNIT_MS[u]! === 0) ?? 'ms');
  return `${ms / UNIT_MS[unit]!}${unit}`;
}

/** A duration: seconds as a number, or a number with a unit ms, s, m, h or d ("30d", "250ms"). Answers milliseconds. */
export function duration(minMs: number, maxMs: number): Parser<number> {
  return (raw) => {
    const match = /^(\d{1,9})\s*(ms|[smhd]?)$/.exec(typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '');
    if (match) {
      const ms = Number(match[1]) * UNIT_MS[match[2] || 's']!;
      if (ms >= minMs && ms <= maxMs) return ok(ms);
    }
    return bad(`must be a duration such as 90s, 15m, 12h or 30d (a bare number is seconds), from ${spoken(minMs)} to ${spoken(maxMs)}`, raw);
  };
}

export const redisUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if (url.protocol === 'redis:' || url.protocol === 'rediss:') return r;
  } catch {
    // fall through
  }
  // The URL may hold a password: never echo it.
  return { ok: false, problem: 'must be a redis:// or rediss:// URL' };
};

export const keyPrefix: Parser<string> = (raw) =>
  typeof raw === 'string' && /^[A-Za-z0-9:_.-]{1,64}$/.test(raw) ? ok(raw) : bad('must be 1-64 of A-Z a-z 0-9 : _ . -', raw);

export const boolean: Parser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return ok(raw);
  const word = typeof raw === 'string' ? raw.trim().toLowerCase() : typeof raw === 'number' ? String(raw) : '';
  if (['true', 'on', 'yes', '1'].includes(word)) return ok(true);
  if (['false', 'off', 'no', '0'].includes(word)) return ok(false);
  return bad('must be true or false (on/off, yes/no, 1/0)', raw);
};

export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => (typeof raw === 'string' && (values as readonly string[]).includes(raw) ? ok(raw as T) : bad(`must be one of ${values.join('|')}`, raw));
}

/** RFC 9110 token: what a header name may hold. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Header names, as a YAML sequence or comma-separated; the first one a request carries is used. */
export const headerNames: Parser<readonly string[] | undefined> = (raw) => {
  const list = listOf(raw);
  if (list === null || list.length === 0 || !list.every((h) => HEADER_NAME.test(h))) return bad('must be HTTP header names (letters, digits, -)', raw);
  return ok(Object.freeze(list));
};

export const headerName: Parser<string | undefined> = (raw) =>
  typeof raw === 'string' && HEADER_NAME.test(raw.trim()) ? ok(raw.trim()) : bad('must be an HTTP header name (letters, digits, -)', raw);

export const separator: Parser<string | undefined> = (raw) =>
  typeof raw === 'string' && raw.length >= 1 && raw.length <= 8 ? ok(raw) : bad('must be 1-8 characters', raw);

/** Group names: a YAML sequence (names may then hold commas) or a comma-separated string. */
export const groupList: Parser<readonly string[]> = (raw) => {
  const list = listOf(raw);
  return list === null ? bad('must be a list of group names', raw) : ok(Object.freeze(list));
};

/** An absolute http(s) URL without credentials or fragment; a query is kept. */
export const absoluteUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.hash && !url.username && !url.password) return ok(url.href);
  } catch {
    // fall through
  }
  return bad('must be an absolute http(s) URL without fragment or credentials, such as https://auth.example.com/login', raw);
};

/** A link a phone or browser opens: any scheme but the ones that run or embed content (an app's `myapp://connect`, or https). */
export const linkUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if (!['javascript:', 'data:', 'vbscript:', 'file:', 'blob:'].includes(url.protocol) && !url.username && !url.password) return ok(url.href);
  } catch {
    // fall through
  }
  return bad('must be an absolute URL without credentials, such as https://player.example.com or myapp://connect', raw);
};

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}$/;

/** Host names; ".example.com" and "example.com" both mean example.com and every name under it. */
export const domainList: Parser<readonly string[]> = (raw) => {
  const list = listOf(raw)?.map((d) => d.toLowerCase().replace(/^\*?\./, ''));
  if (!list || !list.every((d) => HOSTNAME.test(d))) return bad('must be a list of host names, such as example.com', raw);
  return ok(Object.freeze(list));
};

/** A domain for the session cookie: a host name with at least one dot (browsers refuse a top-level one), no address. */
export const cookieDomain: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  const domain = r.value.trim().toLowerCase().replace(/^\./, '');
  if (HOSTNAME.test(domain) && domain.includes('.') && !/^[\d.]+$/.test(domain)) return ok(domain);
  return bad('must be a domain name such as example.com (the cookie then reaches every host under it)', raw);
};

/** Hosts under `domain` (or `domain` itself): where a cookie with that Domain is sent. */
export const covers = (domain: string, host: string) => host === domain || host.endsWith(`.${domain}`);

export const logLevel: Parser<LogLevel> = (raw) =>
  typeof raw === 'string' && (LOG_LEVELS as readonly string[]).includes(raw)
    ? ok(raw as LogLevel)
    : bad(`must be one of ${LOG_LEVELS.join('|')}`, raw);

export const username: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  const problem = usernameProblem(normalizeUsername(r.value));
  return problem ? bad(problem, raw) : r;
};

/** `host:port` (an IPv6 host in brackets: `[::1]:9464`); port 0 lets the system pick a free one. */
export const listenAddress: Parser<{ readonly host: string; readonly port: number } | undefined> = (raw) => {
  const r = text({ maxLength: 300 })(raw);
  if (!r.ok) return r;
  if (r.value === undefined) return ok(undefined);
  const match = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+)):(\d{1,5})$/i.exec(r.value.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) return bad('must be host:port, such as 127.0.0.1:9464', raw);
  return ok(Object.freeze({ host: match[1] ?? match[2]!, port }));
};

/** A permission the host app declares: `object.action` (or `object:action`), with what it allows. */
export interface DeclaredPermissionConfig {
  readonly name: string;
  readonly description: string;
}

const PERMISSION_NAME = /^[a-z][a-z0-9_-]{0,63}[.:][a-z][a-z0-9_.-]{0,63}$/;

/** A list of `{name, description}`; names are answered in the dotted spelling. */
export const permissionList: Parser<readonly DeclaredPermissionConfig[]> = (raw) => {
  if (!Array.isArray(raw)) return bad('must be a list of {name, description}', raw);
  const out: DeclaredPermissionConfig[] = [];
  for (const [i, item] of raw.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return bad(`[${i}] must be {name, description}`, item);
    const { name, description, ...rest } = item as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) return bad(`[${i}].${extra[0]}: unknown key`, item);
    if (typeof name !== 'string' || !PERMISSION_NAME.test(name)) return bad(`[${i}].name must be object.action in lower case (cert.create)`, name);
    if (description !== undefined && (typeof description !== 'string' || description.length > 500)) return bad(`[${i}].description must be text of 500 characters at most`, description);
    const dotted = name.replace(':', '.');
    if (out.some((p) => p.name === dotted)) return bad(`[${i}].name is declared twice`, name);
    out.push(Object.freeze({ name: dotted, description: (description as string | undefined) ?? '' }));
  }
  return ok(Object.freeze(out));
};

/** A resource type the host app declares (config `resources:`): users are granted actions on its resources. */
export interface ResourceConfig {
  readonly type: string;
  /** What may be granted on it; `read` when not said. */
  readonly actions: readonly string[];
  readonly description: string;
  /** Grants every new account gets: `*` (every resource of the type) or resource ids, as text. */
  readonly defaultForNewUsers: readonly string[];
}

/** Members of `group` (as `provider` names it) are granted `actions` on the resource `id` of `type` at each sign-in. */
export interface GroupGrantConfig {
  readonly group: string;
  /** 'proxy', `oidc:<id>`, or '*' (any provider; the default). */
  readonly provider: string;
  readonly type: string;
  /** A resource id as text, or '*'. */
  readonly id: string;
  /** `read` when not said. */
  readonly actions: readonly string[];
}

const RESOURCE_TYPE = /^[a-z][a-z0-9_-]{0,63}$/;
const RESOURCE_ACTION = /^[a-z][a-z0-9_.-]{0,63}$/;
// eslint-disable-next-line no-control-regex -- no control character: PostgreSQL refuses a NUL in text
const RESOURCE_ID = /^[^\s,\u0000-\u001f\u007f]{1,128}$/;
const GRANT_PROVIDER = /^(\*|proxy|oidc:[a-z0-9][a-z0-9_-]{0,63})$/;

/** A resource id as the API and the table hold it: text, 1-128 characters, no space, comma or control character. */
export function resourceId(raw: unknown): string | undefined {
  const value = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw;
  return typeof value === 'string' && RESOURCE_ID.test(value) ? value : undefined;
}

function actionList(raw: unknown, at: string): Parsed<readonly string[] | undefined> {
  if (raw === undefined) return ok(undefined);
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 32) return bad(`${at} must be a list of 1 to 32 actions`, raw);
  const bent = raw.find((a) => typeof a !== 'string' || !RESOURCE_ACTION.test(a));
  if (bent !== undefined) return bad(`${at} must be actions in lower case (read, write)`, bent);
  return ok(Object.freeze([...new Set(raw as string[])].sort()));
}

function entries(raw: unknown, shape: string): Parsed<Record<string, unknown>[]> {
  if (!Array.isArray(raw)) return bad(`must be a list of ${shape}`, raw);
  for (const [i, item] of raw.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return bad(`[${i}] must be ${shape}`, item);
  }
  return ok(raw as Record<string, unknown>[]);
}

export const resourceList: Parser<readonly ResourceConfig[]> = (raw) => {
  const list = entries(raw, '{type, actions?, description?, defaultForNewUsers?}');
  if (!list.ok) return list;
  const out: ResourceConfig[] = [];
  for (const [i, item] of list.value.entries()) {
    const { type, actions, description, defaultForNewUsers, ...rest } = item;
    const extra = Object.keys(rest);
    if (extra.length > 0) return bad(`[${i}].${extra[0]}: unknown key`, item);
    if (typeof type !== 'string' || !RESOURCE_TYPE.test(type)) return bad(`[${i}].type must be a name in lower case (library, share)`, type);
    if (out.some((r) => r.type === type)) return bad(`[${i}].type is declared twice`, type);
    const acts = actionList(actions, `[${i}].actions`);
    if (!acts.ok) return acts;
    if (description !== undefined && (typeof description !== 'string' || description.length > 500)) return bad(`[${i}].description must be text of 500 characters at most`, description);
    const defaults: string[] = [];
    if (defaultForNewUsers !== undefined) {
      if (!Array.isArray(defaultForNewUsers) || defaultForNewUsers.length > 1000) return bad(`[${i}].defaultForNewUsers must be a list of resource ids or '*'`, defaultForNewUsers);
      for (const id of defaultForNewUsers) {
        const text = resourceId(id);
        if (text === undefined) return bad(`[${i}].defaultForNewUsers must hold resource ids (1-128 characters, no space, comma or control character) or '*'`, id);
        if (!defaults.includes(text)) defaults.push(text);
      }
    }
    out.push(Object.freeze({ type, actions: acts.value ?? Object.freeze(['read']), description: (description as string | undefined) ?? '', defaultForNewUsers: Object.freeze(defaults) }));
  }
  return ok(Object.freeze(out));
};

export const groupGrantList: Parser<readonly GroupGrantConfig[]> = (raw) => {
  const list = entries(raw, '{group, provider?, type, id, actions?}');
  if (!list.ok) return list;
  const out: GroupGrantConfig[] = [];
  for (const [i, item] of list.value.entries()) {
    const { group, provider, type, id, actions, ...rest } = item;
    const extra = Object.keys(rest);
    if (extra.length > 0) return bad(`[${i}].${extra[0]}: unknown key`, item);
    if (typeof group !== 'string' || group.length === 0 || group.length > 255) return bad(`[${i}].group must be a group name`, group);
    if (provider !== undefined && (typeof provider !== 'string' || !GRANT_PROVIDER.test(provider))) return bad(`[${i}].provider must be proxy, oidc:<id> or *`, provider);
    if (typeof type !== 'string' || !RESOURCE_TYPE.test(type)) return bad(`[${i}].type must be a resource type of resources:`, type);
    const text = resourceId(id);
    if (text === undefined) return bad(`[${i}].id must be a resource id or '*'`, id);
    const acts = actionList(actions, `[${i}].actions`);
    if (!acts.ok) return acts;
    out.push(Object.freeze({ group, provider: (provider as string | undefined) ?? '*', type, id: text, actions: acts.value ?? Object.freeze(['read']) }));
  }
  return ok(Object.freeze(out));
};

/** One `orgGroups` rule: members of `group` (as `provider` names it; `*`: any) hold `role` in the organisation named `org`. */
export interface OrgGroupRuleConfig {
  readonly group: string;
  readonly org: string;
  readonly role: string;
  readonly provider: string;
}

const PROVIDER = /^(\*|proxy|oidc:[A-Za-z0-9_-]{1,64})$/;

/** A list of `{group, org, role, provider?}` (docs/configuration.md, orgGroups). */
export const orgGroupList: Parser<readonly OrgGroupRuleConfig[]> = (raw) => {
  if (!Array.isArray(raw)) return bad('must be a list of {group, org, role, provider}', raw);
  const out: OrgGroupRuleConfig[] = [];
  for (const [i, item] of raw.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return bad(`[${i}] must be {group, org, role, provider}`, item);
    const { group, org, role, provider = '*', ...rest } = item as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) return bad(`[${i}].${extra[0]}: unknown key`, item);
    if (typeof group !== 'string' || group.length === 0 || group.length > 256) return bad(`[${i}].group must be a group name`, group);
    if (typeof org !== 'string' || org.trim().length === 0 || org.length > 128) return bad(`[${i}].org must be an organisation name`, org);
    if (typeof role !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(role)) return bad(`[${i}].role must be a role name`, role);
    if (typeof provider !== 'string' || !PROVIDER.test(provider)) return bad(`[${i}].provider must be proxy, oidc:<id> or *`, provider);
    out.push(Object.freeze({ group, org: org.trim(), role, provider }));
  }
  return ok(Object.freeze(out));
};
