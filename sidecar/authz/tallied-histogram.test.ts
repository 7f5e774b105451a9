// The tallied histogram must expose exactly what prom-client's own Histogram exposes for the same
// observations (text format and JSON), so swapping it in changes nothing a Prometheus server sees.
import fc from "fast-check";
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { TalliedHistogram } from "./tallied-histogram.js";

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.5];
const config = (registry: Registry) => ({
  name: "t_seconds",
  help: "test histogram",
  labelNames: ["api", "decision"] as const,
  buckets: BUCKETS,
  registers: [registry],
});

function pair(): { ours: TalliedHistogram<"api" | "decision">; theirs: Histogram<"api" | "decision">; a: Registry; b: Registry } {
  const a = new Registry();
  const b = new Registry();
  return { ours: new TalliedHistogram(config(a)), theirs: new Histogram({ ...config(b), labelNames: ["api", "decision"] }), a, b };
}

describe("TalliedHistogram", () => {
  it("exports what prom-client's Histogram exports, for any observations (values on and between bounds)", async () => {
    const obs = fc.record({
      api: fc.constantFrom("ext_authz", "ext_proc"),
      decision: fc.constantFrom("local", "proxy", "error", "redirect-451"),
      v: fc.oneof(fc.constantFrom(...BUCKETS, 0, 1, 0.75), fc.double({ min: 0, max: 2, noNaN: true })),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(obs, { maxLength: 60 }), async (list) => {
        const { ours, theirs, a, b } = pair();
        for (const o of list) {
          ours.series(o.api, o.decision).observe(o.v);
          theirs.labels(o.api, o.decision).observe(o.v);
        }
        expect(await a.metrics()).toBe(await b.metrics());
        // JSON: the same values; prom-client also lists `exemplar: null` (exemplars are not enabled here).
        const noExemplar = (m: Awaited<ReturnType<Registry["getMetricsAsJSON"]>>) =>
          m.map((x) => ({ ...x, values: x.values.map((v) => { const { exemplar: _e, ...rest } = v as typeof v & { exemplar?: unknown }; return rest; }) }));
        expect(noExemplar(await a.getMetricsAsJSON())).toEqual(noExemplar(await b.getMetricsAsJSON()));
      }),
      { numRuns: 200 },
    );
  });

  it("takes labelled observe() calls too, ignores non-finite values as prom-client refuses them, and resets", async () => {
    const { ours, a } = pair();
    ours.observe({ api: "ext_authz", decision: "local" }, 0.003);
    ours.series("ext_authz", "local").observe(Number.NaN);
    const text = await a.metrics();
    expect(text).toContain('t_seconds_bucket{le="0.005",api="ext_authz",decision="local"} 1');
    expect(text).toContain('t_seconds_count{api="ext_authz",decision="local"} 1');
    a.resetMetrics();
    expect(await a.metrics()).not.toContain("t_seconds_count");
  });
});
