// The ADS server's state-of-the-world protocol, driven by a grpc-js client speaking Envoy's protos
// the way Envoy does: subscribe, ACK, NACK, subscription changes, reconnect.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { byNodeIdHash, SnapshotCache } from "../../operator/xds/server/cache.js";
import { TYPE_URLS, type XdsResource } from "../../operator/xds/server/resources.js";
import {
  adsClient,
  apiListener,
  cluster,
  clusterName,
  connectTimeout,
  endpoints,
  node,
  routeConfig,
  TestStream,
  type SotwResponse,
} from "./ads-test-client.js";

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;
const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.route;

let server: AdsServer;
let port: number;
const streams: TestStream<SotwResponse>[] = [];

function snap(resources: XdsResource[], topo = "t1") {
  return new Snapshot(resources, topo);
}
function open(): TestStream<SotwResponse> {
  const s = new TestStream(adsClient(port).StreamAggregatedResources());
  streams.push(s);
  return s;
}
const ack = (s: TestStream<SotwResponse>, r: SotwResponse, names: string[] = []) =>
  s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });

beforeEach(async () => {
  server = new AdsServer({ logger: pino({ level: "silent" }) });
  port = await server.listen(0);
});
afterEach(() => {
  for (const s of streams.splice(0)) s.close();
  server.forceClose();
});

describe("ADS state of the world", () => {
  it("versions are derived from content: same resources in any order give the same version", () => {
    const a = snap([cluster("a"), cluster("b"), endpoints("a", 1)]);
    const b = snap([endpoints("a", 1), cluster("b"), cluster("a")]);
    expect(a.version(CDS)).toBe(b.version(CDS));
    expect(a.version(EDS)).toBe(b.version(EDS));
    expect(snap([cluster("a", 2), cluster("b")]).version(CDS)).not.toBe(a.version(CDS));
  });

  it("CDS wildcard, EDS by name, ACK; removals are omissions; stale nonces are ignored", async () => {
    server.cache.setSnapshot("*", snap([cluster("c1"), cluster("c2"), endpoints("c1", 1001), endpoints("c2", 1002)]));
    const s = open();
    s.send({ node: node("envoy-1"), type_url: CDS, resource_names: [] });
    const r1 = await s.next();
    expect(r1.type_url).toBe(CDS);
    expect(r1.resources.map(clusterName)).toEqual(["c1", "c2"]);
    expect(r1.version_info).toBe(server.cache.getSnapshot("test")!.version(CDS));
    ack(s, r1);
    s.send({ type_url: EDS, resource_names: ["c1"] });
    const e1 = await s.next();
    expect(e1.type_url).toBe(EDS);
    expect(e1.resources).toHaveLength(1);
    ack(s, e1, ["c1"]);
    expect(await s.quiet()).toBe(true); // ACKs of the current version get no reply

    // c2 removed, c1 changed: SotW says "removed" by leaving c2 out.
    server.cache.setSnapshot("*", snap([cluster("c1", 5), endpoints("c1", 1001)], "t2"));
    const r2 = await s.next();
    expect(r2.type_url).toBe(CDS);
    expect(r2.resources.map(clusterName)).toEqual(["c1"]);
    expect(connectTimeout(r2.resources[0]!)).toEqual({ seconds: "5" });
    // A request carrying an old nonce is stale: ignored, nothing sent.
    s.send({ type_url: CDS, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: [] });
    expect(await s.quiet()).toBe(true);
    ack(s, r2);
    // then EDS: its collection changed (c2's assignment is gone)
    const e2 = await s.next();
    expect(e2.type_url).toBe(EDS);
    expect(e2.resources).toHaveLength(1);
    ack(s, e2, ["c1"]);
    expect(await s.quiet()).toBe(true);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t2");
  });

  it("a NACKed version is counted, kept out and not resent; a new version is sent", async () => {
    server.cache.setSnapshot("*", snap([cluster("c1")], "t1"));
    const s = open();
    s.send({ node: node("envoy-nack"), type_url: CDS });
    const r1 = await s.next();
    ack(s, r1);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t1");
    server.cache.setSnapshot("*", snap([cluster("c1", 9)], "t2"));
    const bad = await s.next();
    s.send({
      type_url: CDS,
      version_info: r1.version_info,
      response_nonce: bad.nonce,
      resource_names: [],
      error_detail: { code: 3, message: "cluster c1: bad connect_timeout" },
    });
    expect(await s.quiet(500)).toBe(true); // parked: no resend loop
    const st = server.streamStatus()[0]!.types[0]!;
    expect(st.ackedVersion).toBe(r1.version_info);
    expect(st.nackedVersion).toBe(bad.version_info);
    expect(st.nackMessage).toContain("bad connect_timeout");
    const nacks = await server.metrics.registry.getSingleMetricAsString("cas_xds_nacks_total");
    expect(nacks).toContain('cas_xds_nacks_total{mode="sotw",type="CDS"} 1');
    expect(server.fleet.ackedTopologyVersion()).toBe("t1");

    server.cache.setSnapshot("*", snap([cluster("c1", 3)], "t3"));
    const good = await s.next();
    expect(good.version_info).not.toBe(bad.version_info);
    ack(s, good);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t3");
  });

  it("make-before-break: a change to every type is pushed CDS, then EDS, LDS, RDS, each after the previous is ACKed", async () => {
    const v1 = [cluster("c1"), endpoints("c1", 1), apiListener("l1", "r1"), routeConfig("r1", "c1")];
    server.cache.setSnapshot("*", snap(v1, "t1"));
    const s = open();
    s.send({ node: node("envoy-order"), type_url: CDS });
    ack(s, await s.next());
    s.send({ type_url: EDS, resource_names: ["c1"] });
    ack(s, await s.next(), ["c1"]);
    s.send({ type_url: LDS });
    ack(s, await s.next());
    s.send({ type_url: RDS, resource_names: ["r1"] });
    ack(s, await s.next(), ["r1"]);
    expect(await s.quiet()).toBe(true);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t1");

    const v2 = [cluster("c1", 2), endpoints("c1", 2), apiListener("l1", "r1"), routeConfig("r1", "c2"), cluster("c2"), endpoints("c2", 3)];
    // Change the listener too (different stat_prefix via name is not possible; use a second listener).
    v2.push(apiListener("l2", "r1"));
    server.cache.setSnapshot("*", snap(v2, "t2"));
    const order: string[] = [];
    for (const names of [[], ["c1"], [], ["r1"]]) {
      const r = await s.next();
      order.push(r.type_url);
      expect(await s.quiet(150)).toBe(true); // nothing else until this one is ACKed
      ack(s, r, names);
    }
    expect(order).toEqual([CDS, EDS, LDS, RDS]);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t2");
  });

  it("reconnecting with the current version gets no churn; with an old version gets the new one", async () => {
    server.cache.setSnapshot("*", snap([cluster("c1"), cluster("c2")]));
    const s = open();
    s.send({ node: node("envoy-re"), type_url: CDS });
    const r1 = await s.next();
    ack(s, r1);
    s.close();
    const again = open();
    again.send({ node: node("envoy-re"), type_url: CDS, version_info: r1.version_info });
    expect(await again.quiet(400)).toBe(true);
    const old = open();
    old.send({ node: node("envoy-old"), type_url: CDS, version_info: "some-old-version" });
    const r = await old.next();
    expect(r.version_info).toBe(r1.version_info);
    expect(r.resources).toHaveLength(2);
  });

  it("serves snapshots per node group (node.cluster), falling back to the default group", async () => {
    server.cache.setSnapshot("*", snap([cluster("default")]));
    server.cache.setSnapshot("canary", snap([cluster("canary")]));
    const a = open();
    a.send({ node: node("n1", "canary"), type_url: CDS });
    const b = open();
    b.send({ node: node("n2", "prod"), type_url: CDS });
    expect((await a.next()).resources.map(clusterName)).toEqual(["canary"]);
    expect((await b.next()).resources.map(clusterName)).toEqual(["default"]);
  });

  it("a node-id hash can pick the group (stable shard per node)", async () => {
    const hashed = new AdsServer({ logger: pino({ level: "silent" }), cache: new SnapshotCache(byNodeIdHash(2)) });
    const p = await hashed.listen(0);
    try {
      hashed.cache.setSnapshot("shard-0", snap([cluster("zero")]));
      hashed.cache.setSnapshot("shard-1", snap([cluster("one")]));
      const ids = ["envoy-a", "envoy-b", "envoy-c", "envoy-d", "envoy-e", "envoy-f", "envoy-g", "envoy-h"];
      const seen = new Set<string>();
      for (const id of ids) {
        const group = hashed.cache.nodeGroup({ id, cluster: "x" });
        expect(hashed.cache.nodeGroup({ id, cluster: "other" })).toBe(group);
        const s = new TestStream<SotwResponse>(adsClient(p).StreamAggregatedResources());
        streams.push(s);
        s.send({ node: node(id), type_url: CDS });
        const names = (await s.next()).resources.map(clusterName);
        expect(names).toEqual([group === "shard-0" ? "zero" : "one"]);
        seen.add(group);
      }
      expect(seen.size).toBe(2);
    } finally {
      hashed.forceClose();
    }
  });

  it("EDS/RDS answer subscription changes even when the version did not change", async () => {
    server.cache.setSnapshot("*", snap([cluster("c1"), cluster("c2"), endpoints("c1", 1), endpoints("c2", 2)]));
    const s = open();
    s.send({ node: node("envoy-sub"), type_url: EDS, resource_names: ["c1"] });
    const r1 = await s.next();
    expect(r1.resources).toHaveLength(1);
    ack(s, r1, ["c1", "c2"]);
    const r2 = await s.next();
    expect(r2.version_info).toBe(r1.version_info);
    expect(r2.resources).toHaveLength(2);
    ack(s, r2, ["c2"]);
    expect((await s.next()).resources).toHaveLength(1);
  });
});
