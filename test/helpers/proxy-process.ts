import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Waits until `probe` (a URL the proxy serves) answers at all while `child` runs, and returns how to stop
 * it; stopping, or a start that fails, also removes the proxy's private folder `dir`. `log` is what the
 * proxy has said so far, for the error.
 */
export async function untilAnswering(name: string, child: ChildProcess, dir: string, probe: string, log: () => string): Promise<() => Promise<void>> {
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', done);
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const said = log();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${name} exited with ${child.exitCode}: ${said}`);
    }
    try {
      await fetch(probe);
      return stop;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not answer ${probe}: ${log()}`);
    }
    // A readiness poll: a proxy announces nothing when it starts listening.
    await new Promise((r) => setTimeout(r, 50));
  }
}
