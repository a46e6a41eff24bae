import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilAnswering } from './proxy-process.js';

/** The Debian package's binary (apt-get install nginx). */
export const NGINX_BIN = process.env.USHER_TEST_NGINX ?? '/usr/sbin/nginx';

export interface Nginx {
  /** The prefix folder holding nginx.conf, the extra files, logs and temp folders. */
  dir: string;
  /** nginx's error log so far. */
  errors(): string;
  stop(): Promise<void>;
}

/**
 * Starts a private nginx in the foreground: its own prefix folder, config and logs, nothing of the
 * system's. `http` is the body of the http {} block (its `listen` lines name free ports), where
 * {{PREFIX}} stands for that folder; `files` are written there, beside nginx.conf (an htpasswd...). Resolves once `probe` (a URL nginx serves) answers.
 * Fails loudly when nginx is not installed: such tests never skip.
 */
export async function startNginx(http: string, probe: string, files: Record<string, string> = {}): Promise<Nginx> {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} not found: install the Debian package (apt-get install -y nginx)`);
  const dir = mkdtempSync(join(tmpdir(), 'usher-nginx-'));
  // Workers drop to an unprivileged user when run as root: they must read the files here.
  chmodSync(dir, 0o755);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o644 });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(dir, t)};`).join('\n  ');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  ${temp}
  ${http.replaceAll('{{PREFIX}}', dir)}
}
`,
  );
  const child = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const errors = () => stderr + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');
  const stop = await untilAnswering('nginx', child, dir, probe, errors);
  return { dir, errors, stop };
}
