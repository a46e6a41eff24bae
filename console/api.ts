import createClient from 'openapi-fetch';
import type { paths } from './api-types';

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';

/** Where the console is mounted ('' at the site's root, '/auth' when a host mounts it there), from index.html's <meta>. */
export const BASE = meta('usher-base').replace(/\/$/, '');
/** Where Usher's API is; the typed client's paths already start with /api/v1/auth. */
const API_PREFIX = '/api/v1/auth';
const apiBase = meta('usher-api') || API_PREFIX;

/** A console path ('/login') as a URL under the mount point. */
export const href = (path: string) => `${BASE}${path}`;

/**
 * The typed client: paths and bodies from openapi.json (console/api.d.ts). Same-origin, so the session
 * cookie goes along; the API's CSRF check accepts same-origin requests.
 */
export const api = createClient<paths>({
  baseUrl: apiBase === API_PREFIX ? '' : apiBase.slice(0, -API_PREFIX.length),
  credentials: 'same-origin',
});

export type User = paths['/api/v1/auth/me']['get']['responses'][200]['content']['application/json'];

/** An API refusal as the console shows it: the code, a sentence for a person, and the wait when there is one. */
export interface Problem {
  code: string;
  sentence: string;
}

const minutes = (seconds: number) => {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const m = Math.ceil(seconds / 60);
  return m < 90 ? `${m} minutes` : `${Math.ceil(m / 60)} hours`;
};

/** Sentences for the codes a person meets in the console; anything else falls back to the server's message. */
const SENTENCES: Record<string, string | ((wait: string | null) => string)> = {
  // The API answers the same for a wrong password and a disabled account, on purpose: so does this sentence.
  'auth.invalid_credentials': 'That username and password do not match an account that can sign in. Check both and try again; if they are right, the account may be disabled: ask your administrator.',
  'auth.too_many_attempts': (wait) =>
    wait ? `Too many attempts. For your safety, wait ${wait} before trying again.` : 'Too many attempts. For your safety, wait a while before trying again.',
  'service.busy': (wait) => `The server is busy right now. Try again in ${wait ?? 'a few seconds'}.`,
  'user.password_login_off': 'This account does not sign in with a password. Use the sign-in button of your identity provider above.',
  'auth.account_disabled': 'This account is disabled. Ask the administrator to enable it.',
  'oidc.provider_unavailable': 'The identity provider does not answer right now. Try again in a moment, or sign in with your password.',
  'auth.unauthenticated': 'You are signed out. Sign in again to continue.',
  'session.store_unavailable': 'The server cannot reach its session store right now. Try again in a moment.',
  'invite.expired': 'This invite has expired. Ask the person who sent it for a new one.',
  'invite.used_up': 'This invite has been used on as many devices as it allows. Ask the person who sent it for a new one.',
  'invite.revoked': 'This invite was cancelled by the person who sent it. Ask them for a new one.',
  'invite.replaced': 'This invite was replaced by a newer one. Use the latest link or code you were sent.',
  'oidc.login_failed': 'The identity provider did not confirm who you are. Try signing in again.',
  'oidc.invalid_state': 'That sign-in took too long or was already used. Start again.',
  'auth.not_provisioned': 'There is no account for you here yet. Ask your administrator to create one.',
  'auth.forbidden': 'Your account is not allowed to do this.',
  'user.email_taken': 'That email address is already used by another account.',
  'invite.typo': 'That code is not quite right. Check it for a mistyped character and try again.',
  'invite.invalid': 'That code does not work. Check that you copied the whole code, or ask for a new one.',
  'user.wrong_current_password': 'The current password is not right.',
  'setup.already_done': 'The first admin already exists. Sign in instead.',
  'user.username_taken': 'That username is already taken. Choose another one.',
  'user.admin_needs_password': 'An admin must have a password: admins sign in to this console. Set a password first.',
  'role.exists': 'A role of that name exists already. Choose another name.',
  'role.built_in': 'Built-in roles (user, admin) come from policies/policy.csv: they cannot be changed, renamed or deleted here.',
  'role.not_found': 'That role does not exist any more. Reload the page to see the roles as they are.',
  'api_key.name_taken': 'You have a key of that name already. Choose another name.',
  'api_key.limit': 'You have 100 scoped keys, the most there can be. Revoke one you no longer use first.',
  'api_key.not_found': 'That key does not exist any more. Reload the page to see the keys as they are.',
  'org.exists': 'An organisation of that name exists already. Choose another name.',
  'org.in_use': 'This organisation has members: say what happens to them before deleting it.',
  'org.not_found': 'That organisation does not exist any more. Reload the page to see the organisations as they are.',
  'user.not_found': 'There is no such user, or it is not yours to see.',
  'grant.exists': 'This user has a grant on that resource already: revoke it first to change its actions.',
  'grant.not_found': 'That grant is gone already. Reload to see the grants as they are.',
  'user.last_admin': 'This is the last enabled admin: make another account an admin first, or the console would have no one to run it.',
};

/** A request.invalid message names the field first ("password: must be at least 8 characters"): say it as a sentence. */
function invalidSentence(message: string | undefined): string | null {
  const match = /^([a-zA-Z.]+): (.+)$/.exec(message ?? '');
  if (!match) return null;
  return `Check the ${match[1]}: it ${match[2].replace(/\.$/, '')}.`;
}

/** What the person sees for a failed call: always a sentence, never a silent failure. */
export function problemOf(error: unknown, response: Response | undefined): Problem {
  const body = (error ?? {}) as { error?: { code?: string; message?: string } };
  const code = body.error?.code ?? (response ? `http.${response.status}` : 'network');
  const retry = response?.headers.get('Retry-After');
  const wait = retry && /^\d+$/.test(retry) ? minutes(Number(retry)) : null;
  const known = SENTENCES[code];
  if (typeof known === 'function') return { code, sentence: known(wait) };
  if (known) return { code, sentence: known };
  const invalid = code === 'request.invalid' ? invalidSentence(body.error?.message) : null;
  if (invalid) return { code, sentence: invalid };
  if (body.error?.message) return { code, sentence: body.error.message };
  if (!response) return { code, sentence: 'The server could not be reached. Check your connection and try again.' };
  return { code, sentence: `The server answered ${response.status} ${response.statusText}. Try again in a moment.` };
}

/**
 * Runs one API call; answers its data, or throws the Problem to show. Network failures become a Problem too.
 */
export async function call<T>(request: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await request;
  } catch {
    throw problemOf(undefined, undefined);
  }
  if (!result.response.ok) throw problemOf(result.error, result.response);
  return result.data as T;
}

export const isProblem = (value: unknown): value is Problem => typeof value === 'object' && value !== null && 'sentence' in value && 'code' in value;

export type ConsoleConfig = paths['/api/v1/auth/console-config']['get']['responses'][200]['content']['application/json'];
let settings: Promise<ConsoleConfig> | undefined;
/** The public settings without `rd` (connect targets, password length), asked once per page load. */
export const consoleConfig = (): Promise<ConsoleConfig> => (settings ??= call(api.GET('/api/v1/auth/console-config')).catch((err: unknown) => {
  settings = undefined;
  throw err;
}));
