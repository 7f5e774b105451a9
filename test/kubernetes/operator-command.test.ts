// `cas-gateway operator` wired end to end, without a cluster: the kube-apiserver STAND-IN feeds the
// Kubernetes provider; the real control plane translates and serves over the real ADS server; a real
// xDS client (the sidecar's XdsStateSource, over gRPC) subscribes and ACKs; the operator then marks
// the objects Programmed through /status. Envoy itself is not run (not installable here).
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { Condition } from "../../crds/index.js";
import { OperatorFlags, startOperator, type RunningOperator } from "../../cli/commands/operator.js";
import { XdsStateSource } from "../../sidecar/state-xds-client.js";
import { KubeApiserverStandin, type KubeObject } from "../kube-apiserver-standin/server.js";
import { contosoObjects, standinKubeConfig, waitFor } from "../kube-apiserver-standin/helpers.js";

const silent = pino({ level: "silent" });
const V = "casgateway.io/v1alpha1";
const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
const cond = (o: KubeObject | undefined, type: string) =>
  ((o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

async function run(api: KubeApiserverStandin, identity: string): Promise<RunningOperator> {
  const flags = OperatorFlags.parse({
    namespace: "mail",
    identity,
    leaseNamespace: "mail",
    xdsListen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    listenerPorts: "https=8443,http=8080,imaps=8993,pop3s=8995,imap4=8143,pop3=8110,submission=8587",
    logLevel: "silent",
    // The example's servers are not on loopback: no probing of real host names from a test.
    healthChecks: false,
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

describe("cas-gateway operator (stand-in API server, real control plane and ADS server)", () => {
  it("serves the topology over ADS and turns objects Programmed once the xDS client has ACKed", async () => {
    const api = new KubeApiserverStandin();
    await api.start();
    cleanup.push(() => api.stop());
    for (const o of contosoObjects("mail")) api.apply(o);
    const op = await run(api, "op-a");
    await waitFor("leader", () => op.kube.isLeader);
    await waitFor("published", () => op.controlPlane.current());
    const view = op.controlPlane.current()!;
    expect(view.translation?.listeners.length).toBeGreaterThan(0);
    expect(view.topology.version).toBe(op.kube.current()!.topology.version);

    // Before any xDS client: Pending, never a made-up Programmed.
    await waitFor("pending", () => cond(api.get(V, "ADSite", "mail", "usa"), "Programmed")?.reason === "Pending");

    const client = new XdsStateSource({ address: `127.0.0.1:${op.xdsPort}`, node: { id: "gw-1", cluster: "cas-gateway" }, logger: silent }).start();
    cleanup.push(() => client.stop());
    expect((await client.ready()).topology.version).toBe(view.topology.version);
    await waitFor("fleet ACK", () => op.ads.fleet.ackedTopologyVersion() === view.topology.version, 15_000);
    await waitFor(
      "every object Programmed",
      () => ["ADSite", "ClientAccessServer", "VirtualDirectory", "MailboxDatabase"].every((k) => api.list(V, k).every((o) => cond(o, "Programmed")?.status === "True")),
      20_000,
    );

    // Admin endpoints.
    const base = `http://127.0.0.1:${op.adminPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^casgw_k8s_leader 1$/m);
    expect(metrics).toMatch(/casgw_k8s_status_patches_total\{result="ok"\} \d+/);

    // A change in the cluster reaches the xDS client.
    const site = api.get(V, "ADSite", "mail", "europe")!;
    api.apply({ ...site, spec: { ...(site.spec as object), description: "Europe (edited in the cluster)" } });
    await waitFor("client sees the edit", () => client.current()?.topology.sites.get("europe")?.description === "Europe (edited in the cluster)", 15_000);
    await waitFor("edited site Programmed at generation 2", () => {
      const c = cond(api.get(V, "ADSite", "mail", "europe"), "Programmed");
      return c?.status === "True" && c.observedGeneration === 2;
    }, 15_000);

    // Graceful stop releases the Lease.
    await op.stop();
    const lease = api.get("coordination.k8s.io/v1", "Lease", "mail", "cas-gateway-operator")!;
    expect((lease.spec as { holderIdentity?: string | null }).holderIdentity).toBeFalsy();
  });

  it("refuses contradictory or missing scope flags with a clear message", () => {
    expect(OperatorFlags.safeParse({ logLevel: "info" }).error?.issues[0]?.message).toMatch(/--namespace NS or --all-namespaces/);
    expect(OperatorFlags.safeParse({ namespace: "a", allNamespaces: true }).error?.issues[0]?.message).toMatch(/alternatives/);
    expect(OperatorFlags.safeParse({ namespace: "a", listenerPorts: "https=99999" }).success).toBe(false);
    expect(OperatorFlags.safeParse({ namespace: "a", mailboxConfigmap: "ns/name:mailboxes.csv" }).data?.mailboxConfigmap).toEqual({ namespace: "ns", name: "name", key: "mailboxes.csv" });
  });
});
