import type { Request, Response } from 'express';
import { z } from 'zod';
import { Errors } from './errors.js';
import { endpoint, type Endpoint } from './http/endpoint.js';
import type { Usher } from './index.js';

const status = (value: string) => z.object({ status: z.literal(value) }).strict();

/** The standalone server's own routes: health checks, and /metrics when it is served here. */
export function serverEndpoints(usher: Usher, metrics: ((req: Request, res: Response) => Promise<void>) | undefined): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/healthz',
      tag: 'Meta',
      summary: 'Liveness: the process answers',
      access: 'public',
      responses: { 200: { description: 'Alive.', body: status('ok') } },
      handle: () => ({ body: { status: 'ok' } }),
    }),
    endpoint({
      method: 'get',
      path: '/readyz',
      tag: 'Meta',
      summary: 'Readiness: the database answers',
      access: 'public',
      responses: { 200: { description: 'Ready.', body: status('ready') } },
      errors: [Errors.unavailable],
      handle: async () => {
        try {
          await usher.ready();
        } catch (err) {
          usher.log.warn({ err }, 'readiness check failed');
          throw Errors.unavailable('The database does not answer.');
        }
        return { body: { status: 'ready' } };
      },
    }),
    ...(metrics
      ? [
          endpoint({
            method: 'get',
            path: '/metrics',
            tag: 'Meta',
            summary: 'Prometheus metrics',
            description: 'Only with `metrics.enabled` and no `metrics.listen`; needs `Authorization: Bearer <metrics.token>`.',
            access: 'public',
            responses: { 200: { description: "Prometheus's text format.", contentType: 'text/plain', body: z.string() } },
            errors: [Errors.unauthenticated],
            handle: ({ req, res }) => metrics(req, res),
          }),
        ]
      : []),
  ];
}
