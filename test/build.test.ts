import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { client } from './helpers/http.js';
import { ROOT, runCommand, startServerProcess } from './helpers/process.js';

/** The Dockerfile's runtime stage: what it copies into /app, its CMD and its HEALTHCHECK. */
function runtimeStage() {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stage = text.slice(text.lastIndexOf('\nFROM '));
  const copies = [...stage.matchAll(/^COPY (?:--from=\w+ )?(\S+) (\S+)$/gm)].map(([, from, to]) => ({ from: from!.replace(/^\/app\//, ''), to: to! }));
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(stage)![1]!) as string[];
  const health = JSON.parse(/HEALTHCHECK .*CMD (\[.*\])$/m.exec(stage)![1]!) as string[];
  return { copies, cmd, health };
}

/**
 * The image's runtime in miniature, without Docker (no registry for base images here): `npm run build`'s
 * compiled server, started by the Dockerfile's CMD from a folder holding only what the runtime stage copies.
 */
describe('the compiled server, as the Docker image runs it', () => {
  const app = mkdtempSync(join(tmpdir(), 'usher-image-'));
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('builds, starts from the runtime stage’s files alone, serves the API and the console, and stops cleanly', async () => {
    const built = await runCommand(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], 240_000);
    expect(built.code, built.stdout + built.stderr).toBe(0);

    const { copies, cmd, health } = runtimeStage();
    expect(copies.map((c) => c.to).sort()).toEqual(['./', './dist', './migrations', './node_modules', './policies']);
    for (const { from, to } of copies) {
      if (from === 'node_modules') symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
      else cpSync(join(ROOT, from), join(app, to === './' ? from : to), { recursive: true });
    }
    expect(cmd[0]).toBe('node');

    const run = await startServerProcess({ NODE_ENV: 'production', USHER_DATA_DIR: join(app, 'data') }, app, [process.execPath, ...cmd.slice(1)]);
    try {
      const c = client(run.url);
      const page = await c.get('/');
      expect(page.status).toBe(200);
      const script = /<script type="module"[^>]* src="([^"]+)"/.exec(page.text)?.[1];
      expect(script, page.text).toMatch(/\/assets\/.+\.js$/);
      expect((await c.get(script!)).status).toBe(200);
      expect((await c.get('/login')).status).toBe(200);
      const setup = await c.post('/api/v1/auth/setup', { body: { username: 'admin', password: 'admin-password-1' } });
      expect(setup.status).toBe(201);
      expect((await c.get('/api/v1/auth/me', { key: setup.body.apiKey })).body).toMatchObject({ username: 'admin', role: 'admin' });

      // The image's HEALTHCHECK command, as Docker runs it inside the container.
      const port = new URL(run.url).port;
      const probe = await runCommand(process.execPath, health.slice(1), 10_000, { USHER_PORT: port });
      expect(probe.code, probe.stderr).toBe(0);
    } finally {
      await run.stop();
    }
    expect(run.child.exitCode).toBe(0);
  }, 300_000);
});
