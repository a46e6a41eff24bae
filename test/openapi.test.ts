import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { Errors, type ErrorFactory } from '../src/errors.js';
import { CONSOLE_PAGES } from '../src/http/console.js';
import { startServer, type TestServer } from './helpers/app.js';
import { client, errorCode } from './helpers/http.js';
import { Checker, checked } from './helpers/openapi-check.js';
import { ROOT } from './helpers/process.js';

type Doc = any;
const BASE = '/api/v1/auth';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** Every (METHOD, path) a router answers, in the document's spelling (`/users/{id}`). */
function routesOf(router: Router): string[] {
  const out: string[] = [];
  for (const layer of router.stack as { route?: { path: string; methods: Record<string, boolean> } }[]) {
    if (!layer.route) continue;
    const path = layer.route.path.replace(/:(\w+)/g, '{$1}');
    for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.push(`${method.toUpperCase()} ${path}`);
  }
  return out;
}

function operationsOf(doc: Doc): string[] {
  return Object.entries(doc.paths as Record<string, Doc>).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`));
}

/** The routes a router serves that the document does not describe. */
const undocumented = (router: Router, doc: Doc) => routesOf(router).filter((r) => !operationsOf(doc).includes(r));

describe('the OpenAPI document', () => {
  let server: TestServer;
  let doc: Doc;
  beforeAll(async () => {
    // Every optional route on: metrics on this listener, and an OIDC provider.
    server = await startServer('sqlite', {
      settings: {
        metrics: { enabled: true, token: 'metrics-token-0123456789-0123456789-0123456789' },
        server: { publicUrl: 'http://127.0.0.1:8787' },
        oidc: { providers: [{ id: 'kc', issuer: 'http://127.0.0.1:9/realms/x', clientId: 'usher', clientSecret: 's' }] },
      },
    });
    const res = await fetch(`${server.url}${BASE}/openapi.json`);
    expect(res.status).toBe(200);
    doc = await res.json();
  });
  afterAll(() => server.close());

  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('describes every route the API router and the standalone app serve', () => {
    expect(undocumented(server.usher.router, doc)).toEqual([]);
    const app = buildApp(server.usher);
    expect(undocumented(app.router as unknown as Router, doc)).toEqual([]);
    // And nothing it describes is missing from them.
    const served = [...routesOf(server.usher.router), ...routesOf(app.router as unknown as Router)];
    expect(operationsOf(doc).filter((op) => !served.includes(op))).toEqual([]);
    expect(operationsOf(doc)).toContain('GET /metrics');
    expect(operationsOf(doc)).toContain(`GET ${BASE}/oidc/{id}/callback`);
  });

  it('leaves the console out: its pages are static files on their own router, not endpoints', () => {
    // The rule above covers every route of usher.router and of the app's own router. The console
    // (usher.console, src/http/console.ts) is mounted beside them with app.use(): index.html for a fixed
    // list of pages and hashed assets, no API; its one endpoint, GET /console-config, is declared.
    const app = buildApp(server.usher);
    const served = [...routesOf(server.usher.router), ...routesOf(app.router as unknown as Router)];
    for (const page of CONSOLE_PAGES) expect(served).not.toContain(`GET ${page}`);
    expect(routesOf(server.usher.console).sort()).toEqual(CONSOLE_PAGES.map((p) => `GET ${p}`).sort());
    expect(operationsOf(doc)).toContain(`GET ${BASE}/console-config`);
  });

  it('catches a route registered by hand, without a declaration', () => {
    server.usher.router.get(`${BASE}/by-hand`, (_req, res) => {
      res.json({ ok: true });
    });
    expect(undocumented(server.usher.router, doc)).toEqual([`GET ${BASE}/by-hand`]);
    // And the answer check refuses its answers.
    const json = new Headers({ 'content-type': 'application/json' });
    expect(new Checker(doc).check('get', `${BASE}/by-hand`, 200, json, '{"ok":true}')).toMatch(/the document has no such route/);
  });

  it('names the three security schemes and leaves the public routes open', () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer', 'session']);
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Api-Key' });
    expect(doc.components.securitySchemes.session).toMatchObject({ type: 'apiKey', in: 'cookie', name: 'usher.sid' });
    expect(doc.paths[`${BASE}/login`].post.security).toEqual([]);
    expect(doc.paths[`${BASE}/users`].get.security).toBeUndefined();
    expect(doc.paths[`${BASE}/users`].get['x-usher-access']).toBe('users:list');
  });

  it('lists every error code once, with its status', () => {
    const listed = doc.components.schemas.ErrorCode.oneOf as { const: string; 'x-status': number }[];
    const all = Object.values(Errors) as ErrorFactory[];
    expect(listed.map((e) => e.const).sort()).toEqual(all.map((f) => f.code).sort());
    for (const f of all) expect(listed.find((e) => e.const === f.code)!['x-status']).toBe(f.status);
  });

  it('lists under each route the codes it can answer, by status', () => {
    const del = doc.paths[`${BASE}/users/{id}`].delete.responses;
    expect(del['409'].content['application/json'].schema.properties.error.properties.code.enum).toEqual(['user.cannot_delete_self', 'user.last_admin']);
    expect(del['404'].content['application/json'].schema.properties.error.properties.code.enum).toEqual(['user.not_found']);
    expect(del['401'].content['application/json'].schema.properties.error.properties.code.enum).toContain('auth.unauthenticated');
    // A public GET answers no 401 unauthenticated of its own, nor a CSRF refusal.
    const status = doc.paths[`${BASE}/status`].get.responses;
    expect(status['403'].content['application/json'].schema.properties.error.properties.code.enum).not.toContain('auth.csrf');
    expect(doc.paths[`${BASE}/users`].get.responses['200'].headers['X-Total-Count']).toMatchObject({ required: true });
  });

  it('is the document the answer check uses, and the check has run', async () => {
    const before = checked.count;
    const reply = await client(server.url).get('/api/v1/auth/status');
    expect(reply.status).toBe(200);
    expect(checked.count).toBe(before + 1);
  });
});

describe('the answer check', () => {
  let doc: Doc;
  let checker: Checker;
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite');
    doc = await (await fetch(`${server.url}${BASE}/openapi.json`)).json();
    checker = new Checker(doc);
  });
  afterAll(() => server.close());

  const json = (extra: Record<string, string> = {}) => new Headers({ 'content-type': 'application/json; charset=utf-8', ...extra });
  const user = {
    id: 1,
    username: 'a',
    name: null,
    email: null,
    role: 'admin',
    organizationId: null,
    orgRole: null,
    active: true,
    hasPassword: true,
    authSource: 'local',
    passwordLogin: true,
    createdAt: '2026-11-28T00:00:00.000Z',
    updatedAt: '2026-11-28T00:00:00.000Z',
    lastActiveAt: null,
    lastLoginAt: null,
    recoveryCode: 'none',
  };
  const err = (code: string) => JSON.stringify({ error: { code, message: 'x' } });

  it('passes an answer that matches', () => {
    expect(checker.check('get', `${BASE}/users/1`, 200, json(), JSON.stringify({ ...user, grants: [] }))).toBeUndefined();
    expect(checker.check('get', `${BASE}/users`, 200, json({ 'x-total-count': '1' }), JSON.stringify([user]))).toBeUndefined();
    expect(checker.check('delete', `${BASE}/users/2`, 409, json(), err('user.last_admin'))).toBeUndefined();
  });

  it.each([
    ['a status the route does not answer', 'get', `${BASE}/users/1`, 201, {}, JSON.stringify(user), /status not in the document/],
    ['a body off its schema', 'get', `${BASE}/users/1`, 200, {}, JSON.stringify({ ...user, password: 'x' }), /must NOT have additional properties/],
    ['a missing field', 'get', `${BASE}/me`, 200, {}, JSON.stringify({ ...user, role: undefined }), /must have required property 'role'/],
    ['a missing X-Total-Count', 'get', `${BASE}/users`, 200, {}, JSON.stringify([user]), /header X-Total-Count missing/],
    ['an error code the route does not list', 'delete', `${BASE}/users/2`, 409, {}, err('setup.already_done'), /must be equal to one of the allowed values/],
    ['an undocumented path', 'get', `${BASE}/nope`, 200, {}, '{}', /no such route/],
    ['a 405 with the wrong Allow', 'post', `${BASE}/me/sessions`, 405, { allow: 'GET, POST' }, err('request.method_not_allowed'), /Allow is/],
  ])('refuses %s', (_what, method, path, status, headers, body, problem) => {
    expect(checker.check(method, path, status, json(headers), body)).toMatch(problem);
  });

  it('accepts the 404 of an unknown path and a right 405', () => {
    expect(checker.check('get', `${BASE}/nope`, 404, json(), err('not_found'))).toBeUndefined();
    expect(checker.check('post', `${BASE}/me/sessions`, 405, json({ allow: 'GET, HEAD' }), err('request.method_not_allowed'))).toBeUndefined();
  });

  it('answers a real 405 as the document says', async () => {
    const reply = await client(server.url).post('/api/v1/auth/me/sessions');
    expect(reply.status).toBe(405);
    expect(errorCode(reply)).toBe('request.method_not_allowed');
    expect(reply.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('docs/api.md', () => {
  let doc: Doc;
  let server: TestServer;
  const text = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
  beforeAll(async () => {
    server = await startServer('sqlite', {
      settings: {
        server: { publicUrl: 'http://127.0.0.1:8787' },
        oidc: { providers: [{ id: 'kc', issuer: 'http://127.0.0.1:9/realms/x', clientId: 'usher', clientSecret: 's' }] },
      },
    });
    doc = await (await fetch(`${server.url}${BASE}/openapi.json`)).json();
  });
  afterAll(() => server.close());

  /** The endpoint table's rows: `| \`GET /users/{id}\` | who | answer |`, `PUT` or `PATCH` rows counted twice. */
  function tableRows() {
    const rows: { op: string; who: string; answer: string }[] = [];
    for (const line of text.split('\n')) {
      const m = /^\| `((?:[A-Z]+`? or `?)*[A-Z]+) (\/[^`?]*)[^`]*` \| (.*?) \| (.*) \|$/.exec(line);
      if (!m) continue;
      for (const method of m[1]!.split(/`? or `?/)) rows.push({ op: `${method} ${BASE}${m[2]}`, who: m[3]!, answer: m[4]! });
    }
    return rows;
  }

  it('has one row for every operation under /api/v1/auth, and none other', () => {
    const documented = operationsOf(doc).filter((op) => op.split(' ')[1]!.startsWith(BASE));
    expect(tableRows().map((r) => r.op).sort()).toEqual(documented.sort());
  });

  it('names the capability and the success statuses the document gives', () => {
    for (const row of tableRows()) {
      const [method, path] = row.op.split(' ');
      const op = doc.paths[path!][method!.toLowerCase()];
      const access = op['x-usher-access'] as string;
      if (access.includes(':')) expect(row.who, row.op).toContain(`\`${access}\``);
      if (access === 'public') expect(row.who, row.op).not.toMatch(/`\w+:[\w-]+`/);
      const success = Object.keys(op.responses).filter((s) => s < '400');
      for (const status of success) expect(row.answer, `${row.op} ${status}`).toContain(`\`${status}`);
    }
  });

  it('lists every error code with the status the document gives', () => {
    const listed = doc.components.schemas.ErrorCode.oneOf as { const: string; 'x-status': number }[];
    const rows = new Map<string, number>();
    for (const m of text.matchAll(/^\| `([a-z_.]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
    rows.delete('internal');
    expect([...rows.keys()].sort()).toEqual(listed.map((e) => e.const).sort());
    for (const e of listed) expect(rows.get(e.const), e.const).toBe(e['x-status']);
  });
});
