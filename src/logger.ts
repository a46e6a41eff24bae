import { pino, type Logger } from 'pino';
import type { LogLevel } from './config/schema.js';

/**
 * Structured JSON logs on stdout, one object per line, `time` in epoch milliseconds.
 * Call sites log chosen fields only (never a header, body or query string), which is what keeps
 * secrets out; pino's redaction would double the cost of every request's log line.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'usher' } }, destination as pino.DestinationStream | undefined);
}
