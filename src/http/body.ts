import express, { type NextFunction, type Request, type Response } from 'express';
import { Errors } from '../errors.js';

export const BODY_LIMIT = '100kb';
const parseJson = express.json({ limit: BODY_LIMIT, strict: true, type: () => true });

/** Whether the request announces a body (a length above 0, or chunked). */
export const hasBody = (req: Request) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/** JSON only: a request with a body must say application/json (else 415); at most 100 KB (else 413). */
export function jsonBody(req: Request, res: Response, next: NextFunction) {
  if (!hasBody(req)) {
    req.body = undefined;
    return next();
  }
  if (!req.is('application/json')) return next(Errors.unsupportedMediaType());
  parseJson(req, res, next);
}

/** Maps body-parser's errors to our JSON errors. */
export function bodyParserError(err: unknown) {
  const type = (err as { type?: string })?.type;
  switch (type) {
    case 'entity.too.large':
      return Errors.tooLarge();
    case 'entity.parse.failed':
      return Errors.malformedJson();
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return Errors.unsupportedMediaType('Unsupported body encoding or charset; send UTF-8 JSON.');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
      return Errors.invalidInput('The request body could not be read.');
    default:
      return undefined;
  }
}

/** `Cache-Control: no-store`: answers about people (keys, sessions, profiles) are never cached. */
export function noStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
}
