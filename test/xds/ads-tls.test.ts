// ADS over mutual TLS (issue 21, point 3): grpc-js clients with and without a client certificate
// against the real ADS server; the sidecar's state client with its certificate; the server's
// certificate renewed in place (as the kubelet swaps a mounted Secret) is served without a restart.
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { adsService } from "../../model/ads-protos.js";
import { gatewayStateResource } from "../../model/gateway-state.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { XdsStateSource } from "../../sidecar/state-xds-client.js";
import { cluster, TestStream, type SotwResponse } from "./ads-test-client.js";
import { makeXdsPki, SERVICE_NAME, type XdsPki } from "./xds-certs.js";

const silent = pino({ level: "silent" });
let pki: XdsPki;
let dir: string;
const cleanup: (() => unknown)[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cas-xds-tls-"));
  pki = makeXdsPki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function tlsServer(certFile = pki.serverCert, keyFile = pki.serverKey, tlsRefreshMs?: number): Promise<{ server: AdsServer; port: number }> {
  const server = new AdsServer({ logger: silent, tls: { certFile, keyFile, clientCaFile: pki.caFile }, ...(tlsRefreshMs ? { tlsRefreshMs } : {}) });
  const port = await server.listen(0);
  cleanup.push(() => server.forceClose());
  server.cache.setSnapshot("*", new Snapshot([cluster("c1")], "t1"));
  return { server, port };
}

type AdsClient = grpc.Client & { StreamAggregatedResources(): grpc.ClientDuplexStream<unknown, SotwResponse> };

/** One CDS request with these credentials: the first response, or the error the stream ended with. */
async function firstResponse(port: number, creds: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): Promise<SotwResponse | Error> {
  const Ctor = adsService();
  const client = new Ctor(`127.0.0.1:${port}`, creds, options) as unknown as AdsClient;
  const s = new TestStream(client.StreamAggregatedResources());
  cleanup.push(() => {
    s.close();
    client.close();
  });
  s.send({ node: { id: "envoy-1", cluster: "cas-gateway" }, type_url: TYPE_URLS.cluster, resource_names: [] });
  return s.next(8000).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}

const file = (f: string) => readFileSync(f);

describe("ADS over mutual TLS", () => {
  it("answers a client with a certificate from the CA; refuses one without, one from another CA, and plaintext", async () => {
    const { server, port } = await tlsServer();
    const ok = await firstResponse(port, grpc.credentials.createSsl(file(pki.caFile), file(pki.clientKey), file(pki.clientCert)));
    expect(ok).not.toBeInstanceOf(Error);
    expect((ok as SotwResponse).type_url).toBe(TYPE_URLS.cluster);

    const noCert = await firstResponse(port, grpc.credentials.createSsl(file(pki.caFile)));
    expect(noCert).toBeInstanceOf(Error);
    expect((noCert as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);

    const rogue = await firstResponse(port, grpc.credentials.createSsl(file(pki.caFile), file(pki.rogueKey), file(pki.rogueCert)));
    expect(rogue).toBeInstanceOf(Error);

    const plain = await firstResponse(port, grpc.credentials.createInsecure());
    expect(plain).toBeInstanceOf(Error);
    // Only the authenticated client ever became a stream with a node.
    expect(server.streamStatus().filter((s) => s.node).map((s) => s.node!.id)).toEqual(["envoy-1"]);
  });

  it("the client checks the server's name: the in-cluster Service name passes, another name fails", async () => {
    const { port } = await tlsServer();
    const creds = () => grpc.credentials.createSsl(file(pki.caFile), file(pki.clientKey), file(pki.clientCert));
    const right = await firstResponse(port, creds(), { "grpc.ssl_target_name_override": SERVICE_NAME, "grpc.default_authority": SERVICE_NAME });
    expect(right).not.toBeInstanceOf(Error);
    const wrong = await firstResponse(port, creds(), { "grpc.ssl_target_name_override": "someone-else.example", "grpc.default_authority": "someone-else.example" });
    expect(wrong).toBeInstanceOf(Error);
  });

  it("the sidecar's state client (XdsStateSource) connects with its certificate; without one it gets nothing", async () => {
    const { server, port } = await tlsServer();
    const org = await loadOrganisation("examples/contoso");
    const objects = org.manifests.objects.map((o) => o.object);
    server.cache.setSnapshot("*", new Snapshot([gatewayStateResource(objects, org.topology.version, [])], org.topology.version));
    const good = new XdsStateSource({
      address: `127.0.0.1:${port}`,
      node: { id: "sidecar-1", cluster: "cas-gateway" },
      tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey, serverName: SERVICE_NAME },
      logger: silent,
    }).start();
    cleanup.push(() => good.stop());
    expect((await good.ready()).topology.version).toBe(org.topology.version);

    const bad = new XdsStateSource({ address: `127.0.0.1:${port}`, node: { id: "sidecar-2", cluster: "cas-gateway" }, tls: { caFile: pki.caFile }, logger: silent, initialBackoffMs: 50 }).start();
    cleanup.push(() => bad.stop());
    await new Promise((r) => setTimeout(r, 1500));
    expect(bad.current()).toBeUndefined();
    expect(bad.stats.connects).toBeGreaterThan(1); // it keeps trying (and keeps failing)
  });

  it("a bad path fails at start with the flag's name", () => {
    expect(() => new AdsServer({ logger: silent, tls: { certFile: join(dir, "nope.crt"), keyFile: pki.serverKey, clientCaFile: pki.caFile } })).toThrow(/--xds-tls-cert .*nope\.crt/);
    expect(() => new XdsStateSource({ address: "127.0.0.1:1", node: { id: "x", cluster: "y" }, tls: { caFile: pki.clientKey.replace(/\.key$/, ".missing") } })).toThrow(/--xds-ca/);
  });

  it("a renewed server certificate (files swapped in place) is served to new connections without a restart", async () => {
    const live = mkdtempSync(join(dir, "live-"));
    copyFileSync(pki.serverCert, join(live, "tls.crt"));
    copyFileSync(pki.serverKey, join(live, "tls.key"));
    const { port } = await tlsServer(join(live, "tls.crt"), join(live, "tls.key"), 200);
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const sock = connect({ host: "127.0.0.1", port, ca: file(pki.caFile), cert: file(pki.clientCert), key: file(pki.clientKey), ALPNProtocols: ["h2"], servername: "localhost" }, () => {
          const pem = sock.getPeerX509Certificate();
          sock.destroy();
          resolve(pem ? new X509Certificate(pem.raw).serialNumber : "");
        });
        sock.on("error", reject);
      });
    const before = await serial();
    expect(before).toBe(new X509Certificate(file(pki.serverCert)).serialNumber);
    const next = pki.reissueServer("operator-renewed");
    // As the kubelet does: new files, then one rename into place.
    copyFileSync(next.cert, join(live, "tls.crt.new"));
    copyFileSync(next.key, join(live, "tls.key.new"));
    renameSync(join(live, "tls.key.new"), join(live, "tls.key"));
    renameSync(join(live, "tls.crt.new"), join(live, "tls.crt"));
    const want = new X509Certificate(file(next.cert)).serialNumber;
    const deadline = Date.now() + 10_000;
    let now = before;
    while (now !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      now = await serial();
    }
    expect(now).toBe(want);
    // And a full gRPC exchange still works on the renewed certificate.
    const ok = await firstResponse(port, grpc.credentials.createSsl(file(pki.caFile), file(pki.clientKey), file(pki.clientCert)));
    expect(ok).not.toBeInstanceOf(Error);
  });
});
