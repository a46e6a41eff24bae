/**
 * The server of bench/logins.ts, one per process: the standalone app with proxy auth on (trusting 127.0.0.1,
 * members of `bench-admins` admins), on SQLite or on PostgreSQL (BENCH_PG_URL, BENCH_PG_SCHEMA).
 *
 * BENCH_ROOT names the checkout whose src/ is run (default: this one), so that one bench run can measure
 * another checkout's code (a worktree of main) beside this one's. The parent asks over IPC:
 *   { type: 'queries' }  the number of SQL statements run so far (knex 'query' events);
 *   { type: 'settle' }   waits until background work is done (audit rows flushed, no query for 300 ms);
 *   { type: 'count' }    accounts and proxy identities whose name starts with BENCH_PREFIX, and users in all;
 *   { type: 'profile' }  starts a CPU profile, or stops it and writes it to BENCH_PROF/<pid>-<n>.cpuprofile.
 */
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

type Usher = import('../src/index.js').Usher;
type Request = { id: number; type: 'queries' | 'settle' | 'count' | 'profile' };

const ROOT = resolve(process.env.BENCH_ROOT ?? join(fileURLToPath(import.meta.url), '..', '..'));

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function start(): Promise<{ usher: Usher; server: Server }> {
  const { createUsher } = (await import(join(ROOT, 'src/index.ts'))) as typeof import('../src/index.js');
  const { buildApp } = (await import(join(ROOT, 'src/app.ts'))) as typeof import('../src/app.js');
  const pg = process.env.BENCH_PG_URL;
  const usher = await createUsher({
    config: {
      dataDir: required('BENCH_DATA_DIR'),
      ...(pg ? { database: { url: pg, schema: required('BENCH_PG_SCHEMA') } } : {}),
      log: { level: 'info' },
      server: { trustedProxies: ['127.0.0.1'] },
      // A minute: the warm user's entry cannot expire during the burst, whatever its speed.
      auth: { proxy: { enabled: true, adminGroups: ['bench-admins'] }, apiKeyCacheTtl: '60s' },
      // The grants poll reads the database every second: an hour apart, the warm user's request is counted alone.
      cluster: { pollInterval: '1h' },
    },
  });
  const app = buildApp(usher);
  const server = await new Promise<Server>((done, fail) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? fail(err) : done(s)));
  });
  return { usher, server };
}

async function main(): Promise<void> {
  const { usher, server } = await start();
  let queries = 0;
  usher.db.on('query', () => void queries++);
  const prefix = required('BENCH_PREFIX');
  let profiler: Session | undefined;
  let profiles = 0;
  const answer = async (req: Request): Promise<unknown> => {
    if (req.type === 'queries') return queries;
    if (req.type === 'profile') {
      if (!profiler) {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
        return null;
      }
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      const file = join(required('BENCH_PROF'), `${process.pid}-${profiles++}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      return file;
    }
    if (req.type === 'settle') {
      await usher.audit.flush();
      for (let last = -1; last !== queries; ) {
        last = queries;
        await new Promise((r) => setTimeout(r, 300));
      }
      return queries;
    }
    const like = `${prefix}%`;
    const n = async (q: PromiseLike<unknown>) => Number(((await q) as { n: number | string }[])[0]!.n);
    return {
      accounts: await n(usher.db('users').where('username_key', 'like', like).count({ n: '*' })),
      names: await n(usher.db('users').where('username_key', 'like', like).countDistinct({ n: 'username_key' })),
      identities: await n(usher.db('identities').where({ provider: 'proxy' }).andWhere('subject', 'like', like).count({ n: '*' })),
      users: await n(usher.db('users').count({ n: '*' })),
    };
  };
  process.on('message', (raw) => {
    const req = raw as Request;
    answer(req).then(
      (value) => process.send?.({ id: req.id, value }),
      (err: unknown) => process.send?.({ id: req.id, error: String(err) }),
    );
  });
  const stop = () => {
    setTimeout(() => process.exit(0), 3_000).unref();
    server.closeAllConnections();
    server.close(() => void usher.close().finally(() => process.exit(0)));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench logins server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.send?.({ type: 'failed', message: String(err) });
  process.exit(1);
});
