// Stateless sidecars: the control plane serves the accepted API objects + health down-list under
// the GatewayState type; XdsStateSource validates them, rebuilds the Topology, ACKs or NACKs, and
// reconnects after the control plane restarts.
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { gatewayStateResource, GATEWAY_STATE_NAME, GATEWAY_STATE_TYPE_URL } from "../../model/gateway-state.js";
import { XdsStateSource } from "../../sidecar/state-xds-client.js";

const silent = pino({ level: "silent" });
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function contoso() {
  const org = await loadOrganisation("examples/contoso");
  return { objects: org.manifests.objects.map((o) => o.object), topology: org.topology };
}

describe("GatewayState over xDS (XdsStateSource)", () => {
  it("delivers the topology and health view, rebuilt with buildTopology; health changes push a new state", async () => {
    const { objects, topology } = await contoso();
    const server = new AdsServer({ logger: silent });
    const port = await server.listen(0);
    cleanup.push(() => server.forceClose());
    server.cache.setSnapshot("*", new Snapshot([gatewayStateResource(objects, topology.version, [])], topology.version));
    const src = new XdsStateSource({ address: `127.0.0.1:${port}`, node: { id: "sidecar-1", cluster: "sidecars" }, logger: silent }).start();
    cleanup.push(() => src.stop());
    const state = await src.ready();
    expect(state.topology.version).toBe(topology.version);
    expect([...state.topology.sites.keys()].sort()).toEqual([...topology.sites.keys()].sort());
    const someServer = [...topology.servers.keys()][0]!;
    expect(state.health.isServerHealthy(someServer)).toBe(true);

    const next = new Promise((r) => src.subscribe(r));
    server.cache.setSnapshot("*", new Snapshot([gatewayStateResource(objects, topology.version, [someServer])], topology.version));
    await next;
    expect(src.current()!.health.isServerHealthy(someServer)).toBe(false);
    expect(src.current()!.version).not.toBe(state.version);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe(topology.version);
  });

  it("NACKs invalid state with the reason and keeps the last good one", async () => {
    const { objects, topology } = await contoso();
    const server = new AdsServer({ logger: silent });
    const port = await server.listen(0);
    cleanup.push(() => server.forceClose());
    server.cache.setSnapshot("*", new Snapshot([gatewayStateResource(objects, topology.version, [])], "good"));
    const src = new XdsStateSource({ address: `127.0.0.1:${port}`, node: { id: "sidecar-2", cluster: "sidecars" }, logger: silent }).start();
    cleanup.push(() => src.stop());
    const good = await src.ready();
    const bad = { name: GATEWAY_STATE_NAME, typeUrl: GATEWAY_STATE_TYPE_URL, version: "", encoded: new TextEncoder().encode('{"apiVersion":"casgateway.io/v1alpha1","topologyVersion":"x","down":[],"objects":[{"kind":"ADSite"}]}') };
    server.cache.setSnapshot("*", new Snapshot([bad], "bad"));
    await expect.poll(() => src.stats.rejected).toBe(1);
    expect(src.current()).toBe(good);
    await expect.poll(() => server.streamStatus()[0]?.types[0]?.nackMessage).toMatch(/GatewayState invalid at objects\.0/);
  });

  it("reconnects with backoff when the control plane restarts, without resending an unchanged state", async () => {
    const { objects, topology } = await contoso();
    let server = new AdsServer({ logger: silent });
    const port = await server.listen(0);
    const snapshot = () => new Snapshot([gatewayStateResource(objects, topology.version, [])], topology.version);
    server.cache.setSnapshot("*", snapshot());
    const src = new XdsStateSource({
      address: `127.0.0.1:${port}`,
      node: { id: "sidecar-3", cluster: "sidecars" },
      logger: silent,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    }).start();
    cleanup.push(() => src.stop());
    await src.ready();
    server.forceClose();
    server = new AdsServer({ logger: silent });
    cleanup.push(() => server.forceClose());
    server.cache.setSnapshot("*", snapshot());
    await server.listen(port);
    await expect.poll(() => server.streamStatus().length, { timeout: 10_000 }).toBe(1);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe(topology.version);
    expect(src.stats.connects).toBeGreaterThanOrEqual(2);
    expect(src.stats.accepted).toBe(1); // same content, same version: not sent again
  });
});
