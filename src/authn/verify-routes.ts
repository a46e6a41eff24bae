import type { Request, Router } from 'express';
import type { Authorizer } from '../authz/enforcer.js';
import type { UsherConfig } from '../config/schema.js';
import { Errors } from '../http/errors.js';
import { toPublicUser } from '../users/model.js';
import { methodNotAllowed } from '../users/routes.js';

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

/**
 * The URL the client asked the proxy for, as Traefik's forwardAuth and Caddy's forward_auth describe it
 * (X-Forwarded-Proto, -Host, -Uri), when the peer is a trusted proxy and sends them once each.
 */
function originalUrl(req: Request, isTrustedPeer: (address: string | undefined) => boolean): string | undefined {
  if (!isTrustedPeer(req.socket.remoteAddress)) return undefined;
  const one = (name: string) => {
    const values = req.headersDistinct[name];
    return values?.length === 1 ? values[0] : undefined;
  };
  const host = one('x-forwarded-host');
  const uri = one('x-forwarded-uri');
  if (!host || !uri?.startsWith('/')) return undefined;
  return `${one('x-forwarded-proto') ?? 'https'}://${host}${uri}`;
}

/**
 * GET /verify, for proxies that ask before they forward (nginx auth_request, Traefik forwardAuth, Caddy
 * forward_auth): 200 with Remote-User, Remote-Groups (the role and the roles it inherits), Remote-Email
 * and Remote-Name for an authenticated request (session cookie, API key...), else 401, or a 302 to the
 * login URL when `rd` names a safe URL. All four headers are always sent, empty when unknown, so that
 * a proxy copying them replaces whatever the client sent.
 */
export function registerVerifyRoute(
  router: Router,
  base: string,
  authz: Authorizer,
  settings: UsherConfig['forwardAuth'],
  /** Is this peer a trusted proxy? Only then are its X-Forwarded-Host/-Uri the original request's. */
  isTrustedPeer: (address: string | undefined) => boolean,
): void {
  const loginUrl = settings.loginUrl === undefined ? undefined : new URL(settings.loginUrl);
  router
    .route(`${base}/verify`)
    .get((req, res) => {
      // Never the proxy's own identity headers: a subrequest carries the client's (forged) headers from
      // the trusted address, so only a session cookie or an API key answers for who the client is.
      const user = req.user?.authMethod === 'proxy' ? undefined : req.user;
      if (user) {
        res
          .set({
            'Remote-User': headerValue(user.username),
            'Remote-Groups': authz.impliedRoles(user.role).join(','),
            'Remote-Email': headerValue(user.email),
            'Remote-Name': headerValue(user.name),
          })
          // A Buffer body: Node prepends the header block to a string body and encodes both as UTF-8,
          // which would encode the raw UTF-8 header bytes a second time.
          .type('json')
          .send(Buffer.from(JSON.stringify({ user: toPublicUser(user) })));
        return;
      }
      const rd = typeof req.query.rd === 'string' ? req.query.rd : originalUrl(req, isTrustedPeer);
      const target = loginUrl && rd !== undefined ? safeRedirect(rd, settings.redirectDomains, loginUrl) : null;
      if (!loginUrl || target === null) throw Errors.unauthenticated();
      const location = new URL(loginUrl);
      location.searchParams.set('rd', target);
      res.redirect(302, location.href);
    })
    .all(methodNotAllowed);
}
