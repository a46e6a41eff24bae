import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { AuthUser } from '../authn/types.js';
import { Errors, type ErrorFactory } from '../errors.js';
import type { Endpoint, Reply } from './endpoint.js';
import { methodNotAllowed } from './method-not-allowed.js';
import { objectBody, parseWith } from './validate.js';

/** One endpoint as served: its full path (OpenAPI form) and every error it can answer. */
export interface Mounted {
  endpoint: Endpoint;
  path: string;
  errors: readonly ErrorFactory[];
}

export interface MountOptions {
  /** Errors the middleware in front of these routes can answer (body parser, authentication chain...). */
  errors: readonly ErrorFactory[];
  /** Middleware of these paths alone, run for every method before the method is looked at. */
  use?: readonly RequestHandler[];
  /** Middleware of the declared methods alone, after `use` (a 405 never runs it). */
  before?: readonly RequestHandler[];
}

/** `/users/{id}` → `/users/:id` */
const expressPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

const UNSAFE = new Set(['post', 'put', 'patch', 'delete']);
const parseForm = express.urlencoded({ extended: false, limit: '100kb' });

/**
 * The query string as name → value, or → values when repeated. Read from the raw URL rather than Express's
 * `req.query`: qs keeps only 20 array items and nests `a[b]` keys, which no endpoint wants.
 */
function queryOf(req: Request): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  const at = req.originalUrl.indexOf('?');
  if (at === -1) return out;
  for (const [name, value] of new URLSearchParams(req.originalUrl.slice(at + 1))) {
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (typeof seen === 'string') out[name] = [seen, value];
    else seen.push(value);
  }
  return out;
}

function send(res: Response, reply: Reply | void): void {
  if (reply === undefined) return;
  if (reply.headers) res.set(reply.headers);
  if (reply.redirect !== undefined) return res.redirect(reply.status ?? 302, reply.redirect);
  res.status(reply.status ?? 200);
  if (reply.body === undefined) res.end();
  else res.json(reply.body);
}

/**
 * Every route Usher serves, registered from its declaration: the access check, parsing of path, query and
 * body (400 naming the field), the answer, and 405 with `Allow` for a method the path does not offer.
 * The OpenAPI document is made from the same list.
 */
export class EndpointTable {
  readonly mounted: Mounted[] = [];
  /** The paths each router routes already: a path split over two mounts would answer 405 to the second's methods. */
  private readonly served = new WeakMap<Router, Set<string>>();

  constructor(private readonly allowed: (caller: AuthUser, object: string, action: string) => boolean) {}

  mount(router: Router, base: string, endpoints: readonly Endpoint[], options: MountOptions): void {
    const byPath = new Map<string, Endpoint[]>();
    const served = this.served.get(router) ?? new Set<string>();
    this.served.set(router, served);
    for (const e of endpoints) {
      const path = base + e.path;
      if (served.has(path)) throw new Error(`${path} is mounted twice on one router: declare all its methods in one mount`);
      // The same routes on a second app (buildApp called again) are described once.
      if (!this.mounted.some((m) => m.path === path && m.endpoint.method === e.method)) this.mounted.push({ endpoint: e, path, errors: this.errorsOf(e, options.errors) });
      byPath.set(path, [...(byPath.get(path) ?? []), e]);
    }
    for (const [path, list] of byPath) {
      if (new Set(list.map((e) => e.method)).size !== list.length) throw new Error(`${path}: a method is declared twice`);
      served.add(path);
      const route = router.route(expressPath(path));
      if (options.use?.length) route.all(...options.use);
      const before = options.before ?? [];
      for (const e of list) {
        if (e.bodyType === 'form') route[e.method](...before, parseForm, this.handlerFor(e));
        else route[e.method](...before, this.handlerFor(e));
      }
      route.all(methodNotAllowed);
    }
  }

  /** The route's own errors, those of its access rule and parsing, and those of the middleware in front. */
  private errorsOf(e: Endpoint, common: readonly ErrorFactory[]): ErrorFactory[] {
    const all = new Set<ErrorFactory>(common);
    if (e.access !== 'public') all.add(Errors.unauthenticated);
    if (e.access !== 'public' && e.access !== 'signed-in') all.add(Errors.forbidden);
    if (e.params || e.query || e.body) all.add(Errors.invalidInput);
    if (!UNSAFE.has(e.method)) all.delete(Errors.csrf);
    for (const f of e.errors ?? []) all.add(f);
    return [...all];
  }

  private handlerFor(e: Endpoint): RequestHandler {
    const capability = e.access === 'public' || e.access === 'signed-in' ? undefined : e.access.split(':');
    const [object, action] = capability ?? [];
    const allowed = this.allowed;
    const simple = !e.params && !e.query && !e.body && !e.before;
    return (req: Request, res: Response, next: NextFunction) => {
      try {
        const caller = req.user;
        if (e.access !== 'public') {
          if (!caller) throw Errors.unauthenticated();
          if (object !== undefined && !allowed(caller, object, action!)) throw Errors.forbidden();
        }
        // The common case (GET /me): no parsing, no promise unless the handler makes one.
        if (simple) {
          const reply = e.handle({ req, res, params: undefined, query: undefined, body: undefined, caller });
          if (reply instanceof Promise) reply.then((r) => send(res, r), next);
          else send(res, reply);
          return;
        }
        e.before?.(req);
        const params = e.params ? parseWith(e.params, req.params, 'params') : undefined;
        const query = e.query ? parseWith(e.query, queryOf(req), 'query') : undefined;
        if (!e.body) {
          Promise.resolve(e.handle({ req, res, params, query, body: undefined, caller })).then((r) => send(res, r), next);
          return;
        }
        const raw = e.bodyType === 'form' ? { ...(req.body as Record<string, unknown> | undefined) } : objectBody(req.body);
        Promise.resolve(e.prepareBody ? e.prepareBody(raw, { req, params, caller }) : raw)
          .then((prepared) => e.handle({ req, res, params, query, body: parseWith(e.body, prepared), caller }))
          .then((r) => send(res, r), next);
      } catch (err) {
        next(err);
      }
    };
  }
}
