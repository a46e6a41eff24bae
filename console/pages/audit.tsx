import { useEffect, useState } from 'preact/hooks';
import { api, href, problemOf, type Problem } from '../api';
import type { components } from '../api-types';
import { Button, Field, Outcome, PageHeading } from '../ui';

type Entry = components['schemas']['AuditEntry'];
type Actor = components['schemas']['Actor'];

export const AUDIT_PAGE_SIZE = 50;

/** Every type the log holds, for the filter (the API's enum: a type missing here fails the typecheck). */
const TYPES: Entry['type'][] = [
  'user.created', 'user.updated', 'user.role_changed', 'user.disabled', 'user.enabled', 'user.deleted', 'user.password_changed', 'user.password_reset',
  'user.password_cleared', 'user.password_login_changed', 'apikey.rotated', 'invite.created', 'invite.resent', 'invite.revoked', 'invite.redeemed',
  'invite.redeem_failed', 'recovery_code.created', 'recovery_code.revoked', 'recovery_code.redeemed', 'idp.role_synced', 'identity.linked', 'login.succeeded',
  'login.failed', 'login.rate_limited', 'session.created', 'session.ended', 'proxy.untrusted_headers', 'policy.changed',
];

/** The filters and the page, kept in the address bar's query (as the Users page does). */
const KEYS = ['type', 'actor', 'user', 'since', 'until'] as const;
type Filters = Record<(typeof KEYS)[number], string>;
interface State extends Filters {
  offset: number;
}

function readState(search: string): State {
  const p = new URLSearchParams(search);
  const offset = Number(p.get('offset'));
  const state = { offset: Number.isInteger(offset) && offset > 0 ? offset : 0 } as State;
  for (const k of KEYS) state[k] = p.get(k) ?? '';
  return state;
}

function writeState(s: State): string {
  const p = new URLSearchParams();
  for (const k of KEYS) if (s[k]) p.set(k, s[k]);
  if (s.offset) p.set('offset', String(s.offset));
  const text = p.toString();
  return text ? `?${text}` : '';
}

/** Usernames by id, asked once per page load; a deleted user stays "user #7". */
const names = new Map<number, Promise<string>>();
function username(id: number): Promise<string> {
  let name = names.get(id);
  if (!name) {
    name = api.GET('/api/v1/auth/users/{id}', { params: { path: { id: String(id) } } }).then(
      ({ data }) => (data ? data.username : `user #${id}`),
      () => `user #${id}`,
    );
    names.set(id, name);
  }
  return name;
}

function actorText(a: Actor, who: Map<number, string>): string {
  switch (a.kind) {
    case 'user':
      return `${who.get(a.userId) ?? `user #${a.userId}`} (${a.method})`;
    case 'idp':
      return `identity provider ${a.provider}`;
    case 'cli':
      return 'the command line';
    case 'system':
      return 'Usher itself';
    default:
      return 'someone not signed in';
  }
}

const detailText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

function EntryItem({ e, who }: { e: Entry; who: Map<number, string> }) {
  const details = Object.entries(e.detail);
  return (
    <li>
      <div class="entry-head">
        <strong class="mono">{e.type}</strong>
        <time dateTime={e.at}>{new Date(e.at).toLocaleString()}</time>
      </div>
      <dl class="facts">
        <dt>Actor</dt>
        <dd>{actorText(e.actor, who)}</dd>
        {e.targetUserId !== null && (
          <>
            <dt>Target</dt>
            <dd>{who.get(e.targetUserId) ?? `user #${e.targetUserId}`}</dd>
          </>
        )}
        {e.ip && (
          <>
            <dt>Address</dt>
            <dd>{e.ip}</dd>
          </>
        )}
        {details.map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd class="mono">{detailText(v)}</dd>
          </>
        ))}
      </dl>
    </li>
  );
}

/** The audit log (needs `audit:read`): newest first, filtered by type, actor, target and time, paged. */
export function AuditPage() {
  const [state, setState] = useState<State>(() => readState(location.search));
  const [typed, setTyped] = useState<Filters>(state);
  const [shown, setShown] = useState<{ rows: Entry[]; total: number; offset: number } | null>(null);
  const [who, setWho] = useState(new Map<number, string>());
  const [problem, setProblem] = useState<Problem | null>(null);

  useEffect(() => {
    document.title = 'Audit log · Usher';
    const onPop = () => {
      const next = readState(location.search);
      setState(next);
      setTyped(next);
    };
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    let stale = false;
    const query: Record<string, string> = { offset: String(state.offset), limit: String(AUDIT_PAGE_SIZE) };
    for (const k of KEYS) if (state[k]) query[k] = state[k];
    api.GET('/api/v1/auth/audit', { params: { query } }).then(
      async ({ data, error, response }) => {
        if (stale) return;
        if (!response.ok || !data) return setProblem(problemOf(error, response));
        setProblem(null);
        setShown({ rows: data, total: Number(response.headers.get('X-Total-Count') ?? 0), offset: state.offset });
        // Names come after the entries (one lookup per user, kept for the page load): "user #7" until then.
        const ids = new Set<number>();
        for (const e of data) {
          if (e.actor.kind === 'user') ids.add(e.actor.userId);
          if (e.targetUserId !== null) ids.add(e.targetUserId);
        }
        const found = new Map<number, string>();
        await Promise.all([...ids].map(async (id) => found.set(id, await username(id))));
        if (!stale) setWho(found);
      },
      () => !stale && setProblem(problemOf(undefined, undefined)),
    );
    return () => {
      stale = true;
    };
  }, [state]);

  function change(next: State) {
    if (writeState(next) !== writeState(state)) history.pushState(null, '', href(`/audit${writeState(next)}`));
    setState(next);
  }
  const set = (k: keyof Filters) => (v: string) => setTyped({ ...typed, [k]: v });
  const total = shown?.total ?? 0;
  const offset = shown?.offset ?? 0;
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + AUDIT_PAGE_SIZE, total);
  const filtered = KEYS.some((k) => state[k]);
  return (
    <>
      <PageHeading>Audit log</PageHeading>
      <form
        class="card filters"
        aria-label="Filters"
        onSubmit={(e) => {
          e.preventDefault();
          const next = { offset: 0 } as State;
          for (const k of KEYS) next[k] = typed[k].trim();
          change(next);
        }}
      >
        <div class="pair">
          <div class="field">
            <label for="audit-type">Type</label>
            <select id="audit-type" value={typed.type} onChange={(e) => set('type')(e.currentTarget.value)}>
              <option value="">All types</option>
              {TYPES.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </div>
          <Field label="Actor (user id)" value={typed.actor} onValue={set('actor')} hint="Who did it." />
          <Field label="Target (user id)" value={typed.user} onValue={set('user')} hint="Whom it was about." />
        </div>
        <div class="pair">
          <Field label="Since" value={typed.since} onValue={set('since')} hint="A time (2026-11-28T06:00Z) or a span back from now: 7d, 12h." />
          <Field label="Until" value={typed.until} onValue={set('until')} hint="In the same forms." />
        </div>
        <div class="actions">
          <Button type="submit" class="primary">
            Apply filters
          </Button>
          {filtered && (
            <Button
              onClick={() => {
                const none = { type: '', actor: '', user: '', since: '', until: '' };
                setTyped(none);
                change({ ...none, offset: 0 });
              }}
            >
              Clear filters
            </Button>
          )}
        </div>
      </form>
      <Outcome problem={problem} />
      {shown === null ? (
        !problem && <p role="status">Loading…</p>
      ) : (
        <>
          {shown.rows.length === 0 ? (
            <p>{filtered ? 'No entry matches these filters.' : 'The log is empty.'}</p>
          ) : (
            <ol class="audit" aria-label="Entries, newest first">
              {shown.rows.map((e) => (
                <EntryItem key={e.id} e={e} who={who} />
              ))}
            </ol>
          )}
          <nav class="actions paging" aria-label="Pages">
            <Button disabled={offset === 0} onClick={() => change({ ...state, offset: Math.max(0, offset - AUDIT_PAGE_SIZE) })}>
              Newer
            </Button>
            <span role="status">
              {first}–{last} of {total}
            </span>
            <Button disabled={last >= total} onClick={() => change({ ...state, offset: offset + AUDIT_PAGE_SIZE })}>
              Older
            </Button>
          </nav>
        </>
      )}
    </>
  );
}
