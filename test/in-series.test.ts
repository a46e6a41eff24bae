import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { inSeries } from '../src/http/in-series.js';

const req = {} as Request;
const res = {} as Response;

/** Runs `handler` and answers what it passed to next (undefined: called without error; 'not called'). */
function run(handler: RequestHandler): Promise<unknown> {
  return new Promise((resolve) => {
    const next: NextFunction = (err?: unknown) => resolve(err);
    void handler(req, res, next);
    setImmediate(() => resolve('not called'));
  });
}

describe('inSeries', () => {
  it('runs each middleware in order, the next one when the one before calls next, then next once', async () => {
    const order: string[] = [];
    const handler = inSeries(
      (_q, _s, next) => {
        order.push('a');
        next();
      },
      (_q, _s, next) => {
        order.push('b');
        // Later, as a middleware that waits for I/O would.
        queueMicrotask(() => next());
      },
      (_q, _s, next) => {
        order.push('c');
        next();
      },
    );
    expect(await run(handler)).toBeUndefined();
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('skips the rest after an error passed to next, thrown or rejected', async () => {
    const passed = new Error('passed');
    const thrown = new Error('thrown');
    const reached: string[] = [];
    const after: RequestHandler = (_q, _s, next) => {
      reached.push('after');
      next();
    };
    expect(await run(inSeries((_q, _s, next) => next(passed), after))).toBe(passed);
    expect(
      await run(
        inSeries(
          (_q, _s, next) => next(),
          () => {
            throw thrown;
          },
          after,
        ),
      ),
    ).toBe(thrown);
    const rejected = new Error('rejected');
    expect(await run(inSeries(async () => Promise.reject(rejected), after))).toBe(rejected);
    expect(reached).toEqual([]);
  });

  it('leaves a request alone that a middleware answers without calling next', async () => {
    const reached: string[] = [];
    const handler = inSeries(
      () => undefined,
      (_q, _s, next) => {
        reached.push('second');
        next();
      },
    );
    expect(await run(handler)).toBe('not called');
    expect(reached).toEqual([]);
  });

  it('is the middleware itself when given one', () => {
    const only: RequestHandler = (_q, _s, next) => next();
    expect(inSeries(only)).toBe(only);
  });
});
