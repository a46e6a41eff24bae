import { api, call } from './api';

let held: { id: number; answer: Promise<Set<string>> } | undefined;
/**
 * What the signed-in user holds (GET /users/{id}/permissions, `effective`), asked once per page load. The
 * global-only permissions (`users.set-org`, `orgs.manage`) are never held through an organisation role, so
 * they tell a global admin from an org admin without naming roles.
 */
export function myPermissions(meId: number): Promise<Set<string>> {
  if (held?.id !== meId) {
    const answer = call(api.GET('/api/v1/auth/users/{id}/permissions', { params: { path: { id: String(meId) } } })).then((p) => new Set(p.effective));
    held = { id: meId, answer };
    answer.catch(() => (held = undefined));
  }
  return held.answer;
}
