import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilAnswering } from './proxy-process.js';

/** The Debian package's binary (apt-get install caddy). */
export const CADDY_BIN = process.env.USHER_TEST_CADDY ?? '/usr/bin/caddy';

export interface Caddy {
  /** Caddy's log so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a private Caddy in the foreground on a Caddyfile: no admin endpoint (several may run at once), no
 * automatic HTTPS, its data and config folders in a temporary folder. Resolves once `probe` (a URL Caddy
 * serves) answers at all. Fails loudly when Caddy is not installed: such tests never skip.
 */
export async function startCaddy(caddyfile: string, probe: string): Promise<Caddy> {
  if (!existsSync(CADDY_BIN)) throw new Error(`${CADDY_BIN} not found: install the Debian package (apt-get install -y caddy)`);
  const dir = mkdtempSync(join(tmpdir(), 'usher-caddy-'));
  const file = join(dir, 'Caddyfile');
  writeFileSync(file, `{\n\tadmin off\n\tauto_https off\n}\n\n${caddyfile}`);
  const env = { PATH: process.env.PATH ?? '', HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') };
  const child = spawn(CADDY_BIN, ['run', '--config', file, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += String(d)));
  child.stderr!.on('data', (d) => (output += String(d)));
  const stop = await untilAnswering('caddy', child, dir, probe, () => output);
  return { log: () => output, stop };
}
