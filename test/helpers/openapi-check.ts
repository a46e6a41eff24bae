import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/**
 * Checks every answer the tests receive from a server started by the helpers against that server's own
 * `openapi.json`: the status is documented for the route, the documented headers are there, the body
 * matches its schema (error codes included). A route the document does not describe fails the test.
 */

type Doc = any;
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const realFetch = globalThis.fetch;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const API = '/api/v1/auth/';
const CONSOLE_TYPES = /^(text\/html|text\/css|text\/javascript|application\/javascript|image\/)/;

interface PathEntry {
  template: string;
  pattern: RegExp;
  item: Record<string, Doc>;
}

export class Checker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly paths: PathEntry[];
  /** Every error status and code any operation of a path lists: what its shared middleware can answer. */
  constructor(private readonly doc: Doc) {
    addFormats(this.ajv);
    this.paths = Object.entries(doc.paths as Record<string, Record<string, Doc>>).map(([template, item]) => ({
      template,
      // As Express matches: case-insensitive, an optional trailing slash.
      pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}/?$`, 'i'),
      item,
    }));
  }

  private validator(key: string, schema: Doc): ValidateFunction {
    let v = this.compiled.get(key);
    if (!v) {
      // The document's components travel with each schema, so its `#/components/...` references resolve.
      v = this.ajv.compile({ ...schema, components: this.doc.components });
      this.compiled.set(key, v);
    }
    return v;
  }

  check(method: string, path: string, status: number, headers: Headers, text: string): string | undefined {
    // The console's pages and assets (src/http/console.ts) are static files outside the API, not endpoints:
    // the document does not describe them, and test/console-serving.test.ts checks them instead.
    if (!path.startsWith(API) && CONSOLE_TYPES.test(headers.get('content-type') ?? '')) return undefined;
    const entry = this.paths.find((p) => p.pattern.test(path));
    const body = (() => {
      try {
        return text ? JSON.parse(text) : undefined;
      } catch {
        return undefined;
      }
    })();
    const code = body?.error?.code;
    if (!entry) {
      if (status === 404 && code === 'not_found') return undefined;
      // Refused before routing (a key in the URL, an invalid key): a code every operation there lists.
      const common = this.paths.filter((p) => p.template.startsWith(API)).flatMap((p) => METHODS.filter((m) => p.item[m]).map((m) => this.codesOf(p.item[m], status)));
      if (path.startsWith(API) && common.length > 0 && common.every((codes) => codes.includes(code))) return undefined;
      return `${method} ${path} answered ${status} ${code ?? ''} but the document has no such route`;
    }
    const op = entry.item[method === 'head' ? 'get' : method];
    if (!op) {
      const documented = METHODS.filter((m) => entry.item[m]).map((m) => m.toUpperCase());
      if (documented.includes('GET')) documented.push('HEAD');
      if (status === 405) {
        if (code !== 'request.method_not_allowed') return `${method} ${path}: a 405 with code ${code}`;
        const allow = (headers.get('allow') ?? '').split(/,\s*/).filter(Boolean).sort();
        if (allow.join() !== documented.sort().join()) return `${method} ${path}: Allow is "${allow}", the document says ${documented}`;
        return undefined;
      }
      // The middleware in front of the route answered first: a code some operation of the path lists.
      const listed = METHODS.some((m) => this.codesOf(entry.item[m], status).includes(code));
      return listed ? undefined : `${method} ${path} answered ${status} ${code ?? ''}; the document has no ${method.toUpperCase()} there`;
    }
    const response = op.responses[String(status)] ?? op.responses.default;
    const where = `${method.toUpperCase()} ${entry.template} ${status}`;
    if (!response) return `${where}: status not in the document (${Object.keys(op.responses).join(', ')}); body ${text.slice(0, 200)}`;
    for (const [name, header] of Object.entries((response.headers ?? {}) as Record<string, Doc>)) {
      const value = headers.get(name);
      if (value === null) {
        if (header.required) return `${where}: header ${name} missing`;
        continue;
      }
      const v = this.validator(`${where} header ${name}`, header.schema ?? {});
      if (!v(value)) return `${where}: header ${name}: ${this.ajv.errorsText(v.errors)}`;
    }
    if (method === 'head' || status === 204 || status === 302) return undefined;
    const content = response.content as Record<string, Doc> | undefined;
    if (!content) return text === '' ? undefined : `${where}: the document says no body, got ${text.slice(0, 200)}`;
    const type = (headers.get('content-type') ?? '').split(';')[0]!.trim();
    const media = content[type];
    if (!media) return `${where}: content type ${type}, the document says ${Object.keys(content).join(', ')}`;
    if (type !== 'application/json') return undefined;
    const v = this.validator(`${where} body`, media.schema);
    if (!v(body)) return `${where}: body ${text.slice(0, 300)}: ${this.ajv.errorsText(v.errors)}`;
    return undefined;
  }

  private codesOf(op: Doc, status: number): string[] {
    const schema = op?.responses?.[String(status)]?.content?.['application/json']?.schema;
    return schema?.properties?.error?.properties?.code?.enum ?? [];
  }
}

const servers = new Map<string, Checker>();
/** Responses checked so far (for the test that the check runs at all). */
export const checked = { count: 0 };

/** Checks every answer from `origin` (a server the helpers started) against `doc`, its openapi.json, from now on. */
export function checkAgainstDocument(origin: string, doc: Doc): void {
  servers.set(origin, new Checker(doc));
}

export function stopChecking(origin: string): void {
  servers.delete(origin);
}

function requestOf(input: Parameters<typeof fetch>[0], init?: RequestInit): { url: URL; method: string } {
  if (input instanceof Request) return { url: new URL(input.url), method: (init?.method ?? input.method).toLowerCase() };
  return { url: new URL(String(input)), method: (init?.method ?? 'GET').toLowerCase() };
}

/** Checks one answer from a server the helpers started (others pass); throws what does not match. */
export function checkAnswer(url: URL, method: string, status: number, headers: Headers, text: string): void {
  const checker = servers.get(url.origin);
  if (!checker) return;
  const problem = checker.check(method.toLowerCase(), url.pathname, status, headers, text);
  checked.count++;
  if (problem) throw new Error(`The answer does not match openapi.json: ${problem}`);
}

/** The fetch the tests use: the real one, then the check. */
export async function checkedFetch(input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> {
  const res = await realFetch(input, init);
  const { url, method } = requestOf(input, init);
  if (servers.has(url.origin)) checkAnswer(url, method, res.status, res.headers, await res.clone().text());
  return res;
}
