// Cache in front of any MailboxDirectory: TTL (shorter for not-found), LRU bound, request coalescing,
// and stale-on-error: while the directory fails, answers it gave before keep being served (up to
// maxStaleMs past expiry); identities never seen get the fail policy (`unavailable` by default,
// which the sidecar turns into its fail-closed 503). After repeated failures the backend is not
// asked again for errorBackoffMs, so an outage does not cost every request a timeout.
import { Counter, Gauge, type Registry, register as defaultRegistry } from "prom-client";
import type { Logger } from "pino";
import type { LookupResult, MailboxDirectory } from "../../model/directory/types.js";

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
}

interface Metrics {
  hits: Counter<"directory">;
  misses: Counter<"directory">;
  stale: Counter<"directory">;
  errors: Counter<"directory">;
  coalesced: Counter<"directory">;
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
  readonly stats: CacheStats = { hits: 0, misses: 0, staleServed: 0, errors: 0, coalesced: 0, entries: 0 };

  constructor(
    private readonly inner: MailboxDirectory,
    private readonly opts: CachedDirectoryOptions,
  ) {
    this.metrics = metricsFor(opts.registry ?? defaultRegistry);
    this.label = { directory: opts.name ?? "default" };
    this.now = opts.now ?? Date.now;
  }

  async lookup(identity: string): Promise<LookupResult> {
    const key = cacheKey(identity);
    const e = this.cache.get(key);
    if (e && this.now() < e.freshUntil) {
      this.cache.delete(key);
      this.cache.set(key, e);
      this.stats.hits++;
      this.metrics.hits.inc(this.label);
      return e.result;
    }
    const running = this.inflight.get(key);
    if (running) {
      this.stats.coalesced++;
      this.metrics.coalesced.inc(this.label);
      return running;
    }
    this.stats.misses++;
    this.metrics.misses.inc(this.label);
    const p = this.fetch(key, identity).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetch(key: string, identity: string): Promise<LookupResult> {
    let r: LookupResult;
    if (this.now() < this.backoffUntil) {
      r = { status: "unavailable", reason: this.lastError };
    } else {
      try {
        r = await this.inner.lookup(identity);
      } catch (err) {
        // The contract says lookup never throws; a directory that does is still handled.
        r = { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
      }
      if (r.status === "unavailable") {
        this.stats.errors++;
        this.metrics.errors.inc(this.label);
        this.lastError = r.reason;
        // One failed search (a slow query) must not fail everybody else: back off only when
        // failures repeat, which is what an unreachable directory looks like.
        if (++this.failuresInARow >= (this.opts.errorBackoffAfter ?? 3)) {
          this.backoffUntil = this.now() + (this.opts.errorBackoffMs ?? 1000);
        }
      } else {
        this.failuresInARow = 0;
        this.backoffUntil = 0;
      }
    }
    const now = this.now();
    if (r.status === "unavailable") {
      const old = this.cache.get(key);
      if (old && now < old.staleUntil) {
        this.stats.staleServed++;
        this.metrics.stale.inc(this.label);
        this.opts.logger?.debug({ identity: key, reason: r.reason }, "directory unavailable; serving stale answer");
        return old.result;
      }
      return (this.opts.failPolicy ?? "unavailable") === "not-found" ? { status: "not-found" } : r;
    }
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
