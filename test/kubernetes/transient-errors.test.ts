// Transient API errors against the kube-apiserver STAND-IN (issue 21, point 6): a status write that
// fails with 5xx, 429 (with Retry-After) or a timeout is retried on its own, with backoff, never
// sooner than Retry-After; a watch that fails with anything but 410 resumes from the last
// resourceVersion instead of a full relist (410 still relists).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { KINDS, type Condition } from "../../crds/index.js";
import { KubernetesOperator, type KubernetesOperatorOptions } from "../../operator/kubernetes/runtime.js";
import { KubernetesProvider, type KubernetesSnapshot } from "../../operator/kubernetes/provider.js";
import { parseRetryAfter } from "../../operator/kubernetes/rest.js";
import { KubeApiserverStandin, type KubeObject } from "../kube-apiserver-standin/server.js";
import { contosoObjects, standinKubeConfig, waitFor } from "../kube-apiserver-standin/helpers.js";

const log = pino({ level: "silent" });
const V = "casgateway.io/v1alpha1";
const cond = (o: KubeObject | undefined, type: string) =>
  ((o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

describe("status writes retried on transient errors", () => {
  let api: KubeApiserverStandin;
  const running: KubernetesOperator[] = [];
  beforeEach(async () => {
    api = new KubeApiserverStandin();
    await api.start();
  });
  afterEach(async () => {
    for (const op of running.splice(0)) await op.stop();
    await api.stop();
  });
  const start = async (extra: Partial<KubernetesOperatorOptions> = {}) => {
    const op = new KubernetesOperator({
      kc: standinKubeConfig(api.url, "token-op-a"),
      log,
      identity: "op-a",
      // Long lease timings: a loaded test machine must not make leadership flap (a new leader re-checks
      // every object at once, which would blur the retry timings under test).
      lease: { namespace: "mail", name: "cas-gateway-operator", durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 200 },
      debounceMs: 20,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      statusRetry: { initialMs: 50, maxMs: 400, requestTimeoutMs: 400 },
      ...extra,
    });
    running.push(op);
    await op.start();
    return op;
  };
  const patches = () => api.requests.filter((r) => r.method === "PATCH" && r.path.endsWith("/status"));

  it("503 then 429 with Retry-After: the status lands with no other change, the 429's Retry-After honoured", async () => {
    const site = contosoObjects("mail").find((o) => o.kind === "ADSite")!;
    api.apply(site);
    api.faults.failNextStatusPatches.push({ code: 503 }, { code: 429, retryAfter: "2" });
    const op = await start();
    await waitFor("leader", () => op.isLeader);
    await waitFor("Accepted written", () => cond(api.get(V, "ADSite", "mail", site.metadata.name), "Accepted"), 15_000);
    const p = patches();
    expect(p.map((r) => r.status)).toEqual([503, 429, 200]);
    // The retry after the 429 came no sooner than its Retry-After (2 s), though the backoff was 50-100 ms.
    expect(p[2].at - p[1].at).toBeGreaterThanOrEqual(1950);
    // The retry after the 503 used the (short) backoff, not some unrelated change.
    expect(p[1].at - p[0].at).toBeLessThan(1900);
    expect(op.writer.pendingRetries).toBe(0);
    const retries = Number(/ (\d+)$/m.exec(await op.metrics.registry.getSingleMetricAsString("casgw_k8s_status_retries_total"))?.[1]);
    expect(retries).toBe(2);
  });

  it("a status patch that is never answered times out and is retried", async () => {
    const site = contosoObjects("mail").find((o) => o.kind === "ADSite")!;
    api.apply(site);
    api.faults.hangNextStatusPatches = 1;
    const op = await start();
    await waitFor("leader", () => op.isLeader);
    await waitFor("Accepted written", () => cond(api.get(V, "ADSite", "mail", site.metadata.name), "Accepted"), 15_000);
    expect(api.hungRequests).toBe(1);
    expect(patches().map((r) => r.status)).toEqual([0, 200]); // 0: recorded, never answered
  });

  it("a 4xx other than 409/429 is not scheduled for a retry (the request itself is wrong)", async () => {
    const site = contosoObjects("mail").find((o) => o.kind === "ADSite")!;
    api.apply(site);
    api.faults.failNextStatusPatches.push({ code: 422 });
    const op = await start();
    await waitFor("leader", () => op.isLeader);
    await waitFor("the 422", () => patches().length >= 1);
    await new Promise((r) => setTimeout(r, 800));
    expect(patches().filter((r) => r.status === 422)).toHaveLength(1);
    expect(op.writer.pendingRetries).toBe(0);
    expect(await op.metrics.registry.getSingleMetricAsString("casgw_k8s_status_retries_total")).toMatch(/ 0$/m);
  });

  it("Retry-After as delta-seconds or an HTTP date", () => {
    const now = Date.parse("2026-12-05T12:00:00Z");
    expect(parseRetryAfter("7", now)).toBe(7);
    expect(parseRetryAfter("Sat, 05 Dec 2026 12:00:03 GMT", now)).toBe(3);
    expect(parseRetryAfter("Sat, 05 Dec 2026 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe("watch errors other than 410 resume from the last resourceVersion", () => {
  let api: KubeApiserverStandin;
  let provider: KubernetesProvider | undefined;
  let snaps: KubernetesSnapshot[];
  beforeEach(async () => {
    api = new KubeApiserverStandin();
    await api.start();
    snaps = [];
  });
  afterEach(async () => {
    await provider?.stop();
    provider = undefined;
    await api.stop();
  });
  const start = async () => {
    provider = new KubernetesProvider({ kc: standinKubeConfig(api.url), log, debounceMs: 20, backoffInitialMs: 20, backoffMaxMs: 200 });
    await provider.startK8s((s) => snaps.push(s));
    await waitFor("watches open", () => api.openWatches >= 5);
    return provider;
  };
  const lists = () => api.requests.filter((r) => r.method === "GET" && r.query.watch !== "true");
  const siteWatches = () => api.requests.filter((r) => r.query.watch === "true" && r.path.endsWith("/adsites"));
  const last = () => snaps[snaps.length - 1];

  it("an ERROR event (500) and a refused re-watch (503): no relist, watched again from where it was, nothing missed", async () => {
    const objs = contosoObjects("mail");
    for (const o of objs.slice(0, 3)) api.apply(o);
    const p = await start();
    const sites = p.informers.get("ADSite")!;
    const listCount = lists().length;
    const rvBefore = sites.resourceVersion;
    const watchesBefore = siteWatches().length;
    const watches = KINDS.length + 1; // one per casgateway.io kind, and Secrets
    api.faults.failNextWatches = { count: watches, code: 503 }; // the next re-watches are refused too
    expect(api.failWatches(500)).toBe(watches);
    // Changes while the watches are down.
    for (const o of objs.slice(3)) api.apply(o);
    await waitFor("all objects", () => last().objects.length === objs.length, 10_000);
    expect(lists().length).toBe(listCount); // no relist
    const rewatches = siteWatches().slice(watchesBefore);
    expect(rewatches.some((r) => r.status === 503)).toBe(true);
    expect(rewatches.every((r) => r.query.resourceVersion === rvBefore)).toBe(true);
    expect(sites.stats.resumes).toBeGreaterThanOrEqual(1);
    expect(sites.stats.gone).toBe(0);
  });

  it("a 429 ERROR event resumes too; a later 410 still relists", async () => {
    api.apply(contosoObjects("mail")[0]);
    const p = await start();
    const sites = p.informers.get("ADSite")!;
    const listsBefore = sites.stats.lists;
    api.failWatches(429, "too many requests");
    await waitFor("resumed", () => sites.stats.resumes >= 1 && api.openWatches >= 5);
    expect(sites.stats.lists).toBe(listsBefore);
    api.compact();
    await waitFor("relisted after 410", () => sites.stats.lists > listsBefore);
    expect(sites.stats.gone).toBeGreaterThanOrEqual(1);
  });
});
