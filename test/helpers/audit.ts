import { expect } from 'vitest';
import type { TestServer } from './app.js';
import type { Client } from './http.js';

export interface AuditEntry {
  id: number;
  at: string;
  type: string;
  actor: { kind: string; userId?: number; method?: string; provider?: string };
  targetUserId: number | null;
  ip: string | null;
  detail: Record<string, unknown>;
}

/** The audit entries of one type (about one user), newest first, over HTTP, once the batched ones are written. */
export async function auditEntries(server: TestServer, c: Client, key: string, type: string, userId?: number): Promise<AuditEntry[]> {
  await server.usher.audit.flush();
  const res = await c.get(`/api/v1/auth/audit?type=${type}${userId === undefined ? '' : `&user=${userId}`}`, { key });
  expect(res.status, res.text).toBe(200);
  expect(Number(res.headers.get('x-total-count'))).toBe(res.body.length);
  return res.body as AuditEntry[];
}
