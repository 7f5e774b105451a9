// Prometheus metrics of the sidecar, on their own registry (several sidecars can live in one test process).
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { ConnectionMemory } from "./connections.js";
import { TalliedHistogram, type HistogramSeries } from "./tallied-histogram.js";

export class SidecarMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<"decision">;
  readonly ruleHits: Counter<"decision" | "rule">;
  readonly duration: TalliedHistogram<"api" | "decision">;
  readonly directoryFailures: Counter<"reason">;
  readonly badRequests: Counter<"status">;
  readonly connections: Gauge;
  readonly connectionsForgotten: Counter<"reason">;
  /** The per-connection memory the gauges read at scrape time (R-LB-8); set by DecisionService. */
  connectionMemory: ConnectionMemory | undefined;
  private forgottenReported = { expired: 0, evicted: 0 };

  /**
   * Per-request counting happens here, in plain numbers under two-level maps keyed by the engine's
   * own strings (no label hashing, no key building per request); the prom-client counters are
   * brought up to date from these tallies whenever they are read (their collect hook, i.e. at every
   * scrape or get()), so what Prometheus sees is exact. prom-client's bound children re-hash their
   * labels on every inc(), which is measurable at the sidecar's rates.
   */
  private readonly tallies = new Map<string, DecisionTally>();
  private readonly histograms = new Map<string, Map<string, HistogramSeries>>();

  /** Count one answer: its decision, each rule applied, and how long it took. */
  record(api: string, decision: string, rules: readonly string[], seconds: number): void {
    let t = this.tallies.get(decision);
    if (!t) {
      // Decision names and rule IDs come from the engine, not the client; bound the maps anyway.
      if (this.tallies.size > 64) this.flushTallies(true);
      t = { n: 0, reported: 0, rules: new Map() };
      this.tallies.set(decision, t);
    }
    t.n++;
    for (const r of rules) {
      const rt = t.rules.get(r);
      if (rt) rt.n++;
      else {
        if (t.rules.size > 2000) this.flushTallies(true);
        t.rules.set(r, { n: 1, reported: 0 });
      }
    }
    let byDecision = this.histograms.get(api);
    if (!byDecision) this.histograms.set(api, (byDecision = new Map()));
    let h = byDecision.get(decision);
    if (!h) {
      if (byDecision.size > 64) byDecision.clear();
      byDecision.set(decision, (h = this.duration.series(api, decision)));
    }
    h.observe(seconds);
  }

  /** Push un-reported counts into the prom-client counters (and optionally forget the tallies). */
  private flushTallies(forget = false): void {
    for (const [decision, t] of this.tallies) {
      if (t.n > t.reported) this.decisions.inc({ decision }, t.n - t.reported);
      t.reported = t.n;
      for (const [rule, rt] of t.rules) {
        if (rt.n > rt.reported) this.ruleHits.inc({ decision, rule }, rt.n - rt.reported);
        rt.reported = rt.n;
      }
    }
    if (forget) this.tallies.clear();
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.decisions = new Counter({
      name: "cas_sidecar_decisions_total",
      help: "Decisions by outcome (local, proxy, redirect-*, error)",
      labelNames: ["decision"],
      registers: [this.registry],
      collect: () => this.flushTallies(),
    });
    this.ruleHits = new Counter({
      name: "cas_sidecar_decision_rules_total",
      help: "Rules applied (docs/rules.md IDs), by decision",
      labelNames: ["decision", "rule"],
      registers: [this.registry],
      collect: () => this.flushTallies(),
    });
    this.duration = new TalliedHistogram({
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
    this.connections = new Gauge({
      name: "cas_sidecar_connections_remembered",
      help: "Downstream connections remembered because they authenticate with NTLM/Negotiate (R-LB-8)",
      registers: [this.registry],
      collect: () => this.connections.set(this.connectionMemory?.size ?? 0),
    });
    this.connectionsForgotten = new Counter({
      name: "cas_sidecar_connections_forgotten_total",
      help: "Remembered connections forgotten: idle past the limit (expired) or least recently used past the bound (evicted)",
      labelNames: ["reason"],
      registers: [this.registry],
      collect: () => {
        const f = this.connectionMemory?.forgotten;
        if (!f) return;
        for (const reason of ["expired", "evicted"] as const) {
          if (f[reason] > this.forgottenReported[reason]) this.connectionsForgotten.inc({ reason }, f[reason] - this.forgottenReported[reason]);
          this.forgottenReported[reason] = f[reason];
        }
      },
    });
    this.badRequests = new Counter({
      name: "cas_sidecar_bad_requests_total",
      help: "Requests refused as malformed or too large, by HTTP status",
      labelNames: ["status"],
      registers: [this.registry],
    });
  }
}

interface Tally {
  n: number;
  reported: number;
}
interface DecisionTally extends Tally {
  readonly rules: Map<string, Tally>;
}
