import { z } from 'zod';
import { Errors } from '../../errors.js';
import { endpoint, type Endpoint } from '../../http/endpoint.js';
import { OidcLogin } from './login.js';

const TAG = 'OIDC';
const providerParams = z.object({ id: z.string().meta({ description: "The provider's id in `oidc.providers`." }) });
/** A query value as given: once, or repeated (the service counts anything but one string as absent). */
const queryValue = (description: string) => z.union([z.string(), z.array(z.string())]).optional().meta({ description });
const redirect = (description: string) => ({ description, headers: { Location: { description: 'Where the browser goes.', schema: z.string() } } });

/** GET /providers, and /oidc/{id}/login, /callback and /backchannel-logout: each reads its inputs and calls OidcLogin. */
export function oidcEndpoints(login: OidcLogin, base: string): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/providers',
      tag: TAG,
      summary: 'The sign-in providers a login page offers',
      access: 'public',
      responses: {
        200: {
          description: 'The configured providers, in order.',
          body: z.array(z.object({ id: z.string(), name: z.string(), loginUrl: z.string() }).strict()),
        },
      },
      handle: () => ({ body: login.providers().map((p) => ({ ...p, loginUrl: `${base}/oidc/${p.id}/login` })) }),
    }),
    endpoint({
      method: 'get',
      path: '/oidc/{id}/login',
      tag: TAG,
      summary: 'Start signing in with a provider (a browser navigation)',
      description: 'Authorization code flow with PKCE; the login under way is kept in the browser session for 10 minutes.',
      access: 'public',
      params: providerParams,
      query: z.object({ returnTo: queryValue('A path on this site to come back to after signing in (default `/`).') }),
      responses: { 302: redirect("To the provider's authorization endpoint.") },
      errors: [Errors.oidcUnknownProvider, Errors.tooManyAttempts, Errors.oidcProviderUnavailable],
      handle: async ({ req, res, params, query }) => ({ redirect: await login.start(req, res, params.id, query.returnTo) }),
    }),
    endpoint({
      method: 'get',
      path: '/oidc/{id}/callback',
      tag: TAG,
      summary: 'Where the provider sends the browser back',
      description: 'Exchanges the code, provisions or updates the account, starts the session; every query parameter the provider sent is checked.',
      access: 'public',
      params: providerParams,
      query: z
        .object({
          code: queryValue('The authorization code.'),
          state: queryValue('The state the login started with.'),
          error: queryValue('The provider refused the sign-in.'),
        })
        .loose(),
      responses: { 302: redirect('To `returnTo`, signed in with the `usher.sid` cookie.') },
      errors: [
        Errors.oidcUnknownProvider,
        Errors.oidcInvalidState,
        Errors.oidcLoginFailed,
        Errors.oidcProviderUnavailable,
        Errors.invalidCredentials,
        Errors.unauthenticated,
        Errors.forbidden,
        Errors.notProvisioned,
      ],
      handle: async ({ req, res, params, query }) => ({
        redirect: await login.finish(req, res, params.id, { state: query.state, error: query.error, search: new URL(req.originalUrl, 'http://x').search }),
      }),
    }),
    endpoint({
      method: 'post',
      path: '/oidc/{id}/backchannel-logout',
      tag: TAG,
      summary: "The provider ends a user's sessions (OIDC Back-Channel Logout)",
      description: 'Ends the sessions of the logout token’s provider session (`sid`) or subject (`sub`).',
      access: 'public',
      params: providerParams,
      bodyType: 'form',
      // Anything but one string is the service's oidc.invalid_logout_token, after the provider is known.
      body: z.object({ logout_token: z.unknown().meta({ description: 'The signed logout token (a string).', type: 'string' }) }).loose(),
      responses: { 200: { description: 'The sessions ended.' } },
      errors: [Errors.oidcUnknownProvider, Errors.oidcInvalidLogoutToken, Errors.oidcProviderUnavailable, Errors.tooLarge, Errors.unsupportedMediaType],
      handle: async ({ params, body }) => {
        await login.backchannelLogout(params.id, body.logout_token);
        return { status: 200 };
      },
    }),
  ];
}
