import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** How often the delay is sampled: each sample is how late a timer of this period fired. */
export const SAMPLE_MS = 10;

/**
 * The event loop's delay over a recent window, from perf_hooks.monitorEventLoopDelay: two monitors, each
 * restarted every other `windowMs`, half a cycle apart, so the older always holds the last `windowMs` to
 * 2 × `windowMs` of samples (exact percentiles, never merged). Node records each sample as the whole
 * interval between two timer runs, sampling period included (an idle loop reads 10 ms); the period is
 * taken off here, leaving how long a ready callback waited. prom-client's nodejs_eventloop_lag_* keep it
 * in, and cover the time since the previous scrape.
 */
export class LoopDelay {
  private readonly monitors: [IntervalHistogram, IntervalHistogram];
  /** Which monitor was restarted last: the other one holds the longer window. */
  private newer = 1;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly windowMs = 5_000) {
    this.monitors = [monitorEventLoopDelay({ resolution: SAMPLE_MS }), monitorEventLoopDelay({ resolution: SAMPLE_MS })];
    for (const m of this.monitors) m.enable();
    this.timer = setInterval(() => this.rotate(), windowMs);
    this.timer.unref();
  }

  /** Restarts the older monitor (public for tests): the other one now holds the window. */
  rotate(): void {
    const older = 1 - this.newer;
    this.monitors[older]!.reset();
    this.newer = older;
  }

  private get window(): IntervalHistogram {
    return this.monitors[1 - this.newer]!;
  }

  /** How many samples the window holds. */
  get samples(): number {
    return this.window.count;
  }

  /** The delay at percentile `p` (0-100) over the window, in seconds; 0 before any sample. */
  percentile(p: number): number {
    const h = this.window;
    if (h.count === 0) return 0;
    return Math.max(0, h.percentile(p) / 1e6 - SAMPLE_MS) / 1000;
  }

  /** The longest delay over the window, in seconds. */
  max(): number {
    const h = this.window;
    return h.count === 0 ? 0 : Math.max(0, h.max / 1e6 - SAMPLE_MS) / 1000;
  }

  close(): void {
    clearInterval(this.timer);
    for (const m of this.monitors) m.disable();
  }
}
