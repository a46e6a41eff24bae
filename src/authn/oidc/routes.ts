import express, { type Router } from 'express';
import { methodNotAllowed } from '../../http/method-not-allowed.js';
import { OidcLogin, type OidcLoginDeps } from './login.js';

export type OidcDeps = OidcLoginDeps;

/** GET /providers, and /oidc/{id}/login, /callback and /backchannel-logout: each reads its inputs and calls OidcLogin. */
export function registerOidcRoutes(router: Router, base: string, deps: OidcDeps): void {
  const login = new OidcLogin(deps);

  router
    .route(`${base}/providers`)
    .get((_req, res) => {
      res.json(login.providers().map((p) => ({ ...p, loginUrl: `${base}/oidc/${p.id}/login` })));
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/oidc/:id/login`)
    .get(async (req, res) => {
      res.redirect(302, await login.start(req, res, String(req.params.id), req.query.returnTo));
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/oidc/:id/callback`)
    .get(async (req, res) => {
      const callback = { state: req.query.state, error: req.query.error, search: new URL(req.originalUrl, 'http://x').search };
      res.redirect(302, await login.finish(req, res, String(req.params.id), callback));
    })
    .all(methodNotAllowed);

  // Before the JSON-only body parser: the provider posts a form (application/x-www-form-urlencoded).
  router
    .route(`${base}/oidc/:id/backchannel-logout`)
    .post(express.urlencoded({ extended: false, limit: '100kb' }), async (req, res) => {
      await login.backchannelLogout(String(req.params.id), (req.body as Record<string, unknown> | undefined)?.logout_token);
      res.status(200).end();
    })
    .all(methodNotAllowed);
}
