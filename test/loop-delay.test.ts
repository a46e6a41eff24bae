import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { LoopDelay } from '../src/metrics/loop-delay.js';

/** Keeps the event loop busy for `ms`. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy on purpose
  }
}

describe('LoopDelay', () => {
  it('reports a stall of the loop in its window, then forgets it once both monitors have restarted', async () => {
    // Rotated by hand only: a window far longer than the test.
    const delay = new LoopDelay(3_600_000);
    try {
      // Sampling has started (the first timer run only sets the clock).
      await expect.poll(() => delay.samples).toBeGreaterThan(0);
      stall(150);
      // The first sample after the stall is at least its length, less the 10 ms sampling period.
      await expect.poll(() => delay.max()).toBeGreaterThanOrEqual(0.14);
      expect(delay.percentile(99)).toBeGreaterThanOrEqual(0.14);
      delay.rotate();
      // The monitor that saw the stall now holds the window.
      expect(delay.max()).toBeGreaterThanOrEqual(0.14);
      delay.rotate();
      // Both restarted since (with no sample taken in between): nothing left to report.
      expect(delay.max()).toBe(0);
      expect(delay.percentile(99)).toBe(0);
    } finally {
      delay.close();
    }
  });
});
