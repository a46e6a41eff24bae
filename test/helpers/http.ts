export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface CallOptions {
  key?: string;
  body?: unknown;
  /** A raw body sent as is (for malformed input); contentType defaults to application/json. */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** For a cookie client: send no Content-Type on a body-less request. */
  bare?: boolean;
}

/** Holds the session cookie between calls, as a browser would. */
export interface Jar {
  cookie?: string;
}

/** A small fetch client for the API: JSON in, JSON out, every reply's status and headers kept. */
export function client(base: string, jar?: Jar) {
  async function call<T = any>(method: string, path: string, opts: CallOptions = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = {};
    if (opts.key !== undefined) headers['x-api-key'] = opts.key;
    if (jar?.cookie) headers.cookie = jar.cookie;
    let body: string | undefined;
    if (opts.raw !== undefined || opts.body !== undefined) {
      body = opts.raw ?? JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    } else if (jar && !opts.bare && method !== 'GET' && method !== 'HEAD') {
      // What a browser app sends on every state-changing call, body or not.
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    Object.assign(headers, opts.headers);
    const res = await fetch(base + path, { method, headers, body, redirect: 'manual' });
    if (jar) {
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        if (!pair?.startsWith('usher.sid=')) continue;
        jar.cookie = /Expires=Thu, 01 Jan 1970/i.test(line) ? undefined : pair;
      }
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }
  return {
    call,
    get: <T = any>(path: string, opts?: CallOptions) => call<T>('GET', path, opts),
    post: <T = any>(path: string, opts?: CallOptions) => call<T>('POST', path, opts),
    put: <T = any>(path: string, opts?: CallOptions) => call<T>('PUT', path, opts),
    patch: <T = any>(path: string, opts?: CallOptions) => call<T>('PATCH', path, opts),
    del: <T = any>(path: string, opts?: CallOptions) => call<T>('DELETE', path, opts),
  };
}

export type Client = ReturnType<typeof client>;

/** The session id inside a `usher.sid=s%3A<sid>.<signature>` cookie. */
export function sidOf(cookie: string | undefined): string {
  const value = decodeURIComponent(cookie?.split('=')[1] ?? '');
  const match = /^s:([^.]+)\./.exec(value);
  if (!match) throw new Error(`not a session cookie: ${cookie}`);
  return match[1]!;
}

/** Asserts an error reply's shape and returns its code. */
export function errorCode(reply: Reply): string {
  const err = (reply.body as { error?: { code?: unknown; message?: unknown } })?.error;
  if (!err || typeof err.code !== 'string' || typeof err.message !== 'string') {
    throw new Error(`not a JSON error (status ${reply.status}): ${reply.text.slice(0, 200)}`);
  }
  return err.code;
}
