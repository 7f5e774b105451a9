// The ADS server's incremental (Delta) protocol, driven by a grpc-js client speaking Envoy's protos:
// wildcard and by-name subscriptions, unsubscribe, removals, NACK, initial_resource_versions.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { TYPE_URLS, type XdsResource } from "../../operator/xds/server/resources.js";
import { adsClient, cluster, endpoints, node, TestStream, type DeltaResponse } from "./ads-test-client.js";

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;

let server: AdsServer;
let port: number;
const streams: TestStream<DeltaResponse>[] = [];

// Every case runs twice: with snapshots built from scratch, and derived from the one in force (as
// the control plane builds them), where the Delta diff looks only at what changed.
let derived = false;
const snap = (resources: XdsResource[], topo = "t1") => new Snapshot(resources, topo, derived ? server.cache.getSnapshot("*") : undefined);
function open(): TestStream<DeltaResponse> {
  const s = new TestStream(adsClient(port).DeltaAggregatedResources());
  streams.push(s);
  return s;
}
const ack = (s: TestStream<DeltaResponse>, r: DeltaResponse) => s.send({ type_url: r.type_url, response_nonce: r.nonce });
const names = (r: DeltaResponse) => r.resources.map((x) => x.name);

beforeEach(async () => {
  server = new AdsServer({ logger: pino({ level: "silent" }) });
  port = await server.listen(0);
});
afterEach(() => {
  for (const s of streams.splice(0)) s.close();
  server.forceClose();
});

describe.each([false, true])("ADS delta (derived snapshots: %s)", (derivedSnapshots) => {
  beforeEach(() => {
    derived = derivedSnapshots;
  });
  it("wildcard CDS: full set, then only what changed, removals in removed_resources, system_version_info", async () => {
    server.cache.setSnapshot("*", snap([cluster("a"), cluster("b"), cluster("c")]));
    const s = open();
    s.send({ node: node("envoy-d1"), type_url: CDS });
    const r1 = await s.next();
    expect(names(r1)).toEqual(["a", "b", "c"]);
    expect(r1.system_version_info).toBe(server.cache.getSnapshot("x")!.version(CDS));
    expect(r1.removed_resources).toEqual([]);
    ack(s, r1);
    expect(await s.quiet()).toBe(true);

    server.cache.setSnapshot("*", snap([cluster("a"), cluster("b", 7), cluster("d")], "t2"));
    const r2 = await s.next();
    expect(names(r2)).toEqual(["b", "d"]);
    expect(r2.removed_resources).toEqual(["c"]);
    ack(s, r2);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t2");
  });

  it("EDS by name: subscribe, add, unsubscribe; a removed subscribed resource is reported removed", async () => {
    server.cache.setSnapshot("*", snap([endpoints("a", 1), endpoints("b", 2), endpoints("c", 3)]));
    const s = open();
    s.send({ node: node("envoy-d2"), type_url: EDS, resource_names_subscribe: ["a"] });
    const r1 = await s.next();
    expect(names(r1)).toEqual(["a"]);
    ack(s, r1);
    s.send({ type_url: EDS, resource_names_subscribe: ["b"] });
    const r2 = await s.next();
    expect(names(r2)).toEqual(["b"]); // only the new one, "a" is not resent
    ack(s, r2);
    s.send({ type_url: EDS, resource_names_unsubscribe: ["a"] });
    expect(await s.quiet()).toBe(true);
    // "a" changes but is no longer subscribed: nothing; "b" disappears: removed.
    server.cache.setSnapshot("*", snap([endpoints("a", 10), endpoints("c", 3)], "t2"));
    const r3 = await s.next();
    expect(names(r3)).toEqual([]);
    expect(r3.removed_resources).toEqual(["b"]);
    ack(s, r3);
    expect(await s.quiet()).toBe(true);
  });

  it("NACK: the rejected resource version is parked, not resent; a newer version is sent", async () => {
    server.cache.setSnapshot("*", snap([cluster("a"), cluster("b")]));
    const s = open();
    s.send({ node: node("envoy-d3"), type_url: CDS });
    ack(s, await s.next());
    server.cache.setSnapshot("*", snap([cluster("a", 9), cluster("b")], "t2"));
    const bad = await s.next();
    expect(names(bad)).toEqual(["a"]);
    s.send({ type_url: CDS, response_nonce: bad.nonce, error_detail: { code: 3, message: "a: rejected" } });
    expect(await s.quiet(500)).toBe(true);
    expect(await server.metrics.registry.getSingleMetricAsString("cas_xds_nacks_total")).toContain(
      'cas_xds_nacks_total{mode="delta",type="CDS"} 1',
    );
    expect(server.streamStatus()[0]!.types[0]!.nackedVersion).toContain("a@");
    // b changes: b is sent, a (still the rejected version) is not
    server.cache.setSnapshot("*", snap([cluster("a", 9), cluster("b", 4)], "t3"));
    const r = await s.next();
    expect(names(r)).toEqual(["b"]);
    ack(s, r);
    server.cache.setSnapshot("*", snap([cluster("a", 2), cluster("b", 4)], "t4"));
    const fixed = await s.next();
    expect(names(fixed)).toEqual(["a"]);
    ack(s, fixed);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t4");
  });

  it("reconnect with initial_resource_versions: only stale or missing resources are sent, gone ones removed", async () => {
    server.cache.setSnapshot("*", snap([cluster("a"), cluster("b"), cluster("c")]));
    const s = open();
    s.send({ node: node("envoy-d4"), type_url: CDS });
    const r1 = await s.next();
    ack(s, r1);
    const versions = Object.fromEntries(r1.resources.map((r) => [r.name, r.version]));
    s.close();

    const same = open();
    same.send({ node: node("envoy-d4"), type_url: CDS, initial_resource_versions: versions });
    expect(await same.quiet(400)).toBe(true); // nothing changed: no churn
    same.close();

    server.cache.setSnapshot("*", snap([cluster("a"), cluster("b", 3), cluster("e")], "t2"));
    const again = open();
    again.send({ node: node("envoy-d4"), type_url: CDS, initial_resource_versions: versions });
    const r2 = await again.next();
    expect(names(r2)).toEqual(["b", "e"]);
    expect(r2.removed_resources).toEqual(["c"]);
  });

  it("explicit '*' subscribes to everything; unsubscribing '*' keeps only named resources", async () => {
    server.cache.setSnapshot("*", snap([cluster("a"), cluster("b")]));
    const s = open();
    s.send({ node: node("envoy-d5"), type_url: CDS, resource_names_subscribe: ["*"] });
    const r1 = await s.next();
    expect(names(r1)).toEqual(["a", "b"]);
    ack(s, r1);
    s.send({ type_url: CDS, resource_names_subscribe: ["a"], resource_names_unsubscribe: ["*"] });
    expect(await s.quiet()).toBe(true);
    server.cache.setSnapshot("*", snap([cluster("a", 2), cluster("b", 2)], "t2"));
    const r2 = await s.next();
    expect(names(r2)).toEqual(["a"]);
  });
});
