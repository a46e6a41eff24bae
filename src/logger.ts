import { pino, type Logger } from 'pino';
import type { LogLevel } from './config/schema.js';

/** Structured JSON logs; anything that looks like a credential is redacted even if it slips into a log call. */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'usher' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', '*.password', 'apiKey', '*.apiKey', 'secret', '*.secret', 'headers.authorization', 'headers["x-api-key"]', 'headers.cookie'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
