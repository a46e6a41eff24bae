import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { Errors } from '../errors.js';
import { errorHandler, notFound } from '../http/error-handler.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import type { Registry } from 'prom-client';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Answers the registry in Prometheus's text format; with a token, only to `Authorization: Bearer <token>`
 * (compared as digests in constant time, so neither the token's content nor its length leaks).
 * Rejects with the 401 to answer.
 */
export function metricsResponder(registry: Registry, token: string | undefined): (req: Request, res: Response) => Promise<void> {
  const expected = token === undefined ? undefined : digest(token);
  return async (req, res) => {
    if (expected) {
      const given = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '')?.[1];
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        throw Errors.unauthenticated('The metrics need the bearer token of metrics.token: Authorization: Bearer <token>.');
      }
    }
    const text = await registry.metrics();
    res.set('Content-Type', registry.contentType).set('Cache-Control', 'no-store').send(text);
  };
}

/** The same as an Express handler, for a host app to mount. */
export function metricsHandler(registry: Registry, token: string | undefined): RequestHandler {
  const respond = metricsResponder(registry, token);
  return (req, res, next) => {
    respond(req, res).catch(next);
  };
}

/** The second listener of `metrics.listen`: /metrics and nothing else. Resolves once it listens. */
export function listenForMetrics(handler: RequestHandler, address: { host: string; port: number }, log: Logger): Promise<Server> {
  const app = express();
  app.disable('x-powered-by');
  app.route('/metrics').get(handler).all(methodNotAllowed);
  app.use(notFound);
  app.use(errorHandler(log));
  return new Promise((resolve, reject) => {
    const server = app.listen(address.port, address.host);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      log.info({ address: server.address() }, 'metrics listening');
      resolve(server);
    });
  });
}
