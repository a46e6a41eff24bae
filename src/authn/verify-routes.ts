import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import type { Authorizer } from '../authz/enforcer.js';
import type { UsherConfig } from '../config/schema.js';
import { noStore } from '../http/body.js';
import { Errors } from '../errors.js';
import { toPublicUser } from '../users/model.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { publicUserSchema } from '../users/schemas.js';
import { ignoreQueryKeys, refuseKeyInUrl } from './chain.js';

/** A header value as raw UTF-8 bytes, which is what proxies pass on (Node would send Latin-1). */
const headerValue = (value: string | null): string => {
  if (value === null) return '';
  // eslint-disable-next-line no-control-regex -- control characters cannot travel in a header
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '');
  return /[^\x20-\x7e]/.test(clean) ? Buffer.from(clean, 'utf8').toString('latin1') : clean;
};

/**
 * `rd` when it is an absolute http(s) URL on one of `domains` (or under one), https unless the login
 * page itself is plain http; else null. Parsed by the WHATWG URL parser, as browsers will.
 */
export function safeRedirect(rd: string, domains: readonly string[], loginUrl: URL): string | null {
  if (rd.length > 4096) return null;
  let url: URL;
  try {
    url = new URL(rd);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loginUrl.protocol === 'http:')) return null;
  if (url.username || url.password) return null;
  const host = url.hostname;
  return domains.some((d) => host === d || host.endsWith(`.${d}`)) ? url.href : null;
}

/** The request the proxy is asking about, as a trusted proxy describes it. */
interface Original {
  url: string;
  /** nginx auth_request passes no 3xx on: it gets a 401 carrying the login URL in Location instead. */
  authRequest: boolean;
}

/**
 * The URL the client asked the proxy for, when the peer is a trusted proxy and sends it once: X-Original-URL
 * (nginx auth_request, as Authelia's and Authentik's snippets set it), else X-Forwarded-Proto, -Host and -Uri
 * (Traefik's forwardAuth, Caddy's forward_auth).
 */
function originalRequest(req: Request, isTrustedPeer: (address: string | undefined) => boolean): Original | undefined {
  if (!isTrustedPeer(req.socket.remoteAddress)) return undefined;
  // Read from rawHeaders: req.headersDistinct builds an array of every header on each request.
  const raw = req.rawHeaders;
  const one = (name: string) => {
    let value: string | undefined;
    let seen = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const header = raw[i]!;
      if (header.length === name.length && header.toLowerCase() === name) {
        value = raw[i + 1];
        seen++;
      }
    }
    return seen === 1 ? value : undefined;
  };
  const url = one('x-original-url');
  if (url) return { url, authRequest: true };
  const host = one('x-forwarded-host');
  const uri = one('x-forwarded-uri');
  if (!host || !uri?.startsWith('/')) return undefined;
  return { url: `${one('x-forwarded-proto') ?? 'https'}://${host}${uri}`, authRequest: false };
}

/** Everything in front of /verify: the query string of a trusted proxy's original request is the app's. */
export function verifyMiddleware(isTrustedPeer: (address: string | undefined) => boolean): RequestHandler[] {
  // One handler rather than two: each costs the route's bookkeeping on every request.
  return [
    (req, res, next) => {
      noStore(res);
      if (originalRequest(req, isTrustedPeer)) ignoreQueryKeys(req);
      else refuseKeyInUrl(req);
      next();
    },
  ];
}

const remoteHeader = (description: string) => ({ description, schema: z.string() });

/**
 * GET /verify, for proxies that ask before they forward (nginx auth_request, Traefik forwardAuth, Caddy
 * forward_auth): 200 with Remote-User, Remote-Groups (the role and the roles it inherits), Remote-Email
 * and Remote-Name for an authenticated request (session cookie, API key...), else 401. All four headers are
 * always sent, empty when unknown, so that a proxy copying them replaces whatever the client sent.
 * An anonymous browser (Accept names text/html) is sent to the login URL with the original URL in `rd`:
 * a 302, or for nginx a 401 whose Location nginx's error page redirects to. API calls get the plain 401.
 *
 * Mounted before the API's own middleware, behind `verifyMiddleware`: when a trusted proxy describes the
 * original request, the query string is the proxied app's (Caddy passes the client's on), not Usher's, so
 * its parameters are neither `rd` nor refused as keys in the URL. Everyone else's still are.
 */
export function verifyEndpoints(
  authz: Authorizer,
  settings: UsherConfig['forwardAuth'],
  /** Is this peer a trusted proxy? Only then are its X-Original-URL, X-Forwarded-Host/-Uri the original request's. */
  isTrustedPeer: (address: string | undefined) => boolean,
): Endpoint[] {
  const loginUrl = settings.loginUrl === undefined ? undefined : new URL(settings.loginUrl);
  return [
    endpoint({
      method: 'get',
      path: '/verify',
      tag: 'Forward auth',
      summary: 'Forward authentication for nginx, Traefik and Caddy',
      description:
        'Never believes proxy identity headers: only a session cookie or an API key. A trusted proxy describes the original request in X-Original-URL, or X-Forwarded-Proto, -Host and -Uri.',
      access: 'public',
      query: z.object({
        rd: z
          .union([z.string(), z.array(z.string())])
          .optional()
          .meta({ description: 'Where to send the browser after signing in, when no trusted proxy names the original URL.' }),
      }),
      responses: {
        200: {
          description: 'Authenticated: who it is, in headers for the proxy to pass on.',
          body: z.object({ user: publicUserSchema }).strict(),
          headers: {
            'Remote-User': remoteHeader('The username.'),
            'Remote-Groups': remoteHeader('The role and the roles it inherits, comma-separated.'),
            'Remote-Email': remoteHeader('The email, or empty.'),
            'Remote-Name': remoteHeader('The display name, or empty.'),
          },
        },
        302: { description: 'An anonymous browser, sent to the login page.', headers: { Location: { description: 'The login URL.', schema: z.string() } } },
      },
      handle: ({ req, res, query }) => {
        // Never the proxy's own identity headers: a subrequest carries the client's (forged) headers from
        // the trusted address, so only a session cookie or an API key answers for who the client is.
        const user = req.user?.authMethod === 'proxy' ? undefined : req.user;
        if (user) {
          res
            .set({
              'Remote-User': headerValue(user.username),
              // A scoped key's rights are its permissions, not its owner's roles: none to pass on.
              'Remote-Groups': user.scope ? '' : authz.impliedRoles(user.role).join(','),
              'Remote-Email': headerValue(user.email),
              'Remote-Name': headerValue(user.name),
            })
            // A Buffer body: Node prepends the header block to a string body and encodes both as UTF-8,
            // which would encode the raw UTF-8 header bytes a second time.
            .type('json')
            .send(Buffer.from(JSON.stringify({ user: toPublicUser(user) })));
          return;
        }
        const original = originalRequest(req, isTrustedPeer);
        const rd = original?.url ?? (typeof query.rd === 'string' ? query.rd : undefined);
        const browser = req.accepts(['json', 'html']) === 'html';
        const target = loginUrl && browser && rd !== undefined ? safeRedirect(rd, settings.redirectDomains, loginUrl) : null;
        if (!loginUrl || target === null) throw Errors.unauthenticated();
        const location = new URL(loginUrl);
        location.searchParams.set('rd', target);
        if (original?.authRequest) {
          const err = Errors.unauthenticated();
          Object.assign(err.headers, { Location: location.href });
          throw err;
        }
        return { redirect: location.href };
      },
      errors: [Errors.unauthenticated],
    }),
  ];
}
