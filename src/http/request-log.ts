import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { holdsApiKey } from '../crypto/api-keys.js';

/** The path without its query string, and without any segment that holds something shaped like a key. */
function loggedPath(url: string): string {
  const path = url.split('?', 1)[0]!;
  if (!/us[kd]_|%/i.test(path)) return path;
  return path
    .split('/')
    .map((segment) => (holdsApiKey(segment) ? '[redacted]' : segment))
    .join('/');
}

/** One JSON line per request. The path is logged without its query string, and no header is logged. */
export function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const line = {
        method: req.method,
        path: loggedPath(req.originalUrl),
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
