/**
 * Profiles one server of bench/servers.ts under load: `tsx bench/profile.ts <mode> <path> <credential> [seconds]`,
 * credential one of none | key | session | proxy | original (a session cookie with X-Original-URL) | login (POST /login
 * by 20 clients back to back). The server
 * runs with `node --cpu-prof`; afterwards the top frames by self time are printed, with their share of samples.
 * Not part of `npm run bench`: a tool for finding where the request path's time goes.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { ServerMessage } from './servers.js';
import { request } from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const [mode = 'usher', path = '/api/v1/auth/me', credential = 'key', secondsArg = '10'] = process.argv.slice(2);
const seconds = Number(secondsArg);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-profile-'));
  const apiKey = `usk_${randomBytes(32).toString('base64url')}`;
  const password = randomBytes(18).toString('base64url');
  const child = fork(join(HERE, 'servers.ts'), [mode], {
    execArgv: ['--import', 'tsx', '--cpu-prof', '--cpu-prof-dir', dir],
    env: { ...process.env, BENCH_DATA_DIR: dir, BENCH_ADMIN_USERNAME: 'bench', BENCH_ADMIN_PASSWORD: password, BENCH_API_KEY: apiKey, BENCH_METRICS_TOKEN: randomBytes(32).toString('base64url') },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) =>
    child.on('message', (m: ServerMessage) => (m.type === 'ready' ? resolve(m.port) : reject(new Error(m.message)))),
  );
  const url = `http://127.0.0.1:${port}`;
  const cookie = async () => {
    const reply = await request(`${url}/api/v1/auth/login`, { method: 'POST', json: { username: 'bench', password }, timeoutMs: 30_000 });
    return (reply.headers['set-cookie'] ?? []).map((l) => l.split(';', 1)[0]!).find((p) => p.startsWith('usher.sid='))!;
  };
  const headers: Record<string, string> =
    credential === 'key'
      ? { 'x-api-key': apiKey }
      : credential === 'session'
        ? { cookie: await cookie() }
        : credential === 'original'
          ? { cookie: await cookie(), 'x-original-url': 'https://app.example.com/x?y=1' }
          : credential === 'proxy'
            ? { 'remote-user': 'bench-proxy', 'remote-groups': 'staff,bench-admins' }
            : {};
  const first = await request(`${url}${path}`, { headers });
  process.stderr.write(`first answer ${first.status}\n`);
  // credential login: POST /login as the admin, 20 clients back to back (path is ignored).
  const login = credential === 'login';
  const options = login
    ? { url: `${url}/api/v1/auth/login`, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bench', password }), connections: 20 }
    : { url: `${url}${path}`, headers, connections: 50 };
  const run = (s: number) => new Promise<autocannon.Result>((resolve, reject) => autocannon({ ...options, duration: s }, (err: unknown, r: autocannon.Result) => (err ? reject(err as Error) : resolve(r))));
  await run(2);
  const r = await run(seconds);
  const served = r.requests.total;
  process.stderr.write(`${r.requests.mean.toFixed(0)} req/s, non-2xx ${r.non2xx}\n`);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; endTime: number; startTime: number };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // Only the measured load: the samples of its last `seconds` before the profile ends (start-up and warm-up left out).
  const from = profile.endTime - seconds * 1e6;
  let at = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i]!;
    if (at < from) return;
    self.set(id, (self.get(id) ?? 0) + 1);
    total++;
  });
  const frames = new Map<string, number>();
  for (const [id, count] of self) {
    const n = byId.get(id)!;
    const where = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
    frames.set(where, (frames.get(where) ?? 0) + count);
  }
  const top = [...frames].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40));
  // Each sample is one sampling interval (--cpu-prof-interval, 1 ms by default) of the main thread.
  const us = (count: number) => `${((count * 1000) / served).toFixed(1).padStart(6)} µs/req`;
  for (const [where, count] of top) process.stdout.write(`${((100 * count) / total).toFixed(1).padStart(5)}% ${us(count)}  ${where}\n`);
  // Self time by file (node internals, each package, each of Usher's modules).
  const files = new Map<string, number>();
  for (const [id, count] of self) {
    const url = byId.get(id)!.callFrame.url;
    const file = url === '' ? '(vm)' : url.startsWith('node:') ? 'node internals' : url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+)\/.*$/, '$1').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/');
    files.set(file, (files.get(file) ?? 0) + count);
  }
  process.stdout.write('\nby file:\n');
  for (const [file, count] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`${((100 * count) / total).toFixed(1).padStart(5)}% ${us(count)}  ${file}\n`);
  process.stdout.write(`${served} requests, ${total} samples\n`);
  if (process.env.KEEP) process.stdout.write(`profile: ${join(dir, file)}\n`);
  else rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
