/** What a request to an identity provider was for. */
export type OidcOperation = 'discovery' | 'token' | 'userinfo' | 'jwks' | 'other';

/**
 * How it ended: `ok` (any 2xx or 3xx answer), `http_4xx`, `http_5xx`, `timeout` (no answer within
 * oidc.timeout), `unreachable` (no connection: refused, reset, DNS).
 */
export type OidcRequestResult = 'ok' | 'http_4xx' | 'http_5xx' | 'timeout' | 'unreachable';

/** One request to a provider, once its response headers arrived or it failed. */
export interface OidcRequest {
  /** The provider's id in oidc.providers. */
  readonly provider: string;
  readonly operation: OidcOperation;
  readonly result: OidcRequestResult;
  readonly seconds: number;
}

export type OidcRequestObserver = (request: OidcRequest) => void;

/**
 * The fetch both openid-client (`client.customFetch`) and jose (`customFetch`) accept. Generic in its options:
 * each library types them its own way, and both hand fetch's own options through.
 */
export type ProviderFetch = <Init extends object>(url: string, init: Init) => Promise<Response>;

function resultOf(status: number): OidcRequestResult {
  return status >= 500 ? 'http_5xx' : status >= 400 ? 'http_4xx' : 'ok';
}

/**
 * fetch, timed and reported to `observe`. The time runs to the response's headers: the libraries read the
 * (small) bodies themselves. A failure is reported and rethrown unchanged, so the callers' handling of
 * timeouts and network errors stays as it was.
 */
export function observedFetch(provider: string, operationOf: (url: string) => OidcOperation, observe: OidcRequestObserver): ProviderFetch {
  return async (url, init) => {
    const start = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
    const operation = operationOf(url);
    try {
      const response = await fetch(url, init as RequestInit);
      observe({ provider, operation, result: resultOf(response.status), seconds: seconds() });
      return response;
    } catch (err) {
      const name = (err as { name?: string })?.name;
      observe({ provider, operation, result: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable', seconds: seconds() });
      throw err;
    }
  };
}
