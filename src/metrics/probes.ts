import type { Db } from '../db/connect.js';
import type { AuditLog } from '../events/audit.js';
import type { SessionBackend } from '../sessions/backend.js';
import type { MetricsProbes } from './metrics.js';

/**
 * The gauges' reads: one grouped count of the users, a trivial query, a read of a session that never exists,
 * the store's count of signed-in sessions, and the audit log's backlog (in memory).
 */
export function metricsProbes(db: Db, backend: SessionBackend, audit: AuditLog): MetricsProbes {
  return {
    async users() {
      const rows = (await db('users').select('role', 'active').count({ n: '*' }).groupBy('role', 'active')) as { role: string; active: unknown; n: number | string }[];
      // SQLite answers 0/1 for booleans, PostgreSQL true/false: both become true/false.
      return rows.map((r) => ({ role: r.role, active: r.active === true || Number(r.active) === 1, count: Number(r.n) }));
    },
    database: () => db.raw('select 1'),
    // The store's own read path: a Redis failure there is a rejection (503 session.store_unavailable).
    redis: backend.kind === 'redis' ? async () => backend.store.read('usher-metrics-probe') : undefined,
    sessions: () => backend.countActive(),
    audit: () => audit.backlog(),
  };
}
