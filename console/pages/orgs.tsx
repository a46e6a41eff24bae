import { useEffect, useState } from 'preact/hooks';
import { api, call, type User } from '../api';
import { myPermissions } from '../mine';
import { readOrgs, type Org } from '../orgs';
import { Button, Field, Outcome, PageHeading, useAction } from '../ui';

/** One organisation: its name and description; Edit and Delete for whoever may manage organisations. */
function OrgItem({ org, manage, onChanged }: { org: Org; manage: boolean; onChanged: (done: string) => void }) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(org.name);
  const [description, setDescription] = useState(org.description);
  const [confirming, setConfirming] = useState<'ask' | 'members' | null>(null);
  const save = useAction();
  const remove = useAction();
  const path = { path: { id: String(org.id) } };
  const submit = () =>
    save.run(async () => {
      const saved = await call(api.PUT('/api/v1/auth/orgs/{id}', { params: path, body: { name, description } }));
      setEditing(false);
      onChanged(`Saved ${saved.name}.`);
    });
  const del = (detach: boolean) =>
    remove.run(async () => {
      try {
        await call(api.DELETE('/api/v1/auth/orgs/{id}', { params: { ...path, query: detach ? { members: 'detach' } : {} } }));
      } catch (problem) {
        // An organisation with members: ask again, saying what happens to them.
        if ((problem as { code?: string }).code === 'org.in_use') return setConfirming('members');
        throw problem;
      }
      onChanged(`Deleted ${org.name}.`);
    });
  return (
    <li class="org">
      <h2>{org.name}</h2>
      {org.description && <p>{org.description}</p>}
      {manage && editing && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <Field label="Name" value={name} onValue={setName} required />
          <Field label="Description" value={description} onValue={setDescription} />
          <Outcome problem={save.problem} />
          <div class="actions">
            <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…">
              Save
            </Button>
            <Button onClick={() => (setEditing(false), setName(org.name), setDescription(org.description))}>Cancel</Button>
          </div>
        </form>
      )}
      {manage && !editing && (
        <div class="actions">
          <Button onClick={() => setEditing(true)} aria-label={`Edit ${org.name}`}>
            Edit
          </Button>
          {confirming === null ? (
            <Button class="danger" onClick={() => setConfirming('ask')} aria-label={`Delete ${org.name}…`}>
              Delete…
            </Button>
          ) : (
            <>
              <span>
                {confirming === 'ask'
                  ? `Delete ${org.name}?`
                  : `${org.name} has members. Deleting it takes them out of it, with their organisation role; they keep their account and global role.`}
              </span>
              <Button class="danger" onClick={() => del(confirming === 'members')} busy={remove.busy} busyLabel="Deleting…">
                {confirming === 'ask' ? `Yes, delete ${org.name}` : `Take them out and delete ${org.name}`}
              </Button>
              <Button onClick={() => setConfirming(null)}>Keep it</Button>
            </>
          )}
        </div>
      )}
      <Outcome problem={remove.problem} />
    </li>
  );
}

/** Organisations: list for whoever may read them; create, edit and delete for `orgs:manage` (global admins). */
export function OrgsPage({ me }: { me: User }) {
  const [orgs, setOrgs] = useState<Org[] | null>(null);
  const [manage, setManage] = useState<boolean | null>(null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const create = useAction();
  const load = async () => setOrgs(await readOrgs());
  useEffect(() => {
    document.title = 'Organisations · Usher';
    void load();
    myPermissions(me.id).then(
      (held) => setManage(held.has('orgs.manage')),
      () => setManage(false),
    );
  }, []);
  const changed = (text: string) => {
    setDone(text);
    void load();
  };
  return (
    <>
      <PageHeading>Organisations</PageHeading>
      {manage === false && <p class="hint">Only a global admin creates, renames or deletes organisations.</p>}
      {manage && (
        <form
          class="card"
          aria-label="Create organisation"
          onSubmit={(e) => {
            e.preventDefault();
            void create.run(async () => {
              const made = await call(api.POST('/api/v1/auth/orgs', { body: { name, ...(description ? { description } : {}) } }));
              setName('');
              setDescription('');
              changed(`Created ${made.name}.`);
            });
          }}
        >
          <div class="pair">
            <Field label="Name" value={name} onValue={setName} required />
            <Field label="Description" value={description} onValue={setDescription} />
          </div>
          <Outcome problem={create.problem} />
          <Button type="submit" class="primary" busy={create.busy} busyLabel="Creating…">
            + Create organisation
          </Button>
        </form>
      )}
      <Outcome problem={null} done={done} />
      {orgs === null ? (
        <p role="status">Loading…</p>
      ) : orgs.length === 0 ? (
        <p>No organisations yet.</p>
      ) : (
        <ul class="orgs">
          {orgs.map((o) => (
            <OrgItem key={`${o.id}-${o.updatedAt}`} org={o} manage={manage === true} onChanged={changed} />
          ))}
        </ul>
      )}
    </>
  );
}
