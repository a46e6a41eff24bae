import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

/** One JSON line per request. The path is logged without its query string, and no header is logged. */
export function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const line = {
        method: req.method,
        path: req.originalUrl.split('?', 1)[0],
        status: res.statusCode,
        ms: Math.round(ms * 100) / 100,
        ip: req.ip,
        userId: req.user?.id,
        auth: req.user?.authMethod,
      };
      if (res.statusCode >= 500) log.error(line, 'request');
      else log.info(line, 'request');
    });
    next();
  };
}
