import { describe, expect, it } from 'vitest';
import { Authorizer } from '../src/authz/enforcer.js';

describe('the Casbin policy in policies/', () => {
  it('knows exactly the roles user and admin', async () => {
    const authz = await Authorizer.load();
    expect([...authz.roles].sort()).toEqual(['admin', 'user']);
  });

  it.each([
    ['user', 'self', 'read', true],
    ['user', 'self', 'update', true],
    ['user', 'self', 'api-key', true],
    ['user', 'users', 'list', false],
    ['user', 'users', 'create', false],
    ['user', 'users', 'read', false],
    ['user', 'users', 'update', false],
    ['user', 'users', 'set-role', false],
    ['user', 'users', 'set-password-login', false],
    ['user', 'users', 'delete', false],
    ['admin', 'users', 'list', true],
    ['admin', 'users', 'create', true],
    ['admin', 'users', 'set-role', true],
    ['admin', 'users', 'set-password-login', true],
    ['admin', 'users', 'set-status', true],
    ['admin', 'users', 'reset-password', true],
    ['admin', 'users', 'rotate-api-key', true],
    ['admin', 'users', 'delete', true],
    ['admin', 'invites', 'create', true],
    ['admin', 'invites', 'read', true],
    ['admin', 'invites', 'revoke', true],
    ['user', 'invites', 'create', false],
    ['user', 'invites', 'read', false],
    ['user', 'invites', 'revoke', false],
    ['user', 'self', 'recovery-code', true],
    ['admin', 'self', 'recovery-code', true],
    ['admin', 'users', 'revoke-recovery-code', true],
    ['user', 'users', 'revoke-recovery-code', false],
    ['user', 'self', 'revoke-recovery-code', false],
    // admin inherits what user may do
    ['admin', 'self', 'read', true],
    ['admin', 'self', 'api-key', true],
    ['stranger', 'self', 'read', false],
    ['admin', 'users', 'launch-missiles', false],
  ])('%s may %s/%s: %s', async (role, object, action, allowed) => {
    const authz = await Authorizer.load();
    expect(authz.can(role, object, action)).toBe(allowed);
  });
});
