// Kubernetes side of the operator: how long a fresh leader takes to write the status of every object
// of the example organisation (144 objects) through the kube-apiserver STAND-IN (loopback HTTP), and
// the pure cost of one snapshot (validate + topology + conditions) of the same organisation.
// No targets are set by the issue; the figures are for tracking.
import { pino } from "pino";
import { buildKubernetesSnapshot, ValidationCache } from "../operator/kubernetes/provider.js";
import type { RawObject } from "../operator/kubernetes/informer.js";
import { KubernetesOperator } from "../operator/kubernetes/runtime.js";
import { computeStatus, indexProblems } from "../operator/status/conditions.js";
import { buildTopology } from "../model/topology/build.js";
import { KubeApiserverStandin } from "../test/kube-apiserver-standin/server.js";
import { contosoObjects, standinKubeConfig, waitFor } from "../test/kube-apiserver-standin/helpers.js";
import { median, type BenchRow } from "./types.js";

const log = pino({ level: "silent" });

async function settleOnce(): Promise<number> {
  const api = new KubeApiserverStandin();
  await api.start();
  const objs = contosoObjects("mail");
  for (const o of objs) api.apply(o);
  const t0 = performance.now();
  const op = new KubernetesOperator({
    kc: standinKubeConfig(api.url),
    log,
    identity: "bench",
    lease: { namespace: "mail", name: "bench", durationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 },
    debounceMs: 20,
  });
  await op.start();
  const kinds = ["ADSite", "ClientAccessServer", "VirtualDirectory", "MailboxDatabase"];
  await waitFor(
    "all statuses",
    () => kinds.every((k) => api.list("casgateway.io/v1alpha1", k).every((o) => (o.status as { conditions?: unknown[] } | undefined)?.conditions?.length)),
    60_000,
    5,
  );
  const ms = performance.now() - t0;
  await op.stop();
  await api.stop();
  return ms;
}

function scaledRaw(copies: number): Record<string, RawObject[]> {
  const byKind: Record<string, RawObject[]> = { ADSite: [], ClientAccessServer: [], VirtualDirectory: [], MailboxDatabase: [] };
  let uid = 0;
  for (let c = 0; c < copies; c++) {
    for (const o of contosoObjects(`ns${c}`)) {
      byKind[o.kind].push({ ...o, metadata: { ...o.metadata, uid: `u${uid++}`, generation: 1, resourceVersion: String(uid) } } as RawObject);
    }
  }
  return byKind;
}

export default async function (): Promise<BenchRow[]> {
  const settle: number[] = [];
  for (let i = 0; i < 3; i++) settle.push(await settleOnce());

  const raw = scaledRaw(1);
  const n = Object.values(raw).reduce((a, b) => a + b.length, 0);
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < 20; i++) {
    const cache = new ValidationCache();
    for (const [bucket, c] of [
      [cold, cache],
      [warm, cache],
    ] as const) {
      const t = performance.now();
      const s = buildKubernetesSnapshot({ objects: raw as never, secrets: [], configMaps: [] }, c);
      const topo = buildTopology(s.objects);
      const problemsFor = indexProblems(topo.problems);
      for (const r of s.records) computeStatus(r, undefined, undefined, problemsFor(r), { state: "Pending", topologyVersion: topo.version }, "2026-01-01T00:00:00Z");
      bucket.push(performance.now() - t);
    }
  }
  return [
    { suite: "kubernetes", metric: "fresh leader: status of 144 objects written (stand-in API)", value: median(settle), unit: "ms", note: `3 runs, ${settle.map((x) => Math.round(x)).join("/")} ms` },
    { suite: "kubernetes", metric: `snapshot+topology+conditions, ${n} objects, cold cache`, value: median(cold), unit: "ms", note: "20 runs" },
    { suite: "kubernetes", metric: `snapshot+topology+conditions, ${n} objects, warm cache`, value: median(warm), unit: "ms", note: "20 runs (status echo: no re-validation)" },
  ];
}
