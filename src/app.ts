import express, { type Express } from 'express';
import type { Usher } from './index.js';
import { compileTrustedProxies } from './config/trusted-proxies.js';
import { errorHandler, notFound } from './http/error-handler.js';
import { inSeries } from './http/in-series.js';
import { serverEndpoints } from './server-routes.js';
import { requestLog } from './http/request-log.js';
import { securityHeaders } from './http/security-headers.js';

/** The standalone app: security headers, request log, health checks, Usher's routes and the console. No listen. */
export function buildApp(usher: Usher): Express {
  const app = express();
  app.disable('x-powered-by');
  // API answers are no-store, so an ETag (a hash of every body) would never be revalidated.
  app.set('etag', false);
  app.set('query parser', 'simple');
  // X-Forwarded-* (client address, HTTPS) is believed only from the configured proxies.
  app.set('trust proxy', compileTrustedProxies(usher.config.trustedProxies));
  const metrics = usher.metrics;
  // One layer for what every response gets: each layer Express walks costs on every request.
  app.use(inSeries(securityHeaders(), requestLog(usher.log), ...(metrics ? [metrics.timeRequests] : [])));
  app.use(usher.router);
  // With metrics.listen, /metrics is served there only; else here, behind metrics.token (config requires one).
  // After the API's router, so that API requests are not matched against these first.
  usher.endpoints.mount(app, '', serverEndpoints(usher, metrics && usher.config.metrics.listen === undefined ? metrics.respond : undefined), { errors: [] });
  // The console's pages and assets at /; /api/* never reaches it.
  app.use(usher.console);
  app.use(notFound);
  app.use(errorHandler(usher.log));
  return app;
}
