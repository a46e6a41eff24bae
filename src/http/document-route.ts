import { z } from 'zod';
import { endpoint, type Endpoint } from './endpoint.js';
import type { EndpointTable } from './endpoint-table.js';
import { openApiDocument } from './openapi.js';

export const DOCUMENT_INFO = {
  title: 'Usher',
  version: '1.0.0',
  description:
    'Identity bridge for self-hosted apps: users, API keys, sessions, OIDC and proxy sign-in, forward auth. Every error is `{"error":{"code","message"}}`; `components.schemas.ErrorCode` lists every code with its status. A path Usher does not serve answers 404 `not_found`; a method a path does not offer answers 405 `request.method_not_allowed` with `Allow`.',
};

/** GET /openapi.json: the document of every endpoint in `table`, made once when first asked for. */
export function documentEndpoints(table: EndpointTable): Endpoint[] {
  // Made and serialised once (about 100 KB): the route is public.
  let made: { count: number; text: string } | undefined;
  return [
    endpoint({
      method: 'get',
      path: '/openapi.json',
      tag: 'Meta',
      summary: 'This API, as an OpenAPI 3.1 document',
      access: 'public',
      responses: { 200: { description: 'The document.', body: z.object({ openapi: z.string() }).loose() } },
      handle: ({ res }) => {
        if (made?.count !== table.mounted.length) made = { count: table.mounted.length, text: JSON.stringify(openApiDocument(table.mounted, DOCUMENT_INFO)) };
        res.type('json').send(made.text);
      },
    }),
  ];
}
