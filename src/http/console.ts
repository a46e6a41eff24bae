import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { safeRedirect } from '../authn/verify-routes.js';
import type { UsherConfig } from '../config/schema.js';
import { endpoint, type Endpoint } from './endpoint.js';

/**
 * The console's pages, as the single-page app routes them (console/routes.ts holds the same list). Only
 * these paths answer index.html: any other path still gets the host's (or Usher's) 404, and /api/* never
 * reaches the console.
 */
export const CONSOLE_PAGES = ['/', '/login', '/connect', '/account', '/users', '/roles', '/orgs', '/audit'] as const;

/** Where `npm run build:console` writes the console: dist/console at the package's root. */
export function consoleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return join(dir, 'dist', 'console');
}

const attribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/**
 * The console as a router, for a host to mount at a path of its choice (`app.use('/auth', usher.console)`):
 * hashed assets under `assets/` with a year's cache, and index.html (no-cache) for the console's pages. The
 * page learns where it is mounted and where the API is from two <meta> tags written here, so no inline script
 * is needed and helmet's CSP stays as it is.
 *
 * Not part of Usher's API router: these are static pages, not endpoints; test/openapi.test.ts says so.
 */
export function consoleRouter(opts: { apiBase: string; dir?: string }): Router {
  const dir = opts.dir ?? consoleDir();
  const router = Router();
  let template: string | undefined;
  const pages = new Map<string, string>();
  const page = (base: string): string | undefined => {
    if (template === undefined) {
      const file = join(dir, 'index.html');
      if (!existsSync(file)) return undefined;
      template = readFileSync(file, 'utf8');
    }
    let html = pages.get(base);
    if (html === undefined) {
      // The build writes asset URLs as ./assets/...; a page at any depth needs them from the mount point.
      html = template
        .replaceAll('"./assets/', `"${attribute(base)}/assets/`)
        .replace('<meta name="usher-base" content="">', `<meta name="usher-base" content="${attribute(base)}">`)
        .replace('<meta name="usher-api" content="">', `<meta name="usher-api" content="${attribute(opts.apiBase)}">`);
      // A host mounting the console under many paths would grow this map; a handful is the real case.
      if (pages.size < 16) pages.set(base, html);
    }
    return html;
  };
  router.use(
    '/assets',
    express.static(join(dir, 'assets'), { immutable: true, maxAge: '365d', index: false, fallthrough: true, redirect: false }),
  );
  const servePage = (req: Request, res: express.Response) => {
    const html = page(req.baseUrl);
    res.set('Cache-Control', 'no-cache');
    if (html === undefined) {
      res.status(503).type('text/plain').send('The console is not built: run `npm run build:console`.\n');
      return;
    }
    res.type('html').send(html);
  };
  for (const path of CONSOLE_PAGES) router.get(path, servePage);
  return router;
}

/** GET /console-config: what the console's public pages need to know before anyone is signed in. */
export function consoleConfigEndpoints(config: UsherConfig): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/console-config',
      tag: 'Console',
      summary: "What the console's sign-in and connect pages need",
      description:
        'The connect page\'s targets (`connect.appUrl`, `connect.webUrl`; null when unset), the shortest password accepted, and, given the `rd` a forward-auth redirect carried, the URL to go back to after signing in when it is safe (the same rules as `/verify`), else null.',
      access: 'public',
      query: z.object({ rd: z.string().optional().meta({ description: 'The URL forward auth asked to come back to.' }) }),
      responses: {
        200: {
          description: 'The settings.',
          body: z
            .object({
              appUrl: z.string().nullable(),
              webUrl: z.string().nullable(),
              returnTo: z.string().nullable().meta({ description: '`rd`, when it is safe to go back to.' }),
              passwordMinLength: z.number().int().meta({ description: '`passwords.minLength`, for the forms that set a password.' }),
            })
            .strict(),
        },
      },
      handle: ({ req, query }) => {
        const loginUrl = new URL(config.forwardAuth.loginUrl ?? config.publicUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}/`);
        const returnTo = query.rd ? safeRedirect(query.rd, config.forwardAuth.redirectDomains, loginUrl) : null;
        return { body: { appUrl: config.connect.appUrl ?? null, webUrl: config.connect.webUrl ?? null, returnTo, passwordMinLength: config.passwordMinLength } };
      },
    }),
  ];
}
