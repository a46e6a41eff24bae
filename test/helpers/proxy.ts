import { pino, type Logger } from 'pino';
import type { TestServer } from './app.js';
import type { Reply } from './http.js';
import { requestFrom } from './peer-http.js';

export const ME = '/api/v1/auth/me';

/** Settings turning proxy auth on, trusting `trusted` (127.0.0.1 by default); `auth` adds other auth.* keys. */
export function proxySettings(proxy: Record<string, unknown> = {}, trusted: string[] = ['127.0.0.1'], auth: Record<string, unknown> = {}) {
  return { server: { trustedProxies: trusted }, auth: { ...auth, proxy: { enabled: true, ...proxy } } };
}

/** A logger keeping its JSON lines in memory, to assert on warnings. */
export function memoryLogger(level = 'warn'): { logger: Logger; lines: Record<string, unknown>[]; withMessage(msg: string): Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines, withMessage: (msg) => lines.filter((l) => l.msg === msg) };
}

/** The server's URL for a client on `address`: [::1] for IPv6 (the server must listen on '::'), else 127.0.0.1. */
export function urlFor(server: TestServer, address: string): string {
  return address.includes(':') ? server.url.replace('127.0.0.1', '[::1]') : server.url;
}

/** GET `path` from `address` with these (identity) headers. */
export function getFrom(server: TestServer, address: string, headers: Record<string, string | string[]>, path = ME): Promise<Reply> {
  return requestFrom(address, urlFor(server, address) + path, { headers });
}
