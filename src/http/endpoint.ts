import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { AuthUser } from '../authn/types.js';
import type { ErrorFactory } from '../errors.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * Who may call: anyone (`public`); any signed-in user, the handler deciding the rest (`signed-in`, with
 * `capabilities` naming what it checks); or one capability of the policy, `object:action`.
 */
export type Access = 'public' | 'signed-in' | `${string}:${string}`;

export interface ResponseSpec {
  description: string;
  /** The body's schema; JSON unless `contentType` says otherwise. None: an empty body. */
  body?: z.ZodType;
  contentType?: string;
  /** Headers this answer always carries. */
  headers?: Record<string, { description: string; schema: z.ZodType }>;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface Input<P, Q, B, A extends Access> {
  req: Request;
  res: Response;
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  caller: A extends 'public' ? AuthUser | undefined : AuthUser;
}

/** What a handler answers: the framework writes it. A handler that wrote the response itself returns nothing. */
export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A 302 to this URL. */
  redirect?: string;
}

export interface EndpointSpec<P extends z.ZodType | undefined, Q extends z.ZodType | undefined, B extends z.ZodType | undefined, A extends Access> {
  method: Method;
  /** The path under the mount's base, in OpenAPI's form: `/users/{id}`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  access: A;
  /** For `signed-in`: the capabilities the handler checks, for the document. */
  capabilities?: string;
  params?: P;
  query?: Q;
  body?: B;
  /** `form` for an `application/x-www-form-urlencoded` body (an identity provider's back-channel post). */
  bodyType?: 'json' | 'form';
  /** The answers it gives besides errors, by status. */
  responses: Record<number, ResponseSpec>;
  /** The errors this route answers itself, besides those every route of its mount can answer. */
  errors?: readonly ErrorFactory[];
  /** Runs after the access check, before anything is parsed (the login's CSRF check). */
  before?: (req: Request) => void;
  /** Rewrites the raw JSON body before it is parsed (react-admin's whole-record PUT). */
  prepareBody?: (raw: Record<string, unknown>, input: { req: Request; params: Out<P>; caller: Input<P, Q, B, A>['caller'] }) => Promise<Record<string, unknown>> | Record<string, unknown>;
  handle: (input: Input<P, Q, B, A>) => Promise<Reply | void> | Reply | void;
}

/** An endpoint with its types erased, as the table holds it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Endpoint = EndpointSpec<any, any, any, Access>;

/** Declares one endpoint; the types of its handler's input follow from its schemas. */
export function endpoint<
  A extends Access,
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(spec: EndpointSpec<P, Q, B, A>): Endpoint {
  return spec as unknown as Endpoint;
}
