import http from 'node:http';
import type { Reply } from './http.js';
import { checkAnswer } from './openapi-check.js';

export interface PeerRequest {
  method?: string;
  /** A value given as an array is sent as that many header lines. */
  headers?: Record<string, string | string[]>;
  body?: unknown;
}

/**
 * One HTTP request whose socket is bound to `localAddress` (127.0.0.1, 127.0.0.2, ::1...), so the server
 * sees that peer address. Header values go out as given: pass UTF-8 bytes with utf8Header().
 */
export function requestFrom<T = any>(localAddress: string, url: string, opts: PeerRequest = {}): Promise<Reply<T>> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string | string[]> = { ...opts.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        // Raw pairs, so that a Latin-1 (UTF-8 bytes) value reaches the test as sent.
        const headers = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        try {
          // Checked against the server's openapi.json like every fetch (test/setup.ts).
          checkAnswer(new URL(url), opts.method ?? 'GET', res.statusCode ?? 0, headers, text);
        } catch (err) {
          reject(err);
          return;
        }
        resolve({ status: res.statusCode ?? 0, headers, body: parsed as T, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A string whose Latin-1 bytes are `text`'s UTF-8: how a proxy's UTF-8 header goes through Node. */
export const utf8Header = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** The inverse, for a header Node has read as Latin-1. */
export const fromUtf8Header = (value: string): string => Buffer.from(value, 'latin1').toString('utf8');
