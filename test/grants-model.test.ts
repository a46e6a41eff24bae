import { describe, expect, it } from 'vitest';
import { ALL, compileGrants, grantAllows, grantedResources, holdsAll } from '../src/grants/model.js';

/** Decisions from grants, as truth tables: every row says what should be allowed and what denied. */
describe('grant decisions', () => {
  const grants = compileGrants([
    { type: 'library', resourceId: '3', actions: ['read'] },
    { type: 'library', resourceId: '5', actions: ['read', 'write'] },
    { type: 'share', resourceId: ALL, actions: ['read'] },
    { type: 'share', resourceId: 'secret', actions: ['write'] },
  ]);

  it.each([
    ['library', '3', 'read', true],
    ['library', '3', 'write', false],
    ['library', '5', 'write', true],
    ['library', '4', 'read', false],
    ['library', ALL, 'read', false],
    ['share', 'anything', 'read', true],
    ['share', ALL, 'read', true],
    ['share', 'anything', 'write', false],
    ['share', 'secret', 'write', true],
    ['share', 'secret', 'read', true],
    ['album', '3', 'read', false],
  ] as const)('%s %s %s → %s', (type, id, action, allowed) => {
    expect(grantAllows(grants, type, id, action)).toBe(allowed);
  });

  it.each([
    ['library', 'read', { ids: ['3', '5'] }],
    ['library', 'write', { ids: ['5'] }],
    ['share', 'read', { all: true }],
    ['share', 'write', { ids: ['secret'] }],
    ['album', 'read', { ids: [] }],
  ] as const)('resources of %s to %s → %j', (type, action, expected) => {
    expect(grantedResources(grants, type, action)).toEqual(expected);
  });

  it.each([
    ['library', '5', ['read', 'write'], true],
    ['library', '3', ['read', 'write'], false],
    ['library', ALL, ['read'], false],
    ['share', ALL, ['read'], true],
    ['share', '7', ['read'], true],
    ['share', '7', ['write'], false],
  ] as const)('holds all of %s %s %j → %s (what a non-admin may grant)', (type, id, actions, held) => {
    expect(holdsAll(grants, type, id, actions)).toBe(held);
  });

  it('denies everything to a user with no grants', () => {
    expect(grantAllows(compileGrants([]), 'library', '3', 'read')).toBe(false);
    expect(grantedResources(compileGrants([]), 'library', 'read')).toEqual({ ids: [] });
  });
});
