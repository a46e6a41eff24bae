import type { OidcProviderConfig } from './oidc.js';
import type { GroupGrantConfig, ResourceConfig } from './parsers.js';

/** The validated, frozen configuration every part of Usher reads. */
export interface UsherConfig {
  readonly port: number;
  readonly host: string;
  /** Usher's own external URL (origin and optional path), e.g. https://auth.example.com; unset = the request's own host. */
  readonly publicUrl: string | undefined;
  /**
   * Peers (addresses or CIDR ranges) whose X-Forwarded-* headers are believed, and, with proxy auth,
   * whose identity headers are. Empty = none: `trust proxy` is never simply true.
   */
  readonly trustedProxies: readonly string[];
  /** Accept a trustedProxies range holding every address (0.0.0.0/0, ::/0). DANGER: anyone who reaches Usher may forge X-Forwarded-* and, with proxy auth, be any user. */
  readonly trustAllProxiesDangerous: boolean;
  readonly dataDir: string;
  readonly database: {
    /** Unset means the SQLite file `usher.db` in the data dir. */
    readonly url: string | undefined;
    /** PostgreSQL schema to use (search_path); unset means the server's default. */
    readonly schema: string | undefined;
  };
  /** Unset means the generated file `<dataDir>/secret`. */
  readonly secret: string | undefined;
  readonly bootstrap: {
    readonly adminUsername: string | undefined;
    readonly adminPassword: string | undefined;
    readonly adminApiKey: string | undefined;
  };
  readonly logLevel: LogLevel;
  readonly passwordMinLength: number;
  /** How long an authenticated API key stays cached in memory, in ms (writes through this process invalidate at once). */
  readonly apiKeyCacheTtlMs: number;
  /** Several instances on one database: how often each reads the policy's version to pick up the others' changes. */
  readonly cluster: { readonly pollIntervalMs: number };
  /** Audit entries older than this are pruned (hourly). */
  readonly auditRetentionMs: number;
  /** GET /metrics (Prometheus), off by default; never public by accident: a separate address or a bearer token. */
  readonly metrics: {
    readonly enabled: boolean;
    /** Served only on this second listener (host:port), never on the main one. */
    readonly listen: { readonly host: string; readonly port: number } | undefined;
    /** Wherever /metrics is served, `Authorization: Bearer <token>` is then required. */
    readonly token: string | undefined;
  };
  readonly proxy: ProxyConfig;
  /** GET /api/v1/auth/verify, for nginx auth_request, Traefik forwardAuth, Caddy forward_auth. */
  readonly forwardAuth: {
    /** Where an anonymous request with a safe `?rd=` is sent (302, with `rd` added); unset = always 401. */
    readonly loginUrl: string | undefined;
    /** Hosts (and their subdomains) an `rd` may point at; default: the hosts of loginUrl and publicUrl. */
    readonly redirectDomains: readonly string[];
  };
  /** The host app's permissions, `object.action` with a description: custom roles and users may hold them (docs/permissions.md). */
  readonly permissions: readonly { readonly name: string; readonly description: string }[];
  /** The host app's resource types (`library`), whose resources users are granted (docs/permissions.md, Access grants). */
  readonly resources: readonly ResourceConfig[];
  /** Identity-provider groups that give grants at each sign-in. */
  readonly groupGrants: readonly GroupGrantConfig[];
  /**
   * IdP groups to a role inside one organisation (group `acme-admins` → `admin` of `acme`), applied at each
   * login like the role sync (docs/permissions.md, Organisations).
   */
  readonly orgGroups: readonly { readonly group: string; readonly org: string; readonly role: string; readonly provider: string }[];
  /** Where the console's connect page sends a listener once their device is signed in; each button is hidden when unset. */
  readonly connect: {
    /** The host's mobile app (a deep link such as myapp://connect, or an app-store page): "Open in app" and the QR code. */
    readonly appUrl: string | undefined;
    /** The host's web player: "Open web player". */
    readonly webUrl: string | undefined;
  };
  /** Sessions and login counters in Redis when set; else sessions in the SQL database, counters in memory. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key Usher writes, so several deployments can share one Redis. */
  readonly redisPrefix: string;
  readonly oidc: {
    readonly providers: readonly OidcProviderConfig[];
    /** How long a request to a provider (discovery, token, JWKS) may take before login answers 502. */
    readonly timeoutMs: number;
    /** Logins one client address may start per minute (each stores a short pre-login session). */
    readonly startsPerMinute: number;
  };
  readonly session: {
    /** A session unused this long ends (rolling). */
    readonly idleTimeoutMs: number;
    /** A session ends this long after login, however active. */
    readonly maxAgeMs: number;
    /** The session cookie's Domain (it then reaches every host under it: single sign-on); unset = host-only. */
    readonly cookieDomain: string | undefined;
    /** A device token (an app's session) unused this long ends; it has no absolute lifetime. */
    readonly deviceIdleTimeoutMs: number;
  };
  /** Login protection (authn/login-limiter.ts); addresses are counted as IPv4, or IPv6 by /64. */
  readonly loginLimit: {
    /** Consecutive failures per (account, address) pair within the window; a success starts the count again. */
    readonly maxFailures: number;
    readonly windowMs: number;
    /** Failures per address, whatever the account (an office NAT shares one). */
    readonly addressMaxFailures: number;
    readonly addressWindowMs: number;
    /** Failures per account from any address; past them, addresses new to the account are slowed down. */
    readonly accountMaxFailures: number;
    readonly accountWindowMs: number;
    /** The slow-down: one attempt per this long on the account from addresses it never signed in from. */
    readonly accountSlowdownMs: number;
  };
  /**
   * One line per setting that still works but should change (an old spelling, naming the new key). Not problems:
   * the server starts; createUsher logs each once, the CLI prints them on stderr.
   */
  readonly warnings: readonly string[];
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Whether a trusted proxy's groups set the role at every request ('always') or only when the account is created. */
export const ROLE_SYNC_MODES = ['always', 'on-create'] as const;
export type RoleSync = (typeof ROLE_SYNC_MODES)[number];

/** The identity headers of the proxies Usher knows; the defaults are Authelia's. */
export const PROXY_PRESETS = {
  authelia: { userHeaders: ['Remote-User'], groupsHeader: 'Remote-Groups', emailHeader: 'Remote-Email', nameHeader: 'Remote-Name', groupsSeparator: ',' },
  authentik: {
    userHeaders: ['X-authentik-username'],
    groupsHeader: 'X-authentik-groups',
    emailHeader: 'X-authentik-email',
    nameHeader: 'X-authentik-name',
    groupsSeparator: '|',
  },
  // oauth2-proxy sends no display name: no name header is read, so none can slip through it.
  'oauth2-proxy': {
    userHeaders: ['X-Forwarded-Preferred-Username', 'X-Forwarded-User'],
    groupsHeader: 'X-Forwarded-Groups',
    emailHeader: 'X-Forwarded-Email',
    nameHeader: undefined,
    groupsSeparator: ',',
  },
} as const satisfies Record<string, Omit<ProxyConfig, 'enabled' | 'preset' | 'adminGroups' | 'autoProvision' | 'roleSync'>>;
export type ProxyPreset = keyof typeof PROXY_PRESETS;

/** Authentication by a trusted reverse proxy's identity headers (docs/proxy-auth.md). */
export interface ProxyConfig {
  readonly enabled: boolean;
  readonly preset: ProxyPreset | undefined;
  /** The username: the first of these headers the request carries. */
  readonly userHeaders: readonly string[];
  readonly groupsHeader: string;
  readonly emailHeader: string | undefined;
  readonly nameHeader: string | undefined;
  readonly groupsSeparator: string;
  /** Members of these groups are admins (g2 rules for provider 'proxy'). */
  readonly adminGroups: readonly string[];
  /** Create the account of an unknown user (else 403 auth.not_provisioned). */
  readonly autoProvision: boolean;
  readonly roleSync: RoleSync;
}
export type LogLevel = (typeof LOG_LEVELS)[number];
