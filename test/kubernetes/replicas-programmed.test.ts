// Programmed with several operator replicas (issue 21, points 4 and 3): two `cas-gateway operator`s
// against the kube-apiserver STAND-IN, each with its real ADS server; xDS clients connect to either.
// The leader (which alone writes status) counts the clients of the other replica through their
// published progress Leases; a client that subscribes and never ACKs holds Programmed back only for
// the ACK time bound, and the condition says so.
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { Condition } from "../../crds/index.js";
import { OperatorFlags, startOperator, type RunningOperator } from "../../cli/commands/operator.js";
import { FLEET_PROGRESS_ANNOTATION, FLEET_REPORT_LABEL, reportLeaseName } from "../../operator/kubernetes/fleet-reports.js";
import { fleetAcked } from "../../operator/kubernetes/runtime.js";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { XdsStateSource } from "../../sidecar/state-xds-client.js";
import { KubeApiserverStandin, type KubeObject } from "../kube-apiserver-standin/server.js";
import { contosoObjects, standinKubeConfig, waitFor } from "../kube-apiserver-standin/helpers.js";
import { adsClient, TestStream, type SotwResponse } from "../xds/ads-test-client.js";

const silent = pino({ level: "silent" });
const V = "casgateway.io/v1alpha1";
const KINDS = ["ADSite", "ClientAccessServer", "VirtualDirectory", "MailboxDatabase"];
const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
const cond = (o: KubeObject | undefined, type: string) =>
  ((o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

async function run(api: KubeApiserverStandin, identity: string, extra: Record<string, unknown> = {}): Promise<RunningOperator> {
  const flags = OperatorFlags.parse({
    namespace: "mail",
    identity,
    leaseNamespace: "mail",
    xdsListen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    listenerPorts: "https=8443,http=8080,imaps=8993,pop3s=8995,imap4=8143,pop3=8110,submission=8587",
    logLevel: "silent",
    healthChecks: false,
    fleetReportSeconds: "3",
    ...extra,
  });
  const op = await startOperator(flags, {
    kc: standinKubeConfig(api.url, `token-${identity}`),
    logger: silent,
    leaseTimings: { durationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200 },
    debounceMs: 20,
  });
  cleanup.push(() => op.stop());
  return op;
}

async function standin(): Promise<KubeApiserverStandin> {
  const api = new KubeApiserverStandin();
  await api.start();
  cleanup.push(() => api.stop());
  for (const o of contosoObjects("mail")) api.apply(o);
  return api;
}

function stateClient(port: number, id: string): XdsStateSource {
  const c = new XdsStateSource({ address: `127.0.0.1:${port}`, node: { id, cluster: "cas-gateway" }, logger: silent }).start();
  cleanup.push(() => c.stop());
  return c;
}

/** An Envoy-like client that subscribes to clusters and ACKs only when told. */
function rawClient(port: number, id: string): { first(): Promise<SotwResponse>; ackLatest(): Promise<void> } {
  const client = adsClient(port);
  const stream = new TestStream(client.StreamAggregatedResources());
  cleanup.push(() => {
    stream.close();
    client.close();
  });
  stream.send({ node: { id, cluster: "cas-gateway" }, type_url: TYPE_URLS.cluster, resource_names: [], version_info: "", response_nonce: "" });
  let last: SotwResponse | undefined;
  return {
    async first() {
      last = await stream.next();
      return last;
    },
    /** ACK the newest response received (the server sends no newer one while one is unanswered). */
    async ackLatest() {
      last ??= await stream.next();
      while (!(await stream.quiet(200))) last = await stream.next();
      stream.send({ type_url: TYPE_URLS.cluster, resource_names: [], version_info: last.version_info, response_nonce: last.nonce });
    },
  };
}

const allProgrammed = (api: KubeApiserverStandin) => KINDS.every((k) => api.list(V, k).every((o) => cond(o, "Programmed")?.status === "True"));

describe("Programmed with two operator replicas (stand-in API server, real ADS servers)", () => {
  it("the leader counts the xDS clients connected to the other replica", async () => {
    const api = await standin();
    const a = await run(api, "op-a");
    await waitFor("a leads", () => a.kube.isLeader);
    const b = await run(api, "op-b");
    await waitFor("b published", () => b.controlPlane.current());
    expect(b.kube.isLeader).toBe(false);

    // Before any client: Pending, never a made-up Programmed.
    await waitFor("pending", () => cond(api.get(V, "ADSite", "mail", "usa"), "Programmed")?.reason === "Pending");

    // A client on the NON-leader only: the leader has no stream of its own, yet Programmed turns True.
    const s1 = stateClient(b.xdsPort, "gw-on-b");
    await s1.ready();
    await waitFor("every object Programmed through b's report", () => allProgrammed(api), 20_000);
    const report = api.get("coordination.k8s.io/v1", "Lease", "mail", reportLeaseName("cas-gateway-operator", "op-b"))!;
    expect(report.metadata.labels).toMatchObject({ [FLEET_REPORT_LABEL]: "cas-gateway-operator" });
    expect(JSON.parse(String((report.metadata.annotations as Record<string, string>)[FLEET_PROGRESS_ANNOTATION]))).toMatchObject({
      acked: b.controlPlane.current()!.topology.version,
      clients: 1,
      lagging: 0,
    });
    expect(a.ads.streamStatus()).toHaveLength(0);

    // A second client on b that subscribes but has not ACKed: an edit stays Pending although s1 and
    // the leader's view have it...
    const raw = rawClient(b.xdsPort, "envoy-on-b");
    await raw.first();
    await waitFor("b counts two clients", () => b.ads.fleet.summary().clients === 2);
    const site = api.get(V, "ADSite", "mail", "europe")!;
    api.apply({ ...site, spec: { ...(site.spec as object), description: "Europe (edited)" } });
    await waitFor("s1 has the edit", () => s1.current()?.topology.sites.get("europe")?.description === "Europe (edited)", 15_000);
    const pending = await waitFor("generation 2 seen", () => {
      const c = cond(api.get(V, "ADSite", "mail", "europe"), "Programmed");
      return c?.observedGeneration === 2 ? c : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500)); // a few report renewals
    expect(cond(api.get(V, "ADSite", "mail", "europe"), "Programmed")).toMatchObject({ status: "False", reason: "Pending", observedGeneration: 2 });
    expect(pending.status).toBe("False");
    // ...until it ACKs.
    await raw.ackLatest();
    await waitFor("generation 2 Programmed", () => {
      const c = cond(api.get(V, "ADSite", "mail", "europe"), "Programmed");
      return c?.status === "True" && c.observedGeneration === 2;
    }, 15_000);

    // b stops gracefully: its report is deleted.
    await b.stop();
    expect(api.get("coordination.k8s.io/v1", "Lease", "mail", reportLeaseName("cas-gateway-operator", "op-b"))).toBeUndefined();
  });

  it("a client that never ACKs holds Programmed back only for the ACK time bound, and the condition says so", async () => {
    const api = await standin();
    const a = await run(api, "op-a", { xdsAckTimeoutSeconds: "2" });
    await waitFor("a leads", () => a.kube.isLeader);
    const raw = rawClient(a.xdsPort, "never-acks");
    await raw.first();
    const s1 = stateClient(a.xdsPort, "gw-1");
    await s1.ready();
    await waitFor("every object Programmed despite the silent client", () => allProgrammed(api), 20_000);
    const c = cond(api.get(V, "ADSite", "mail", "usa"), "Programmed")!;
    expect(c.message).toContain("1 of 2 xDS clients left out: no ACK within 2 s");
    expect(a.ads.fleet.summary()).toMatchObject({ clients: 2, lagging: 1 });
    // Once it ACKs it counts again and the note goes away.
    await raw.ackLatest();
    await waitFor("note gone", () => !cond(api.get(V, "ADSite", "mail", "usa"), "Programmed")?.message.includes("left out"), 15_000);
  });

  it("fleetAcked: the oldest version among replicas with counted clients; unknown or missing holds back", () => {
    const rank = (v: string) => ({ t1: 1, t2: 2, t3: 3 })[v];
    const r = (acked: string | undefined, clients = 1, lagging = 0) => ({ ...(acked ? { acked } : {}), clients, lagging, ackTimeoutMs: 60_000 });
    expect(fleetAcked([r("t3"), r("t2")], rank)).toBe("t2");
    expect(fleetAcked([r("t3"), r("t1", 0)], rank)).toBe("t3"); // no clients: not counted
    expect(fleetAcked([r("t3"), r(undefined, 2, 2)], rank)).toBe("t3"); // all lagging: not counted
    expect(fleetAcked([r("t3"), r(undefined)], rank)).toBeUndefined(); // a client that has ACKed nothing yet
    expect(fleetAcked([r("t3"), r("t9")], rank)).toBeUndefined(); // a version this replica never produced
    expect(fleetAcked([], rank)).toBeUndefined();
  });
});
