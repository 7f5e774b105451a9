// Decision counts over the last minutes, for the organisation page. The sidecar's Prometheus
// counters are cumulative; this samples them every few seconds (off the request path: nothing is
// added per decision) and answers "how many since the oldest sample inside the window", so the page
// shows recent traffic rather than totals since start.
import type { SidecarMetrics } from "../../sidecar/authz/metrics.js";

export interface DecisionTotals {
  /** Cumulative decisions by outcome name (local, proxy, redirect-…, error-…). */
  readonly byOutcome: ReadonlyMap<string, number>;
  /** Cumulative rule applications by rule ID (docs/rules.md). */
  readonly byRule: ReadonlyMap<string, number>;
}

export interface RecentSummary {
  /** Start of the window the counts cover (the oldest sample kept, or the start of counting). */
  readonly since: Date;
  readonly until: Date;
  readonly total: number;
  /** Sorted by count, most first, then by name. */
  readonly byOutcome: readonly (readonly [string, number])[];
  readonly byRule: readonly (readonly [string, number])[];
}

/** The sidecar's cumulative counts, read from its prom-client counters (their collect hook brings them up to date). */
export async function sidecarTotals(metrics: SidecarMetrics): Promise<DecisionTotals> {
  const byOutcome = new Map<string, number>();
  const byRule = new Map<string, number>();
  for (const v of (await metrics.decisions.get()).values) {
    const k = String(v.labels.decision ?? "");
    byOutcome.set(k, (byOutcome.get(k) ?? 0) + v.value);
  }
  for (const v of (await metrics.ruleHits.get()).values) {
    const k = String(v.labels.rule ?? "");
    byRule.set(k, (byRule.get(k) ?? 0) + v.value);
  }
  return { byOutcome, byRule };
}

interface Sample {
  readonly at: number;
  readonly totals: DecisionTotals;
}

export interface RecentDecisionsOptions {
  /** How far back the page looks (default 15 minutes). */
  readonly windowMs?: number;
  /** How often to sample (default 10 s). */
  readonly everyMs?: number;
  readonly now?: () => number;
}

export class RecentDecisions {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly windowMs: number;
  private readonly everyMs: number;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<DecisionTotals>,
    o: RecentDecisionsOptions = {},
  ) {
    this.windowMs = o.windowMs ?? 15 * 60_000;
    this.everyMs = o.everyMs ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  get windowMinutes(): number {
    return this.windowMs / 60_000;
  }

  /** Take the first sample now and then every everyMs; the timer never holds the process open. */
  async start(): Promise<void> {
    await this.sample();
    this.timer = setInterval(() => void this.sample().catch(() => undefined), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async sample(): Promise<void> {
    const at = this.now();
    this.samples.push({ at, totals: await this.read() });
    // Keep one sample at or before the window's start, so the window is covered in full.
    while (this.samples.length > 1 && this.samples[1].at <= at - this.windowMs) this.samples.shift();
  }

  /** Counts between the oldest sample in the window and now. */
  async summary(): Promise<RecentSummary> {
    const now = this.now();
    const current = await this.read();
    const base = this.samples.find((s) => s.at >= now - this.windowMs) ?? this.samples.at(-1);
    const diff = (cur: ReadonlyMap<string, number>, old: ReadonlyMap<string, number> | undefined) =>
      [...cur]
        .map(([k, n]) => [k, n - (old?.get(k) ?? 0)] as const)
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const byOutcome = diff(current.byOutcome, base?.totals.byOutcome);
    return {
      since: new Date(base?.at ?? now),
      until: new Date(now),
      total: byOutcome.reduce((s, [, n]) => s + n, 0),
      byOutcome,
      byRule: diff(current.byRule, base?.totals.byRule),
    };
  }
}
