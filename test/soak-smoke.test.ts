// A short run of the soak bench (bench/soak.bench.ts; the long one is `npm run bench -- soak`):
// Checks against the configuration in force while manifests churn and xDS clients NACK and vanish.
// Only correctness is asserted here; timing targets belong to the bench.
import { describe, expect, it } from "vitest";

describe("soak smoke (issue 20)", () => {
  it("12 s: no wrong decision, no failed Check", async () => {
    process.env.SOAK_SECONDS = "12";
    process.env.SOAK_CHECKS_PER_S = "50";
    const { default: soak } = await import("../bench/soak.bench.js");
    const rows = await soak();
    expect(rows.find((r) => r.metric === "wrong decisions")?.value).toBe(0);
    expect(rows.find((r) => r.metric.startsWith("decisions/s"))?.note).toMatch(/, 0 gRPC failures/);
  }, 120_000);
});
