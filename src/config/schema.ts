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
  /** Sessions and login counters in Redis when set; else sessions in the SQL database, counters in memory. */
  readonly redisUrl: string | undefined;
  readonly session: {
    /** A session unused this long ends (rolling). */
    readonly idleTimeoutMs: number;
    /** A session ends this long after login, however active. */
    readonly maxAgeMs: number;
  };
  readonly loginLimit: {
    /** Failed logins allowed per account and per client address (IPv6 by /64) within the window. */
    readonly maxFailures: number;
    readonly windowMs: number;
  };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
