// Deadlines for the decision service's directory look-ups.

export class LookupTimeout extends Error {}

/**
 * Deadlines for in-flight look-ups on one coarse ticker (every 10 ms while any are pending) instead
 * of a timer per request: a directory answer usually arrives long before the deadline, and creating
 * and clearing a timer per request is measurable at tens of thousands of requests per second.
 */
export class DeadlineTicker {
  private readonly pending = new Set<{ at: number; expire: () => void }>();
  private timer: NodeJS.Timeout | undefined;

  /** `p`'s outcome, or a LookupTimeout rejection once `ms` have passed. */
  race<T>(p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { at: Date.now() + ms, expire: () => reject(new LookupTimeout()) };
      this.pending.add(entry);
      if (!this.timer) {
        this.timer = setInterval(() => this.tick(), Math.max(1, Math.min(10, ms)));
        this.timer.unref();
      }
      p.then(
        (v) => {
          this.pending.delete(entry);
          resolve(v);
        },
        (e: unknown) => {
          this.pending.delete(entry);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  private tick(): void {
    const now = Date.now();
    for (const e of this.pending) {
      if (e.at <= now) {
        this.pending.delete(e);
        e.expire();
      }
    }
    if (this.pending.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
