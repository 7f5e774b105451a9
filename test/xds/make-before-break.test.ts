// Make before break for removals: a cluster that goes away stays until the listeners and routes
// of the new snapshot have been ACKed; only then does a CDS update drop it (SotW and Delta).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { adsClient, apiListener, cluster, clusterName, node, routeConfig, TestStream, type DeltaResponse, type SotwResponse } from "./ads-test-client.js";

const CDS = TYPE_URLS.cluster;
const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.route;
let server: AdsServer;
let port: number;
const closers: (() => void)[] = [];

beforeEach(async () => {
  server = new AdsServer({ logger: pino({ level: "silent" }) });
  port = await server.listen(0);
});
afterEach(() => {
  for (const c of closers.splice(0)) c();
  server.forceClose();
});

// v1: route r1 → "old"; v2: route r1 → "new", cluster "old" gone.
const v1 = () => new Snapshot([cluster("keep"), cluster("old"), apiListener("l1", "r1"), routeConfig("r1", "old")], "t1");
const v2 = () => new Snapshot([cluster("keep"), cluster("new"), apiListener("l1", "r1"), routeConfig("r1", "new")], "t2");

describe("make before break", () => {
  it("SotW: CDS adds 'new' but keeps 'old'; after RDS is ACKed a second CDS drops 'old'", async () => {
    server.cache.setSnapshot("*", v1());
    const s = new TestStream<SotwResponse>(adsClient(port).StreamAggregatedResources());
    closers.push(() => s.close());
    const ack = (r: SotwResponse, names: string[] = []) =>
      s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
    s.send({ node: node("mbb-sotw"), type_url: CDS });
    ack(await s.next());
    s.send({ type_url: LDS });
    ack(await s.next());
    s.send({ type_url: RDS, resource_names: ["r1"] });
    ack(await s.next(), ["r1"]);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t1");

    server.cache.setSnapshot("*", v2());
    const make = await s.next();
    expect(make.type_url).toBe(CDS);
    expect(make.resources.map(clusterName)).toEqual(["keep", "new", "old"]);
    ack(make);
    const routes = await s.next();
    expect(routes.type_url).toBe(RDS); // LDS did not change
    expect(server.fleet.ackedTopologyVersion()).toBe("t1");
    ack(routes, ["r1"]);
    const brk = await s.next();
    expect(brk.type_url).toBe(CDS);
    expect(brk.resources.map(clusterName)).toEqual(["keep", "new"]);
    expect(brk.version_info).toBe(server.cache.getSnapshot("x")!.version(CDS));
    ack(brk);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t2");
  });

  it("Delta: the removal of 'old' is sent only after the new routes are ACKed", async () => {
    server.cache.setSnapshot("*", v1());
    const s = new TestStream<DeltaResponse>(adsClient(port).DeltaAggregatedResources());
    closers.push(() => s.close());
    const ack = (r: DeltaResponse) => s.send({ type_url: r.type_url, response_nonce: r.nonce });
    s.send({ node: node("mbb-delta"), type_url: CDS });
    ack(await s.next());
    s.send({ type_url: LDS });
    ack(await s.next());
    s.send({ type_url: RDS, resource_names_subscribe: ["r1"] });
    ack(await s.next());

    server.cache.setSnapshot("*", v2());
    const make = await s.next();
    expect(make.type_url).toBe(CDS);
    expect(make.resources.map((r) => r.name)).toEqual(["new"]);
    expect(make.removed_resources).toEqual([]);
    ack(make);
    const routes = await s.next();
    expect(routes.type_url).toBe(RDS);
    ack(routes);
    const brk = await s.next();
    expect(brk.type_url).toBe(CDS);
    expect(brk.resources).toEqual([]);
    expect(brk.removed_resources).toEqual(["old"]);
    ack(brk);
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe("t2");
  });
});
