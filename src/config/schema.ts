/** The validated, frozen configuration every part of Usher reads. */
export interface UsherConfig {
  readonly port: number;
  readonly host: string;
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
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
