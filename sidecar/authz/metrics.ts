// Prometheus metrics of the sidecar, on their own registry (several sidecars can live in one test process).
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class SidecarMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<"decision">;
  readonly ruleHits: Counter<"decision" | "rule">;
  readonly duration: Histogram<"api" | "decision">;
  readonly directoryFailures: Counter<"reason">;
  readonly badRequests: Counter<"status">;

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
