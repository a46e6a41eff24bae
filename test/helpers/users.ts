import { expect } from 'vitest';
import type { TestServer } from './app.js';
import type { Client } from './http.js';

/** Runs setup and returns the first admin's key. */
export async function setupAdmin(c: Client, username = 'admin', password = 'admin-password'): Promise<string> {
  const res = await c.post('/api/v1/auth/setup', { body: { username, password } });
  expect(res.status).toBe(201);
  return res.body.apiKey as string;
}

/**
 * Creates a user as an admin and returns it with its key. The admin is never shown the key; the test
 * reads it as its owner would (GET /me/api-key), through the service the server itself uses.
 */
export async function createUser(server: TestServer, c: Client, adminKey: string, body: Record<string, unknown>) {
  const res = await c.post('/api/v1/auth/users', { key: adminKey, body });
  expect(res.status, res.text).toBe(201);
  const record = await server.usher.users.get(res.body.id);
  const key = server.usher.users.readApiKey(record!);
  expect(key).toMatch(/^usk_/);
  return { user: res.body, key: key! };
}
