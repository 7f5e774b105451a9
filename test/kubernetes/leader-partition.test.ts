// Leader election cut off from the API server (stand-in with a partition fault: the leader's requests
// are never answered, the way dropped packets look; KubeRest's own request timeout stays at its 15 s
// default, equal to the lease duration, as in production). Before the fix the leader noticed only
// when a request returned: it kept leading 15-17 s against a 10 s deadline and two replicas led at
// once. Now it must step down by its renew deadline, counted from its last renew, and no other
// replica may lead before it has stopped. Four runs, as in the report.
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { LeaderElector } from "../../operator/kubernetes/leader.js";
import { KubeRest } from "../../operator/kubernetes/rest.js";
import { KubeApiserverStandin } from "../kube-apiserver-standin/server.js";
import { standinKubeConfig, waitFor } from "../kube-apiserver-standin/helpers.js";

const log = pino({ level: "silent" });
const LEASE = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200 };
/** Timer and event-loop latency allowed on a loaded 2-CPU machine. */
const SLACK_MS = 300;

describe("leader election under a network partition (kube-apiserver stand-in)", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it("the cut-off leader steps down by its renew deadline, before anyone else leads (4 runs)", async () => {
    for (let run = 0; run < 4; run++) {
      const api = new KubeApiserverStandin();
      await api.start();
      const events: { who: string; what: "start" | "stop"; at: number }[] = [];
      const elector = (who: string) => {
        const rest = new KubeRest(standinKubeConfig(api.url, `token-${who}`));
        const e = new LeaderElector({
          rest,
          namespace: "mail",
          name: "cas-gateway-operator",
          identity: who,
          ...LEASE,
          log,
          onStartedLeading: () => events.push({ who, what: "start", at: Date.now() }),
          onStoppedLeading: () => events.push({ who, what: "stop", at: Date.now() }),
        });
        return { e, rest };
      };
      const a = elector("op-a");
      a.e.start();
      await waitFor("a leads", () => a.e.isLeader, 5000);
      const b = elector("op-b");
      b.e.start();
      await new Promise((r) => setTimeout(r, 300 + run * 70)); // a few renews; a different phase each run
      expect(b.e.isLeader).toBe(false);

      const cutAt = Date.now();
      api.faults.partitioned.add("Bearer token-op-a");
      await waitFor("b leads", () => b.e.isLeader, 10_000);
      const aStop = events.find((x) => x.who === "op-a" && x.what === "stop");
      const bStart = events.find((x) => x.who === "op-b" && x.what === "start")!;
      expect(aStop, `run ${run}: a never stepped down`).toBeDefined();
      // a's last good renew was sent before the cut, so its deadline fell at most renewDeadline after it.
      expect(aStop!.at - cutAt, `run ${run}`).toBeLessThanOrEqual(LEASE.renewDeadlineMs + SLACK_MS);
      expect(a.e.isLeader).toBe(false);
      // Never two leaders: b starts only after a stopped, with the lease/renew-deadline margin between.
      expect(bStart.at, `run ${run}: overlap`).toBeGreaterThan(aStop!.at);
      expect(api.droppedRequests).toBeGreaterThan(0);

      await b.e.stop();
      await a.e.abandon();
      a.rest.close();
      b.rest.close();
      await api.stop();
    }
  }, 90_000);
});
