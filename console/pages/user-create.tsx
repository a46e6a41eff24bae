import { useEffect, useId, useState } from 'preact/hooks';
import { api, call, consoleConfig } from '../api';
import { Button, Dialog, Field, Outcome, useAction } from '../ui';

const LISTENER_HINT = 'Optional - leave blank for a player-only account that pairs via an invite code.';
const ADMIN_HINT = 'Required - admins sign in to this console.';

/** The roles to offer: every role when the caller may read them (GET /roles), else the two built-in ones. */
function useRoleNames(): string[] {
  const [names, setNames] = useState(['user', 'admin']);
  useEffect(() => {
    api.GET('/api/v1/auth/roles').then(
      ({ data, response }) => {
        if (response.ok && data) setNames(data.map((r) => r.name));
      },
      () => undefined,
    );
  }, []);
  return names;
}

/** "+ Create user": username, role, password (optional for listeners). What was typed stays when the API refuses. */
export function CreateUserDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (username: string) => void }) {
  const roles = useRoleNames();
  const [username, setUsername] = useState('');
  const [role, setRole] = useState('user');
  const [password, setPassword] = useState('');
  const [min, setMin] = useState<number | null>(null);
  const action = useAction();
  const roleId = useId();
  useEffect(() => {
    consoleConfig().then(
      (c) => setMin(c.passwordMinLength),
      () => setMin(null),
    );
  }, []);
  const hint = `${role === 'admin' ? ADMIN_HINT : LISTENER_HINT}${min === null ? '' : ` At least ${min} characters.`}`;
  return (
    <Dialog title="Create user" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const made = await call(api.POST('/api/v1/auth/users', { body: { username, role, ...(password ? { password } : {}) } }));
            onCreated(made.username);
          });
        }}
      >
        <Field label="Username" value={username} onValue={setUsername} autoComplete="off" autoCapitalize="off" spellcheck={false} autoFocus required />
        <div class="field">
          <label for={roleId}>Role</label>
          <select id={roleId} value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <Field label="Password" type="password" value={password} onValue={setPassword} autoComplete="new-password" hint={hint} />
        <Outcome problem={action.problem} />
        <div class="actions">
          <Button type="submit" class="primary" busy={action.busy} busyLabel="Creating…">
            Create user
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Dialog>
  );
}
