import { readFileSync } from 'node:fs';

/** One OpenID Connect provider, validated. */
export interface OidcProviderConfig {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly scopes: string;
  /** Claims tried in order for the username of a new account. */
  readonly usernameClaims: readonly string[];
  /** Path to the groups claim, one segment per nesting level (a segment may itself hold dots or colons). */
  readonly groupsClaim: readonly string[];
  /** Only members of one of these may sign in; undefined = anyone the provider authenticates. */
  readonly allowedGroups: readonly string[] | undefined;
  readonly allowedAdminGroups: readonly string[];
  readonly defaultRole: string;
  readonly autoProvision: boolean;
  readonly emailLinking: boolean;
  readonly roleSync: 'always' | 'on-create';
  /** Plain http issuer on loopback (tests only): openid-client's allowInsecureRequests. */
  readonly insecureLoopback: boolean;
}

const KEYS = new Set([
  'id', 'name', 'issuer', 'client_id', 'client_secret', 'client_secret_env', 'client_secret_file', 'scopes', 'username_claim',
  'groups_claim', 'allowed_groups', 'allowed_admin_groups', 'default_role', 'auto_provision', 'email_linking', 'role_sync',
]);

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * A claim path: "groups", "realm_access.roles", or a list of segments (["https://example.com/claims", "groups"])
 * for claims whose own name holds dots; a string with brackets also works: `["https://x/groups"]`.
 */
export function parseClaimPath(raw: unknown): string[] | null {
  if (Array.isArray(raw)) return raw.length > 0 && raw.every((s) => typeof s === 'string' && s.length > 0) ? (raw as string[]) : null;
  if (typeof raw !== 'string' || raw.trim() === '') return null;
  // No empty segment: "a..b", ".a" and "a." are mistakes, not paths.
  if (/^\.|\.\.|\.$/.test(raw.trim().replace(/\[\s*"[^"]+"\s*\]/g, 'x'))) return null;
  const segments: string[] = [];
  const re = /\[\s*"([^"]+)"\s*\]|([^.[\]]+)/g;
  let rest = raw.trim();
  for (const m of rest.matchAll(re)) segments.push(m[1] ?? m[2]!);
  rest = rest.replace(re, '').replace(/\./g, '');
  return rest === '' && segments.length > 0 ? segments : null;
}

/** Reads a claim by its path; undefined when any step is missing. */
export function claimAt(claims: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = claims;
  for (const segment of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

const strings = (raw: unknown): string[] | null =>
  Array.isArray(raw) ? (raw.every((x) => typeof x === 'string') ? (raw as string[]) : null) : typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : null;

/**
 * Validates `oidc.providers` (config file only). Problems are pushed as lines naming the key, e.g.
 * `config: oidc.providers[0].issuer: ...`; a client secret may come from client_secret_env or client_secret_file.
 */
export function parseOidcProviders(raw: unknown, env: Record<string, string | undefined>, roles: ReadonlySet<string> | undefined, problems: string[]): OidcProviderConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('config: oidc.providers: must be a list of providers');
    return [];
  }
  const seen = new Set<string>();
  const out: OidcProviderConfig[] = [];
  raw.forEach((entry: unknown, i) => {
    const at = (key: string) => `config: oidc.providers[${i}].${key}`;
    const before = problems.length;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`config: oidc.providers[${i}]: must be a mapping`);
      return;
    }
    const p = entry as Record<string, unknown>;
    for (const key of Object.keys(p)) if (!KEYS.has(key)) problems.push(`${at(key)}: unknown key`);
    const id = p.id;
    if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,31}$/.test(id)) problems.push(`${at('id')}: must be 1-32 of a-z 0-9 _ - (it appears in the callback URL)`);
    else if (seen.has(id)) problems.push(`${at('id')}: ${JSON.stringify(id)} is used twice`);
    else seen.add(id);
    let insecureLoopback = false;
    // Kept exactly as written: discovery compares it with the provider's own issuer.
    const issuer = String(p.issuer ?? '');
    try {
      const url = new URL(issuer);
      if (url.protocol === 'http:') {
        if (LOOPBACK.has(url.hostname)) insecureLoopback = true;
        else problems.push(`${at('issuer')}: must be https:// (plain http is accepted only for a loopback issuer, in tests)`);
      } else if (url.protocol !== 'https:') problems.push(`${at('issuer')}: must be an https:// URL`);
    } catch {
      problems.push(`${at('issuer')}: must be the provider's issuer URL, such as https://sso.example.com/realms/main`);
    }
    if (typeof p.client_id !== 'string' || p.client_id === '') problems.push(`${at('client_id')}: is required`);
    let clientSecret: string | undefined;
    const sources = ['client_secret', 'client_secret_env', 'client_secret_file'].filter((k) => p[k] !== undefined);
    if (sources.length > 1) problems.push(`${at(sources[1]!)}: give only one of client_secret, client_secret_env, client_secret_file`);
    else if (p.client_secret !== undefined) {
      if (typeof p.client_secret !== 'string' || p.client_secret === '') problems.push(`${at('client_secret')}: must be a non-empty string`);
      else clientSecret = p.client_secret;
    } else if (p.client_secret_env !== undefined) {
      const value = typeof p.client_secret_env === 'string' ? env[p.client_secret_env] : undefined;
      if (!value) problems.push(`${at('client_secret_env')}: names no set environment variable`);
      clientSecret = value;
    } else if (p.client_secret_file !== undefined) {
      try {
        clientSecret = readFileSync(String(p.client_secret_file), 'utf8').trim();
        if (!clientSecret) problems.push(`${at('client_secret_file')}: the file is empty`);
      } catch (err) {
        problems.push(`${at('client_secret_file')}: cannot read ${String(p.client_secret_file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    const scopes = p.scopes === undefined ? 'openid profile email' : typeof p.scopes === 'string' ? p.scopes : Array.isArray(p.scopes) ? p.scopes.join(' ') : '';
    if (!scopes.split(/\s+/).includes('openid')) problems.push(`${at('scopes')}: must include openid`);
    const usernameClaims = p.username_claim === undefined ? ['preferred_username', 'email', 'sub'] : typeof p.username_claim === 'string' && p.username_claim ? [p.username_claim] : null;
    if (!usernameClaims) problems.push(`${at('username_claim')}: must be a claim name`);
    const groupsClaim = p.groups_claim === undefined ? ['groups'] : parseClaimPath(p.groups_claim);
    if (!groupsClaim) problems.push(`${at('groups_claim')}: must be a claim path such as groups or realm_access.roles, or a list of segments`);
    const allowedGroups = p.allowed_groups === undefined ? undefined : strings(p.allowed_groups);
    if (allowedGroups === null) problems.push(`${at('allowed_groups')}: must be a list of group names`);
    const allowedAdminGroups = p.allowed_admin_groups === undefined ? [] : strings(p.allowed_admin_groups);
    if (allowedAdminGroups === null) problems.push(`${at('allowed_admin_groups')}: must be a list of group names`);
    const defaultRole = p.default_role === undefined ? 'user' : p.default_role;
    if (typeof defaultRole !== 'string' || (roles && !roles.has(defaultRole))) problems.push(`${at('default_role')}: must be one of ${roles ? [...roles].join(', ') : 'the roles of the policy'}`);
    const flag = (key: string, fallback: boolean) => {
      const v = p[key];
      if (v === undefined) return fallback;
      if (typeof v !== 'boolean') problems.push(`${at(key)}: must be true or false`);
      return v === true;
    };
    const roleSync = p.role_sync === undefined ? 'always' : p.role_sync;
    if (roleSync !== 'always' && roleSync !== 'on-create') problems.push(`${at('role_sync')}: must be always or on-create`);
    const autoProvision = flag('auto_provision', true);
    const emailLinking = flag('email_linking', false);
    if (problems.length > before) return;
    out.push(Object.freeze({
      id: id as string,
      name: typeof p.name === 'string' && p.name ? p.name : (id as string),
      issuer,
      clientId: p.client_id as string,
      clientSecret,
      scopes,
      usernameClaims: Object.freeze(usernameClaims!),
      groupsClaim: Object.freeze(groupsClaim!),
      allowedGroups: allowedGroups ? Object.freeze(allowedGroups) : undefined,
      allowedAdminGroups: Object.freeze(allowedAdminGroups!),
      defaultRole: defaultRole as string,
      autoProvision,
      emailLinking,
      roleSync: roleSync as 'always' | 'on-create',
      insecureLoopback,
    }));
  });
  return out;
}
