/**
 * True the first time a key is seen in each window, false after: one audit row per refused client per
 * minute, however many refused logins it sends. Bounded: the keys are forgotten at each new window, and
 * past 10,000 keys in one window the rest count as seen.
 */
export class OncePerWindow {
  private seen = new Set<string>();
  private windowStart = 0;

  constructor(private readonly windowMs: number) {}

  first(key: string, now = Date.now()): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.seen = new Set();
      this.windowStart = now;
    }
    if (this.seen.has(key) || this.seen.size >= 10_000) return false;
    this.seen.add(key);
    return true;
  }
}
