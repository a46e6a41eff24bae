import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { AppError, Errors } from '../errors.js';
import { bodyParserError } from './body.js';

/** Known errors become `{ error: { code, message } }`; anything else a generic 500, logged with its stack, never sent. */
export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      // Too late for an error answer (a store lost while the response was streaming out): no stack on stderr
      // from Express's last-resort handler, only our log, and a response cut short rather than ended as if whole.
      if (err instanceof AppError) {
        log.warn({ code: err.code, method: req.method, path: req.path }, 'failed after the response was sent');
        if (!res.writableEnded) res.destroy();
        return;
      }
      return next(err);
    }
    let known = err instanceof AppError ? err : bodyParserError(err);
    if (!known) {
      const status = (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        known = new AppError(status, 'request.invalid', 'The request could not be handled.');
      }
    }
    if (!known) {
      log.error({ err, method: req.method, path: req.path }, 'unhandled error');
      res.status(500).json({ error: { code: 'internal', message: 'Internal server error.' } });
      return;
    }
    res.set(known.headers).status(known.status).json({ error: { code: known.code, message: known.message } });
  };
}

/** A JSON 404 for anything no route took. */
export function notFound(_req: Request, _res: Response, next: NextFunction) {
  next(Errors.notFound());
}
