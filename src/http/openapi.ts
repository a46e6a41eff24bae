import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { Errors, type ErrorFactory } from '../errors.js';
import type { Mounted } from './endpoint-table.js';

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
}

/** Every code Usher answers, once, with its status and usual message. */
function errorCodeSchema(): Record<string, unknown> {
  const all = Object.values(Errors) as ErrorFactory[];
  return {
    type: 'string',
    description: 'Every error code Usher answers, with its HTTP status (x-status) and usual message.',
    oneOf: all.map((f) => ({ const: f.code, description: f.message, 'x-status': f.status })),
  };
}

/** Codes whose answers may carry Retry-After. */
const RETRY_AFTER = new Set([Errors.tooManyAttempts.code, Errors.busy.code]);

/** The error body a route answers with one status: its code is one of `codes`. */
function errorBody(codes: string[]) {
  return z.object({
    error: z.object({
      code: z.enum(codes as [string, ...string[]]),
      message: z.string(),
    }),
  });
}

/** `/users/{id}` with its method → `getUsersById`-like ids, stable and unique. */
function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/api\/v1\/auth/, '')
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith('{') ? `by-${part.slice(1, -1)}` : part))
    .join('-')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1));
  return method + (words.join('') || 'Root');
}

function responsesOf(m: Mounted): ZodOpenApiResponsesObject {
  const out: ZodOpenApiResponsesObject = {};
  for (const [status, spec] of Object.entries(m.endpoint.responses)) {
    const headers = spec.headers
      ? z.object(Object.fromEntries(Object.entries(spec.headers).map(([name, h]) => [name, h.schema.meta({ description: h.description })])))
      : undefined;
    out[status as `2${string}`] = {
      description: spec.description,
      ...(headers ? { headers } : {}),
      ...(spec.body ? { content: { [spec.contentType ?? 'application/json']: { schema: spec.body } } } : {}),
    };
  }
  const byStatus = new Map<number, ErrorFactory[]>();
  for (const f of m.errors) byStatus.set(f.status, [...(byStatus.get(f.status) ?? []), f]);
  for (const [status, factories] of [...byStatus].sort(([a], [b]) => a - b)) {
    const codes = [...new Set(factories.map((f) => f.code))].sort();
    out[String(status) as `4${string}`] = {
      description: codes.join(', '),
      ...(factories.some((f) => RETRY_AFTER.has(f.code)) ? { headers: z.object({ 'Retry-After': z.string().regex(/^\d+$/).optional().meta({ description: 'Seconds to wait.' }) }) } : {}),
      content: { 'application/json': { schema: errorBody(codes) } },
    };
  }
  return out;
}

function operationOf(m: Mounted): ZodOpenApiOperationObject {
  const e = m.endpoint;
  const access = e.access === 'public' ? 'Public.' : e.access === 'signed-in' ? `Signed in; ${e.capabilities ?? 'any user'}.` : `Capability \`${e.access}\`.`;
  const params: Record<string, unknown> = {};
  if (e.params) params.path = e.params;
  if (e.query) params.query = e.query;
  return {
    operationId: operationId(e.method, m.path),
    summary: e.summary,
    description: [e.description, access].filter(Boolean).join('\n\n'),
    tags: [e.tag],
    'x-usher-access': e.access,
    ...(e.access === 'public' ? { security: [] } : {}),
    ...(Object.keys(params).length ? { requestParams: params } : {}),
    ...(e.body
      ? { requestBody: { required: true, content: { [e.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: e.body } } } }
      : {}),
    responses: responsesOf(m),
  } as ZodOpenApiOperationObject;
}

/** The OpenAPI 3.1 document of every mounted endpoint. */
export function openApiDocument(mounted: readonly Mounted[], info: DocumentInfo): Record<string, unknown> {
  const paths: ZodOpenApiPathsObject = {};
  for (const m of mounted) {
    paths[m.path] ??= {};
    (paths[m.path] as Record<string, unknown>)[m.endpoint.method] = operationOf(m);
  }
  const doc = createDocument({
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, description: info.description },
    security: [{ apiKey: [] }, { bearer: [] }, { session: [] }],
    tags: [...new Set(mounted.map((m) => m.endpoint.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key', description: "The user's API key." },
        bearer: { type: 'http', scheme: 'bearer', description: "The user's API key, or an app's device token (`usd_...`), as a bearer token." },
        session: { type: 'apiKey', in: 'cookie', name: 'usher.sid', description: 'The session cookie a password or OIDC login sets.' },
      },
    },
  }) as unknown as Record<string, unknown>;
  const components = doc.components as Record<string, Record<string, unknown>>;
  components.schemas = { ...components.schemas, ErrorCode: errorCodeSchema() };
  return doc;
}
