import { useEffect, useState } from 'preact/hooks';
import { api, href, problemOf, type Problem, type User } from '../api';
import { readOrgs, type Org } from '../orgs';
import { Button, Outcome, PageHeading } from '../ui';
import { CreateUserDialog } from './user-create';
import { UserDrawer } from './user-drawer';

type UserRow = { id: number; username: string; name: string | null; role: string; active: boolean; hasPassword: boolean; lastActiveAt: string | null; organizationId: number | null; orgRole: string | null };

/** The list's state, kept in the address bar's query so a reload or a shared link shows the same page. */
interface ListState {
  q: string;
  sort: 'username' | 'role' | 'lastActiveAt';
  order: 'asc' | 'desc';
  offset: number;
}

export const PAGE_SIZE = 20;
const SORTS = ['username', 'role', 'lastActiveAt'] as const;

function readState(search: string): ListState {
  const p = new URLSearchParams(search);
  const sort = SORTS.find((s) => s === p.get('sort')) ?? 'username';
  const offset = Number(p.get('offset'));
  return { q: p.get('q') ?? '', sort, order: p.get('order') === 'desc' ? 'desc' : 'asc', offset: Number.isInteger(offset) && offset > 0 ? offset : 0 };
}

function writeState(s: ListState): string {
  const p = new URLSearchParams();
  if (s.q) p.set('q', s.q);
  if (s.sort !== 'username') p.set('sort', s.sort);
  if (s.order !== 'asc') p.set('order', s.order);
  if (s.offset) p.set('offset', String(s.offset));
  const text = p.toString();
  return text ? `?${text}` : '';
}

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : 'never');

function SortHeader({ label, field, state, onSort }: { label: string; field: ListState['sort']; state: ListState; onSort: (s: ListState['sort']) => void }) {
  const current = state.sort === field;
  return (
    <th scope="col" aria-sort={current ? (state.order === 'asc' ? 'ascending' : 'descending') : undefined}>
      <button type="button" class="sort" onClick={() => onSort(field)}>
        {label}
        <span aria-hidden="true">{current ? (state.order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>
  );
}

/** Users: search, sort by a column, page through; needs `users:list` (the navigation hides it from others). */
export function UsersPage({ me }: { me: User }) {
  // The Organisation column shows once there are organisations this caller may read.
  const [orgs, setOrgs] = useState<Org[]>([]);
  const [state, setState] = useState<ListState>(() => readState(location.search));
  const [typed, setTyped] = useState(state.q);
  // The rows with the total and the offset they came with, so the range never runs ahead of the rows.
  const [shown, setShown] = useState<{ rows: UserRow[]; total: number; offset: number; q: string } | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [creating, setCreating] = useState(false);
  // The open drawer is in the address too (?user=7), so a link can open one user's drawer.
  const [opened, setOpenedState] = useState<number | null>(() => {
    const id = Number(new URLSearchParams(location.search).get('user'));
    return Number.isInteger(id) && id > 0 ? id : null;
  });
  const setOpened = (id: number | null) => {
    setOpenedState(id);
    const p = new URLSearchParams(location.search);
    if (id === null) p.delete('user');
    else p.set('user', String(id));
    const text = p.toString();
    history.replaceState(null, '', href(`/users${text ? `?${text}` : ''}`));
  };
  const [done, setDone] = useState<string | null>(null);
  // Bumped to fetch the same page again after a change.
  const [version, setVersion] = useState(0);

  useEffect(() => {
    document.title = 'Users · Usher';
    void readOrgs().then(setOrgs);
    const onPop = () => {
      const next = readState(location.search);
      setState(next);
      setTyped(next.q);
    };
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    let stale = false;
    const query = { offset: String(state.offset), limit: String(PAGE_SIZE), sort: state.sort, order: state.order, ...(state.q ? { q: state.q } : {}) };
    api.GET('/api/v1/auth/users', { params: { query } }).then(
      ({ data, error, response }) => {
        if (stale) return;
        if (!response.ok) return setProblem(problemOf(error, response));
        setProblem(null);
        setShown({ rows: data as UserRow[], total: Number(response.headers.get('X-Total-Count') ?? 0), offset: state.offset, q: state.q });
      },
      () => !stale && setProblem(problemOf(undefined, undefined)),
    );
    return () => {
      stale = true;
    };
  }, [state, version]);

  function change(next: ListState) {
    if (writeState(next) !== writeState(state)) history.pushState(null, '', href(`/users${writeState(next)}`));
    setState(next);
  }
  const onSort = (field: ListState['sort']) =>
    change({ ...state, sort: field, order: state.sort === field && state.order === 'asc' ? 'desc' : 'asc', offset: 0 });

  const total = shown?.total ?? 0;
  const offset = shown?.offset ?? 0;
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + PAGE_SIZE, total);
  return (
    <>
      <div class="page-head">
        <PageHeading>Users</PageHeading>
        <Button class="primary" onClick={() => setCreating(true)}>
          + Create user
        </Button>
      </div>
      {creating && (
        <CreateUserDialog
          me={me}
          orgs={orgs}
          onClose={() => setCreating(false)}
          onCreated={(username, note) => {
            setCreating(false);
            setDone(`Created ${username}.${note ? ` ${note}` : ''}`);
            setVersion((v) => v + 1);
          }}
        />
      )}
      <form
        role="search"
        class="row search"
        onSubmit={(e) => {
          e.preventDefault();
          change({ ...state, q: typed.trim(), offset: 0 });
        }}
      >
        <label for="users-q" class="visually-hidden">
          Search users
        </label>
        <input id="users-q" type="search" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} placeholder="Username, name or email" />
        <button type="submit">Search</button>
      </form>
      {opened !== null && (
        <UserDrawer
          id={opened}
          me={me}
          orgs={orgs}
          onDeleted={(username) => {
            setOpened(null);
            setDone(`Deleted ${username}.`);
            setVersion((v) => v + 1);
          }}
          onClose={() => {
            setOpened(null);
            setVersion((v) => v + 1);
          }}
        />
      )}
      <Outcome problem={problem} done={done} />
      {shown === null ? (
        !problem && <p role="status">Loading…</p>
      ) : (
        <>
          <table class="users">
            <caption class="visually-hidden">Users, sorted by {state.sort === 'lastActiveAt' ? 'Last active' : state.sort}</caption>
            <thead>
              <tr>
                <SortHeader label="Name" field="username" state={state} onSort={onSort} />
                <SortHeader label="Role" field="role" state={state} onSort={onSort} />
                {orgs.length > 0 && <th scope="col">Organisation</th>}
                <SortHeader label="Last active" field="lastActiveAt" state={state} onSort={onSort} />
              </tr>
            </thead>
            <tbody>
              {shown.rows.map((u) => (
                <tr key={u.id} class="clickable" onClick={() => setOpened(u.id)}>
                  <td>
                    <button type="button" class="link" onClick={(e) => (e.stopPropagation(), setOpened(u.id))}>
                      <strong>{u.name ?? u.username}</strong>
                    </button>
                    {u.name && <span class="hint"> {u.username}</span>}
                    {!u.hasPassword && <span class="tag">invite-only</span>}
                    {!u.active && <span class="tag warn">disabled</span>}
                  </td>
                  <td>{u.role}</td>
                  {orgs.length > 0 && (
                    <td>
                      {u.organizationId === null ? '' : (orgs.find((o) => o.id === u.organizationId)?.name ?? `#${u.organizationId}`)}
                      {u.orgRole && <span class="tag">org {u.orgRole}</span>}
                    </td>
                  )}
                  <td>{when(u.lastActiveAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {shown.rows.length === 0 && <p>{shown.q ? `No user matches “${shown.q}”.` : 'No users yet.'}</p>}
          <nav class="actions paging" aria-label="Pages">
            <Button disabled={offset === 0} onClick={() => change({ ...state, offset: Math.max(0, offset - PAGE_SIZE) })}>
              Previous
            </Button>
            <span role="status">
              {first}–{last} of {total}
            </span>
            <Button disabled={last >= total} onClick={() => change({ ...state, offset: offset + PAGE_SIZE })}>
              Next
            </Button>
          </nav>
        </>
      )}
    </>
  );
}
