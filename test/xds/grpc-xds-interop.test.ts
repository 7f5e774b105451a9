// Interoperability with an xDS client we did not write: the gRPC project's own (@grpc/grpc-js-xds).
// A grpc-js channel to xds:///echo-service resolves through our ADS server — LDS (an API listener:
// HttpConnectionManager with RDS) → RDS → CDS (EDS cluster) → EDS — to a real loopback gRPC server.
// A unary call that succeeds, and then follows an endpoint change, proves the protocol works with an
// independent implementation. The resources here are built by the test (gRPC clients need API
// listeners, not the gateway's socket listeners).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { apiListener, cluster, endpoints, routeConfig } from "./ads-test-client.js";

const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: "/test.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

async function echoServer(tag: string): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.concat([Buffer.from(`${tag}:`), call.request])),
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return { server, port };
}

function call(client: grpc.Client, msg: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/test.Echo/Echo",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(msg),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : resolve(res!.toString())),
    ),
  );
}

function resources(port: number) {
  return [apiListener("echo-service", "echo-route"), routeConfig("echo-route", "echo-cluster"), cluster("echo-cluster"), endpoints("echo-cluster", port)];
}

let ads: AdsServer;
let one: { server: grpc.Server; port: number };
let two: { server: grpc.Server; port: number };
let client: grpc.Client | undefined;

beforeAll(async () => {
  ads = new AdsServer({ logger: pino({ level: "silent" }) });
  const adsPort = await ads.listen(0);
  one = await echoServer("one");
  two = await echoServer("two");
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${adsPort}`, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] }],
    node: { id: "grpc-interop-client", cluster: "interop", locality: {} },
  });
  const xds = await import("@grpc/grpc-js-xds");
  xds.register();
});

afterAll(() => {
  client?.close();
  ads?.forceClose();
  one?.server.forceShutdown();
  two?.server.forceShutdown();
});

describe("interop with the gRPC project's xDS client (@grpc/grpc-js-xds)", () => {
  it("resolves xds:///echo-service through our LDS → RDS → CDS → EDS and makes a unary call", async () => {
    ads.cache.setSnapshot("*", new Snapshot(resources(one.port), "topo-1"));
    client = new grpc.Client("xds:///echo-service", grpc.credentials.createInsecure());
    expect(await call(client, "hello")).toBe("one:hello");
    // The gRPC client ACKed every type it subscribed to (LDS, RDS, CDS, EDS).
    await expect.poll(() => ads.fleet.ackedTopologyVersion(), { timeout: 10_000 }).toBe("topo-1");
    const types = ads.streamStatus()[0]!.types.map((t) => t.typeUrl).sort();
    expect(types).toEqual([TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route].sort());
    expect(ads.streamStatus()[0]!.node?.id).toBe("grpc-interop-client");
  });

  it("follows an EDS change pushed by the server to a different backend", async () => {
    ads.cache.setSnapshot("*", new Snapshot(resources(two.port), "topo-2"));
    await expect.poll(() => call(client!, "again"), { timeout: 15_000, interval: 100 }).toBe("two:again");
    await expect.poll(() => ads.fleet.ackedTopologyVersion(), { timeout: 10_000 }).toBe("topo-2");
  });
});
