// Prometheus metrics of the sidecar, on their own registry (several sidecars can live in one test process).
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class SidecarMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<"decision">;
  readonly ruleHits: Counter<"decision" | "rule">;
  readonly duration: Histogram<"api" | "decision">;
  readonly directoryFailures: Counter<"reason">;
  readonly badRequests: Counter<"status">;

  // Label-bound children, cached: looking a child up by label object on every request is the slow path.
  private readonly children = new Map<string, { inc(): void } | { observe(v: number): void }>();

  /** Count one answer: its decision, each rule applied, and how long it took. */
  record(api: string, decision: string, rules: readonly string[], seconds: number): void {
    (this.child(`d\n${decision}`, () => this.decisions.labels(decision)) as { inc(): void }).inc();
    for (const r of rules) (this.child(`r\n${decision}\n${r}`, () => this.ruleHits.labels(decision, r)) as { inc(): void }).inc();
    (this.child(`h\n${api}\n${decision}`, () => this.duration.labels(api, decision)) as { observe(v: number): void }).observe(seconds);
  }

  private child<T extends { inc(): void } | { observe(v: number): void }>(key: string, make: () => T): T {
    let c = this.children.get(key) as T | undefined;
    if (!c) {
      // Rule IDs come from the engine, not the client, but bound the map anyway.
      if (this.children.size > 5000) this.children.clear();
      c = make();
      this.children.set(key, c);
    }
    return c;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.decisions = new Counter({
      name: "cas_sidecar_decisions_total",
      help: "Decisions by outcome (local, proxy, redirect-*, error)",
      labelNames: ["decision"],
      registers: [this.registry],
    });
    this.ruleHits = new Counter({
      name: "cas_sidecar_decision_rules_total",
      help: "Rules applied (RULES.md IDs), by decision",
      labelNames: ["decision", "rule"],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: "cas_sidecar_check_duration_seconds",
      help: "Time from CheckRequest/ProcessingRequest received to answer, by API and decision",
      labelNames: ["api", "decision"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.5],
      registers: [this.registry],
    });
    this.directoryFailures = new Counter({
      name: "cas_sidecar_directory_failures_total",
      help: "Directory look-ups that timed out or were unavailable",
      labelNames: ["reason"],
      registers: [this.registry],
    });
    this.badRequests = new Counter({
      name: "cas_sidecar_bad_requests_total",
      help: "Requests refused as malformed or too large, by HTTP status",
      labelNames: ["status"],
      registers: [this.registry],
    });
  }
}
