import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a TypeScript entry point of the project to completion, with a clean environment plus `env`. */
export function runTs(script: string, args: string[], env: Record<string, string>, input?: string, timeoutMs = 30_000): Promise<Ran> {
  return runCommand(TSX, [join(ROOT, script), ...args], timeoutMs, env, input);
}

/** Runs a command to completion from the project root, with a clean environment plus `env`. */
export function runCommand(command: string, args: readonly string[], timeoutMs: number, env: Record<string, string> = {}, input = ''): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

export interface Running {
  child: ChildProcess;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `src/server.ts` as `npm start` would (or `command`, such as the compiled server) and waits for its "usher listening" line. */
export async function startServerProcess(env: Record<string, string>, cwd = ROOT, command: readonly string[] = [TSX, join(ROOT, 'src/server.ts')]): Promise<Running> {
  const port = await freePort();
  const child = spawn(command[0]!, command.slice(1), {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', USHER_PORT: String(port), USHER_HOST: '127.0.0.1', ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const url = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${out}`));
    }, 30_000);
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout!.off('data', heard);
      child.off('exit', exited);
      if (err) reject(err);
      else resolve();
    };
    // The server logs one JSON line once it listens.
    const heard = () => {
      if (out.split('\n').some((line) => line.includes('"msg":"usher listening"'))) done();
    };
    const exited = (code: number | null) => done(new Error(`server exited ${code}: ${out}`));
    child.stdout!.on('data', heard);
    child.once('exit', exited);
  });
  return {
    child,
    url,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
