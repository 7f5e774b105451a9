// Cache in front of any MailboxDirectory: TTL (shorter for not-found), LRU bound, request coalescing,
// and stale-on-error: while the directory fails, answers it gave before keep being served (up to
// maxStaleMs past expiry); identities never seen get the fail policy (`unavailable` by default,
// which the sidecar turns into its fail-closed 503). After repeated failures the backend is not
// asked again for errorBackoffMs, so an outage does not cost every request a timeout.
// A directory that hangs (a frozen domain controller, dropped packets) is handled like one that is
// down: a caller's deadline (LookupOptions.deadlineMs) that the backend misses is answered at once
// from the stale entry (or the fail policy) while the search goes on and fills the cache if it ever
// answers; a deadline miss counts as a failure for the back-off; and at most maxInFlight backend
// look-ups run at once, further misses being answered as if the directory were down.
import { Counter, Gauge, type Registry, register as defaultRegistry } from "prom-client";
import type { Logger } from "pino";
import type { LookupOptions, LookupResult, MailboxDirectory } from "../../model/directory/types.js";

export type FailPolicy = "unavailable" | "not-found";

export interface CachedDirectoryOptions {
  /** How long a found answer is fresh. */
  readonly ttlMs: number;
  /** How long a not-found answer is fresh (shorter: new mailboxes appear). */
  readonly negativeTtlMs: number;
  /** Most entries kept (least recently used go first). */
  readonly maxEntries: number;
  /** How long past expiry an answer may still be served while the directory fails. */
  readonly maxStaleMs: number;
  /** Answer for identities with no earlier answer while the directory fails. */
  readonly failPolicy?: FailPolicy;
  /**
   * After `errorBackoffAfter` failures in a row (default 3), answer from cache / by policy without
   * asking the directory for this long (default 1000 ms); the next look-up after it probes again.
   */
  readonly errorBackoffMs?: number;
  readonly errorBackoffAfter?: number;
  /** Most backend look-ups in flight at once (default 64); a miss beyond it is answered as if the directory failed. */
  readonly maxInFlight?: number;
  /** Label value for the metrics (several directories may share a registry). */
  readonly name?: string;
  readonly registry?: Registry;
  readonly logger?: Logger;
  /** Clock, for tests. */
  readonly now?: () => number;
}

interface Entry {
  readonly result: LookupResult;
  readonly freshUntil: number;
  readonly staleUntil: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  staleServed: number;
  errors: number;
  coalesced: number;
  entries: number;
  /** Callers answered without the backend's answer because it missed their deadline. */
  deadlineMissed: number;
  /** Misses answered without asking the backend because maxInFlight look-ups were already running. */
  shed: number;
}

interface Metrics {
  hits: Counter<"directory">;
  misses: Counter<"directory">;
  stale: Counter<"directory">;
  errors: Counter<"directory">;
  coalesced: Counter<"directory">;
  deadlineMissed: Counter<"directory">;
  shed: Counter<"directory">;
  entries: Gauge<"directory">;
}

const metricsByRegistry = new WeakMap<Registry, Metrics>();

const GUID_RE = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/;

/** Cache key of an identity: trimmed, lower-case, GUID braces dropped (as every directory compares). */
export function cacheKey(identity: string): string {
  const s = identity.trim().toLowerCase();
  const g = GUID_RE.exec(s);
  return g ? g[1] : s;
}

function metricsFor(registry: Registry): Metrics {
  let m = metricsByRegistry.get(registry);
  if (m) return m;
  const counter = (name: string, help: string) =>
    (registry.getSingleMetric(name) as Counter<"directory"> | undefined) ??
    new Counter({ name, help, labelNames: ["directory"], registers: [registry] });
  m = {
    hits: counter("cas_directory_cache_hits_total", "Mailbox look-ups answered from a fresh cache entry"),
    misses: counter("cas_directory_cache_misses_total", "Mailbox look-ups that went to the directory"),
    stale: counter("cas_directory_cache_stale_served_total", "Expired answers served because the directory failed"),
    errors: counter("cas_directory_errors_total", "Directory look-ups that failed (unreachable, timeout, bind error)"),
    coalesced: counter("cas_directory_cache_coalesced_total", "Look-ups that joined one already in flight for the same identity"),
    deadlineMissed: counter("cas_directory_deadline_missed_total", "Look-ups answered from the stale entry or the fail policy because the directory missed the request deadline"),
    shed: counter("cas_directory_shed_total", "Look-ups not sent to the directory because the most allowed were already in flight"),
    entries:
      (registry.getSingleMetric("cas_directory_cache_entries") as Gauge<"directory"> | undefined) ??
      new Gauge({ name: "cas_directory_cache_entries", help: "Entries in the mailbox cache", labelNames: ["directory"], registers: [registry] }),
  };
  metricsByRegistry.set(registry, m);
  return m;
}

export class CachedDirectory implements MailboxDirectory {
  /** Map order is recency order: the first key is the least recently used. */
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<LookupResult>>();
  private readonly metrics: Metrics;
  private readonly label: { directory: string };
  private readonly now: () => number;
  private backoffUntil = 0;
  private failuresInARow = 0;
  private lastError = "";
  /** Backend look-ups running (coalesced callers share one). */
  private running = 0;
  readonly stats: CacheStats = { hits: 0, misses: 0, staleServed: 0, errors: 0, coalesced: 0, entries: 0, deadlineMissed: 0, shed: 0 };

  constructor(
    private readonly inner: MailboxDirectory,
    private readonly opts: CachedDirectoryOptions,
  ) {
    this.metrics = metricsFor(opts.registry ?? defaultRegistry);
    this.label = { directory: opts.name ?? "default" };
    this.now = opts.now ?? Date.now;
  }

  async lookup(identity: string, options?: LookupOptions): Promise<LookupResult> {
    const key = cacheKey(identity);
    const e = this.cache.get(key);
    if (e && this.now() < e.freshUntil) {
      this.cache.delete(key);
      this.cache.set(key, e);
      this.stats.hits++;
      this.metrics.hits.inc(this.label);
      return e.result;
    }
    let fetch = this.inflight.get(key);
    if (fetch) {
      this.stats.coalesced++;
      this.metrics.coalesced.inc(this.label);
    } else {
      this.stats.misses++;
      this.metrics.misses.inc(this.label);
      fetch = this.fetch(key, identity).finally(() => this.inflight.delete(key));
      this.inflight.set(key, fetch);
    }
    const deadline = options?.deadlineMs;
    return deadline === undefined ? fetch : this.withDeadline(key, fetch, deadline);
  }

  /** The fetch's answer if it comes within `ms`; else at once the stale entry or the fail policy (the fetch goes on). */
  private withDeadline(key: string, fetch: Promise<LookupResult>, ms: number): Promise<LookupResult> {
    return new Promise<LookupResult>((resolve) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        this.stats.deadlineMissed++;
        this.metrics.deadlineMissed.inc(this.label);
        const reason = `directory did not answer within ${ms} ms`;
        this.noteFailure(reason, key);
        resolve(this.failed(key, { status: "unavailable", reason }));
      }, Math.max(0, ms));
      void fetch.then((r) => {
        if (done) return;
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  private async fetch(key: string, identity: string): Promise<LookupResult> {
    let r: LookupResult;
    if (this.now() < this.backoffUntil) {
      r = { status: "unavailable", reason: this.lastError };
    } else if (this.running >= (this.opts.maxInFlight ?? 64)) {
      // A hung directory must not collect one pending search per request: past the bound, answer
      // as if it were down (stale entry or policy) until some of the running ones finish.
      this.stats.shed++;
      this.metrics.shed.inc(this.label);
      r = { status: "unavailable", reason: `${this.running} directory look-ups already in flight` };
    } else {
      this.running++;
      try {
        r = await this.inner.lookup(identity);
      } catch (err) {
        // The contract says lookup never throws; a directory that does is still handled.
        r = { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
      } finally {
        this.running--;
      }
      if (r.status === "unavailable") {
        this.stats.errors++;
        this.metrics.errors.inc(this.label);
        // A search whose caller already gave up on it was counted then (a deadline miss).
        if (!this.late.delete(key)) this.noteFailure(r.reason);
      } else if (!this.late.delete(key)) {
        // Only an answer in time clears the failure count: a directory that answers after every
        // deadline is as good as down for the requests, and backs off like one.
        this.failuresInARow = 0;
        this.backoffUntil = 0;
      }
    }
    if (r.status === "unavailable") return this.failed(key, r);
    const now = this.now();
    const ttl = r.status === "found" ? this.opts.ttlMs : this.opts.negativeTtlMs;
    this.cache.delete(key);
    this.cache.set(key, { result: r, freshUntil: now + ttl, staleUntil: now + ttl + this.opts.maxStaleMs });
    while (this.cache.size > this.opts.maxEntries) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    this.stats.entries = this.cache.size;
    this.metrics.entries.set(this.label, this.cache.size);
    return r;
  }

  /** Keys whose running search already counted as a failure (its caller's deadline passed). */
  private readonly late = new Set<string>();

  /**
   * One more failure in a row. One failed search (a slow query) must not fail everybody else:
   * back off only when failures repeat, which is what an unreachable or hung directory looks like.
   */
  private noteFailure(reason: string, lateKey?: string): void {
    this.lastError = reason;
    if (lateKey !== undefined) {
      if (!this.inflight.has(lateKey) || this.late.has(lateKey)) return;
      this.late.add(lateKey);
    }
    if (++this.failuresInARow >= (this.opts.errorBackoffAfter ?? 3)) {
      this.backoffUntil = this.now() + (this.opts.errorBackoffMs ?? 1000);
    }
  }

  /** The answer while the directory fails: the stale entry if young enough, else the fail policy. */
  private failed(key: string, r: Extract<LookupResult, { status: "unavailable" }>): LookupResult {
    const old = this.cache.get(key);
    if (old && this.now() < old.staleUntil) {
      this.stats.staleServed++;
      this.metrics.stale.inc(this.label);
      this.opts.logger?.debug({ identity: key, reason: r.reason }, "directory unavailable; serving stale answer");
      return old.result;
    }
    return (this.opts.failPolicy ?? "unavailable") === "not-found" ? { status: "not-found" } : r;
  }

  /** Drop every cached answer (e.g. after a topology change that renames databases). */
  clear(): void {
    this.cache.clear();
    this.stats.entries = 0;
    this.metrics.entries.set(this.label, 0);
  }

  get size(): number {
    return this.cache.size;
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
