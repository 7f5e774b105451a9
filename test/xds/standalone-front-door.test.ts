// Issue 19's "done when" for standalone, with no front-door flags: over ADS (a grpc-js client with
// Envoy's protos) it serves an HTTPS listener carrying the ext_authz filter and the 451 mapping,
// every listener on a port >= 1024, the HTTP listener redirecting to the HTTPS port, and a
// development certificate for every site host name plus localhost written beside the bootstrap.
import { X509Certificate } from "node:crypto";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { StandaloneFlags, startStandalone, type RunningStandalone } from "../../cli/commands/standalone.js";
import { envoyRoot } from "../../operator/xds/translate/protos.js";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { adsClient, TestStream, type SotwResponse } from "./ads-test-client.js";

type Obj = Record<string, any>;
const root = envoyRoot();
function decode(typeUrl: string, bytes: Uint8Array): Obj {
  const t = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
      const o = v as Obj;
      if (typeof o.type_url === "string" && o.value instanceof Uint8Array) return { "@type": o.type_url, ...decode(o.type_url, o.value) };
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(t.toObject(t.decode(bytes), { enums: String, longs: Number, defaults: false })) as Obj;
}

let dir: string;
let running: RunningStandalone;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cas-frontdoor-"));
  await cp("examples/contoso", join(dir, "org"), { recursive: true });
  // Envoy's listener ports are left at their defaults (nothing binds them: no Envoy here).
  const flags = StandaloneFlags.parse({
    manifests: join(dir, "org"),
    directory: join(dir, "org", "mailboxes.csv"),
    site: "usa",
    ...{ xdsPort: "0", authzPort: "0", adminPort: "0", pop3Port: "0", imap4Port: "0" },
    ...{ httpPort: "8080", httpsPort: "8443", envoyAdminPort: "9901", envoyReadyPort: "19001" },
    healthChecks: false,
    envoy: "off",
    bootstrap: join(dir, "run", "envoy.yaml"),
    logLevel: "silent",
  });
  running = await startStandalone(flags, pino({ level: "silent" }));
}, 90_000);

afterAll(async () => {
  await running?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function listeners(): Promise<Obj[]> {
  const s = new TestStream<SotwResponse>(adsClient(running.xdsPort).StreamAggregatedResources());
  try {
    s.send({ node: { id: "front-door-test", cluster: "usa" }, type_url: TYPE_URLS.listener });
    const r = await s.next(30_000);
    return r.resources.map((a) => decode(TYPE_URLS.listener, a.value));
  } finally {
    s.close();
  }
}

describe("standalone front door, no flags", () => {
  it("serves an HTTPS listener with ext_authz and the 451 mapping, every listener >= 1024, HTTP redirecting to HTTPS's port", async () => {
    const ls = await listeners();
    const names = ls.map((l) => l.name).sort();
    expect(names).toEqual(["http", "https", "imap4", "imaps", "pop3", "pop3s"]);
    for (const l of ls) expect(l.address.socket_address.port_value, l.name).toBeGreaterThanOrEqual(1024);
    const https = ls.find((l) => l.name === "https")!;
    expect(https.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 8443 });
    const hcm = https.default_filter_chain.filters[0].typed_config;
    expect(hcm.http_filters.map((f: Obj) => f.name)).toContain("envoy.filters.http.ext_authz");
    expect(hcm.local_reply_config.mappers[0].status_code).toEqual({ value: 451 });
    expect(hcm.http_protocol_options).toEqual({ allow_custom_methods: true });
    const tls = https.default_filter_chain.transport_socket.typed_config.common_tls_context.tls_certificates[0];
    expect(tls.certificate_chain.filename).toBe(running.frontDoorCertificate.certFile);

    const s = new TestStream<SotwResponse>(adsClient(running.xdsPort).StreamAggregatedResources());
    s.send({ node: { id: "front-door-test-2", cluster: "usa" }, type_url: TYPE_URLS.route, resource_names: ["http"] });
    const r = await s.next(30_000);
    s.close();
    const http = r.resources.map((a) => decode(TYPE_URLS.route, a.value)).find((x) => x.name === "http")!;
    expect(http.virtual_hosts[0].routes[0].redirect).toEqual({ https_redirect: true, port_redirect: 8443 });
  });

  it("makes a development certificate for every site host name and localhost beside the bootstrap", async () => {
    const fd = running.frontDoorCertificate;
    expect(fd.development).toBe(true);
    expect(fd.certFile).toBe(join(dir, "run", "front-door-dev.crt"));
    const cert = new X509Certificate(await readFile(fd.certFile));
    expect(cert.fingerprint256).toBe(fd.sha256);
    for (const h of ["mail.contoso.com", "localhost"]) expect(cert.checkHost(h), h).toBe(h);
  });

  it("writes a bootstrap for a non-root Envoy: admin on loopback, readiness endpoint, xDS over HTTP/2 with keep-alives", async () => {
    const b = parse(await readFile(running.bootstrapFile, "utf8")) as Obj;
    expect(b.admin.address.socket_address.address).toBe("127.0.0.1");
    const ready = b.static_resources.listeners[0];
    expect(ready.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 19001 });
    expect(ready.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.headers[0].string_match.exact).toBe("/ready");
    const xds = b.static_resources.clusters[0];
    const h2 = xds.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http2_protocol_options;
    expect(h2.connection_keepalive).toBeDefined();
    expect(xds.upstream_connection_options.tcp_keepalive).toBeDefined();
    for (const port of JSON.stringify(b).match(/"port_value":\d+/g) ?? []) expect(Number(port.split(":")[1])).toBeGreaterThanOrEqual(1024);
  });
});
