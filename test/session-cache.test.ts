import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionData } from 'express-session';
import { storeGet } from '../src/sessions/backend.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';

// The SQL session store's cache (sessions/backend.ts CachedStore), told by src/cluster that another instance
// ended a user's sessions (forget()): a read that was under way then must not be cached.
describe.each(DB_KINDS)('the SQL session cache on %s', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(kind);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('does not cache a read under way when told the user changed elsewhere', async () => {
    const backend = server.usher.sessions.backend;
    expect(backend.kind).toBe('sql');
    const sid = 'cache-race-sid';
    const data = { cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000), httpOnly: true, path: '/' }, userId: 4242, fresh: true } as unknown as SessionData;
    await new Promise<void>((resolve, reject) => backend.store.set(sid, data, (err?: unknown) => (err ? reject(err) : resolve())));
    backend.forget(4242);
    // Read under way (it reads the row as it was) while another instance's logout commits and is told here.
    const reading = storeGet(backend.store, sid);
    backend.forget(4242);
    expect(await reading).toMatchObject({ userId: 4242 });
    await server.usher.db('sessions').where({ sid }).delete();
    expect(await storeGet(backend.store, sid)).toBeNull();
  });

  it('never writes back a session another instance ended while this one still had it cached', async () => {
    const backend = server.usher.sessions.backend;
    const sid = 'cache-resurrect-sid';
    const cookie = { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000), httpOnly: true, path: '/' };
    const data = { cookie, userId: 4343, lastSeenAt: 1 } as unknown as SessionData;
    await new Promise<void>((resolve, reject) => backend.store.set(sid, { ...data, fresh: true } as SessionData, (err?: unknown) => (err ? reject(err) : resolve())));
    expect(await storeGet(backend.store, sid)).toMatchObject({ userId: 4343 });
    // Logged out through another instance: the row is gone, this instance has not heard yet.
    await server.usher.db('sessions').where({ sid }).delete();
    // A request here writes lastSeenAt back (an update, never a creation).
    await new Promise<void>((resolve, reject) => backend.store.set(sid, { ...data, lastSeenAt: Date.now() } as SessionData, (err?: unknown) => (err ? reject(err) : resolve())));
    expect(await server.usher.db('sessions').where({ sid }).first()).toBeUndefined();
  });
});
