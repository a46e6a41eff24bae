import { useEffect, useState } from 'preact/hooks';
import { api, call } from '../api';
import { Card, Outcome, useAction } from '../ui';
import { KeyList, type ScopedKey } from './scoped-keys';

/** The drawer's API keys block (users.api-keys): the user's scoped keys, each with Revoke. Nobody makes keys for someone else. */
export function DrawerKeys({ userId }: { userId: number }) {
  const [keys, setKeys] = useState<ScopedKey[] | null>(null);
  const load = useAction();
  const revoke = useAction();
  const path = { path: { id: String(userId) } };
  const load$ = async () => setKeys(await call(api.GET('/api/v1/auth/users/{id}/api-keys', { params: path })));
  useEffect(() => {
    void load.run(load$);
  }, [userId]);
  const revokeOne = (k: ScopedKey) =>
    revoke.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}/api-keys/{keyId}', { params: { path: { id: String(userId), keyId: String(k.id) } } }));
      await load$();
      return `${k.name} revoked: the app using it is refused from its next request.`;
    });
  return (
    <Card title="API keys">
      <p class="hint">Scoped keys this user made for their apps. Only they can make one; you can revoke any.</p>
      <Outcome problem={load.problem} />
      {keys === null ? !load.problem && <p role="status">Loading…</p> : <KeyList keys={keys} busy={revoke.busy} onRevoke={revokeOne} />}
      <Outcome problem={revoke.problem} done={revoke.done} />
    </Card>
  );
}
