import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { KIND_SCHEMAS, type ApiObject } from "../../../crds/index.js";
import { loadOrganisation } from "../../provider/organisation.js";
import { buildTopology } from "../../../model/topology/build.js";
import {
  CAS_HEADERS,
  DECISION_METADATA_KEY,
  EXT_AUTHZ_FILTER_NAME,
  PATH_REWRITES,
  SIDECAR_CLUSTER,
  poolClusterName,
  serverClusterName,
} from "../../../model/topology/names.js";
import { goldenCase, GOLDEN_BASE_OPTIONS } from "./testing.js";
import { EAS_451_DECISION, TYPE_URLS, bootstrap, envoyRoot, translate, type EnvoyResource, type EnvoyResources } from "./index.js";

type Obj = Record<string, any>;
const root = envoyRoot();
const typeOf = (url: string) => root.lookupType(url.slice(url.lastIndexOf("/") + 1));

/** Decode an Any-bearing message recursively into plain objects (typed_config payloads decoded too). */
function decodeDeep(type: protobuf.Type, bytes: Uint8Array): Obj {
  const msg = type.decode(bytes);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
      const o = v as Obj;
      if (typeof o.type_url === "string" && o.value instanceof Uint8Array) return { "@type": o.type_url, ...decodeDeep(typeOf(o.type_url), o.value) };
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(type.toObject(msg, { enums: String, longs: Number, defaults: false })) as Obj;
}

const find = (list: readonly EnvoyResource[], name: string) => {
  const r = list.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name} in ${list.map((x) => x.name).join(", ")}`);
  return r;
};

let contoso: EnvoyResources | undefined;
async function contosoResources(): Promise<EnvoyResources> {
  if (!contoso) {
    const org = await loadOrganisation("examples/contoso");
    contoso = translate(org.topology, GOLDEN_BASE_OPTIONS);
  }
  return contoso;
}

describe("translate (contoso)", () => {
  it("serves listeners, routes and clusters without problems", async () => {
    const r = await contosoResources();
    expect(r.problems).toEqual([]);
    // No SMTP/submission listener unless asked for (front-door.test.ts).
    expect(r.listeners.map((l) => l.name)).toEqual(["http", "https", "imap4", "imaps", "pop3", "pop3s"]);
    expect(r.routes.map((x) => x.name)).toEqual(["http", "https", "https/europe", "https/usa"]);
    expect(r.clusters.map((c) => c.name)).toContain(SIDECAR_CLUSTER);
    for (const res of [...r.listeners, ...r.routes, ...r.clusters, ...r.endpoints]) {
      expect(res.typeUrl).toMatch(/^type\.googleapis\.com\/envoy\./);
      expect(res.version).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it("has a pool per site, version class and service, and a cluster per server and service", async () => {
    const r = await contosoResources();
    const org = await loadOrganisation("examples/contoso");
    const names = new Set(r.clusters.map((c) => c.name));
    for (const s of org.topology.servers.values()) {
      for (const v of s.vdirs.values()) {
        expect(names.has(serverClusterName(s.name, v.service)), serverClusterName(s.name, v.service)).toBe(true);
        if (s.clientAccess && v.service !== "Pop3" && v.service !== "Imap4")
          expect(names.has(poolClusterName(s.site, s.versionClass, v.service)), poolClusterName(s.site, s.versionClass, v.service)).toBe(true);
      }
    }
  });

  it("every encoded resource decodes with Envoy's protos and re-encodes to the same bytes", async () => {
    const r = await contosoResources();
    for (const res of [...r.listeners, ...r.routes, ...r.clusters, ...r.endpoints]) {
      const t = typeOf(res.typeUrl);
      const again = t.encode(t.decode(res.encoded)).finish();
      expect(Buffer.from(again).equals(Buffer.from(res.encoded)), res.name).toBe(true);
    }
  });

  it("R-EAS-4: the HTTPS connection manager maps the ext_authz decision redirect-451 to HTTP 451", async () => {
    const r = await contosoResources();
    const l = decodeDeep(typeOf(TYPE_URLS.listener), find(r.listeners, "https").encoded);
    const hcm = l.default_filter_chain.filters[0].typed_config;
    const mapper = hcm.local_reply_config.mappers[0];
    expect(mapper.status_code).toEqual({ value: 451 });
    expect(mapper.filter.metadata_filter.matcher).toEqual({
      filter: EXT_AUTHZ_FILTER_NAME,
      path: [{ key: DECISION_METADATA_KEY }],
      value: { string_match: { exact: EAS_451_DECISION } },
    });
    // Filter order: strip client x-cas-* → ext_authz → router (ext_proc only when asked for).
    expect(hcm.http_filters.map((f: Obj) => f.name)).toEqual(["envoy.filters.http.header_mutation", EXT_AUTHZ_FILTER_NAME, "envoy.filters.http.router"]);
    expect(hcm.http_filters[0].typed_config.mutations.request_mutations.map((m: Obj) => m.remove)).toEqual(Object.values(CAS_HEADERS));
    const authz = hcm.http_filters[1].typed_config;
    expect(authz.grpc_service.envoy_grpc.cluster_name).toBe(SIDECAR_CLUSTER);
    expect(authz.grpc_service.timeout.seconds).toBe(1);
    expect(authz.clear_route_cache).toBe(true);
    expect(authz.with_request_body).toEqual({ max_request_bytes: 65536, allow_partial_message: true });
    // SNI filter chain per site with host names.
    expect(l.filter_chains.map((c: Obj) => [c.name, c.filter_chain_match.server_names, c.filters[0].typed_config.rds.route_config_name])).toEqual([
      ["site/europe", ["europe.contoso.com"], "https/europe"],
      ["site/usa", ["usa.contoso.com", "mail.contoso.com"], "https/usa"],
    ]);
    expect(hcm.rds.route_config_name).toBe("https");
  });

  it("routes select the cluster from x-cas-cluster, one rewrite route per PATH_REWRITES entry, bodies only where needed", async () => {
    const r = await contosoResources();
    const rc = decodeDeep(typeOf(TYPE_URLS.route), find(r.routes, "https/usa").encoded);
    const routes: Obj[] = rc.virtual_hosts[0].routes;
    for (const [name, rw] of Object.entries(PATH_REWRITES)) {
      const route = routes.find((x) => x.name === `rewrite/${name}`)!;
      expect(route.match.headers[0]).toEqual({ name: CAS_HEADERS.rewrite, string_match: { exact: name } });
      expect(route.match.path_separated_prefix).toBe(rw.prefix);
      // BoolValue present with value false (the default, so not written: canonical proto3).
      expect(route.match.case_sensitive).toEqual({});
      expect(route.route.prefix_rewrite).toBe(rw.rewrite);
    }
    const eas = routes.find((x) => x.name === "activesync/microsoft-server-activesync")!;
    expect(eas.route.cluster_header).toBe(CAS_HEADERS.cluster);
    expect(eas.route.timeout.seconds).toBe(32 * 60);
    expect(eas.route.idle_timeout.seconds).toBe(32 * 60);
    const perRoute = (x: Obj) => x.typed_per_filter_config[EXT_AUTHZ_FILTER_NAME].check_settings;
    expect(perRoute(eas)).toEqual({ context_extensions: { cas_site: "usa", service: "ActiveSync" }, disable_request_body_buffering: true });
    const ews = routes.find((x) => x.name === "ews/ews")!;
    expect(perRoute(ews)).toEqual({ context_extensions: { cas_site: "usa", service: "Ews" } });
    const logon = routes.find((x) => x.name === "owa-logon/owa/auth.owa")!;
    expect(perRoute(logon)).toEqual({ context_extensions: { cas_site: "usa", service: "Owa" } });
    // The default chain's routes name no site: the sidecar uses Host or its default site.
    const def = decodeDeep(typeOf(TYPE_URLS.route), find(r.routes, "https").encoded).virtual_hosts[0].routes;
    expect(perRoute(def.find((x: Obj) => x.name === "ews/ews"))).toEqual({ context_extensions: { service: "Ews" } });
    expect(routes.at(-1)!.direct_response.status).toBe(404);
  });

  it("mail listeners: tcp_proxy to the mail proxy, idle timeout beyond IMAP IDLE, implicit TLS terminated on 993/995", async () => {
    const r = await contosoResources();
    for (const [name, tls] of [["imap4", false], ["imaps", true], ["pop3", false], ["pop3s", true]] as const) {
      const l = decodeDeep(typeOf(TYPE_URLS.listener), find(r.listeners, name).encoded);
      const chain = l.filter_chains[0];
      const tcp = chain.filters[0].typed_config;
      expect(tcp["@type"]).toMatch(/TcpProxy$/);
      expect(tcp.idle_timeout.seconds).toBe(31 * 60);
      expect(tcp.cluster).toMatch(/^cas-gateway\/mail-proxy\//);
      expect(Boolean(chain.transport_socket)).toBe(tls);
    }
  });
});

describe("translate: upstream TLS and endpoints", () => {
  it("R-GEN-3: validation on by default (trusted CA, SAN = server FQDN), removed for insecureSkipVerify", () => {
    const { topology, options } = goldenCase("insecure");
    expect(topology.problems.map((p) => p.reason)).toContain("InsecureSkipVerify");
    const r = translate(topology, options);
    const head = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "server/head-cas/activesync").encoded);
    const vc = head.transport_socket.typed_config.common_tls_context.validation_context;
    expect(vc.trusted_ca.filename).toBe("/etc/ssl/certs/ca-certificates.crt");
    expect(vc.match_typed_subject_alt_names[0]).toEqual({ san_type: "DNS", matcher: { exact: "cas.head.tailspin.local" } });
    expect(head.transport_socket.typed_config.sni).toBe("cas.head.tailspin.local");
    const branch = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "server/branch-cas/activesync").encoded);
    expect(branch.transport_socket.typed_config.common_tls_context.validation_context).toBeUndefined();
  });

  it("EDS for IP-literal endpoints, STRICT_DNS with inline endpoints for host names", () => {
    const { topology, options } = goldenCase("mixed-version");
    const r = translate(topology, options);
    const ip = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "server/e2010b/ews").encoded);
    expect(ip.type).toBe("EDS");
    expect(ip.load_assignment).toBeUndefined();
    expect(r.endpoints.map((e) => e.name)).toContain("server/e2010b/ews");
    const dns = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "server/e2010a/ews").encoded);
    expect(dns.type).toBe("STRICT_DNS");
    expect(dns.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "e2010a.litware.local", port_value: 443 });
    // Pools per version class (R-GEN-2): 2010 and 2013+ EWS are different clusters.
    expect(r.clusters.map((c) => c.name)).toEqual(expect.arrayContaining(["pool/main/v2010/ews", "pool/main/v2013plus/ews"]));
    // The 2003 back-end's /public is plain HTTP: no TLS.
    const pub = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "server/e2003/public").encoded);
    expect(pub.transport_socket).toBeUndefined();
    expect(pub.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(80);
    // Pre-2013 servers have no healthcheck.htm; 2013+ use Managed Availability's.
    expect(pub.health_checks[0].http_health_check).toEqual({ path: "/public/", expected_statuses: [{ start: 200, end: 500 }] });
    const e2013 = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "server/e2013/ews").encoded);
    expect(e2013.health_checks[0].http_health_check.path).toBe("/EWS/healthcheck.htm");
    // NTLM binds the upstream connection to the client's: no sharing for those vdirs.
    expect(e2013.connection_pool_per_downstream_connection).toBe(true);
  });

  it("pools carry one TLS context per server (own SNI and SAN) and drain servers in maintenance", () => {
    const { topology, options } = goldenCase("one-site");
    const r = translate(topology, options);
    const pool = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "pool/hq/v2013plus/owa").encoded);
    expect(pool.transport_socket_matches.map((m: Obj) => [m.name, m.transport_socket.typed_config.sni])).toEqual([
      ["ex01", "ex01.fabrikam.local"],
      ["ex02", "ex02.fabrikam.local"],
    ]);
    const cla = decodeDeep(typeOf(TYPE_URLS.endpoint), find(r.endpoints, "pool/hq/v2013plus/owa").encoded);
    const eps = cla.endpoints[0].lb_endpoints;
    expect(eps.map((e: Obj) => e.endpoint.address.socket_address)).toEqual([
      { address: "10.0.0.11", port_value: 443 },
      { address: "10.0.0.12", port_value: 8443 },
    ]);
    expect(eps[1].health_status).toBe("DRAINING");
    // Percent{value: 0}: present (panic routing off), its zero value not written (proto3).
    expect(pool.common_lb_config.healthy_panic_threshold).toEqual({});
    expect(pool.circuit_breakers.thresholds[0].max_connections).toEqual({ value: 100000 });
  });

  it("healthChecks: false leaves health checks out; ports, SDS certificate and ext_proc follow the options", () => {
    const { topology, options } = goldenCase("no-health-checks");
    const r = translate(topology, options);
    for (const c of r.clusters) expect(decodeDeep(typeOf(TYPE_URLS.cluster), c.encoded).health_checks, c.name).toBeUndefined();
    const https = decodeDeep(typeOf(TYPE_URLS.listener), find(r.listeners, "https").encoded);
    expect(https.address.socket_address.port_value).toBe(8443);
    const tls = https.default_filter_chain.transport_socket.typed_config.common_tls_context;
    expect(tls.tls_certificate_sds_secret_configs[0].name).toBe("cas-gateway-tls");
    const filters = https.default_filter_chain.filters[0].typed_config.http_filters;
    expect(filters.map((f: Obj) => f.name)).toEqual(["envoy.filters.http.header_mutation", EXT_AUTHZ_FILTER_NAME, "envoy.filters.http.ext_proc", "envoy.filters.http.router"]);
    // PROXY protocol v2 towards the mail proxy when asked for.
    const mp = decodeDeep(typeOf(TYPE_URLS.cluster), find(r.clusters, "cas-gateway/mail-proxy/imap4-tls").encoded);
    expect(mp.transport_socket.typed_config.config.version).toBe("V2");
    expect(mp.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(2993);
    // Response phase only; ext_proc switched off on routes that need none (ActiveSync), on where affinity cookies go (EWS).
    expect(filters[2].typed_config.processing_mode).toMatchObject({ request_header_mode: "SKIP", response_header_mode: "SEND" });
    const routes = decodeDeep(typeOf(TYPE_URLS.route), find(r.routes, "https").encoded).virtual_hosts[0].routes;
    expect(routes.find((x: Obj) => x.name === "activesync/microsoft-server-activesync").typed_per_filter_config["envoy.filters.http.ext_proc"].disabled).toBe(true);
    expect(routes.find((x: Obj) => x.name === "ews/ews").typed_per_filter_config["envoy.filters.http.ext_proc"]).toBeUndefined();
  });
});

describe("translate: determinism and invalid resources", () => {
  it("same topology and options give byte-identical resources and versions, whatever the object order", async () => {
    const org = await loadOrganisation("examples/contoso");
    const objects = org.manifests.objects.map((o) => o.object);
    const a = translate(buildTopology(objects), GOLDEN_BASE_OPTIONS);
    const b = translate(buildTopology([...objects].reverse()), GOLDEN_BASE_OPTIONS);
    expect(b.version).toBe(a.version);
    const bytes = (x: EnvoyResources) => [...x.listeners, ...x.routes, ...x.clusters, ...x.endpoints].map((r) => `${r.name}:${Buffer.from(r.encoded).toString("base64")}:${r.version}`);
    expect(bytes(b)).toEqual(bytes(a));
    const c = translate(buildTopology(objects), { ...GOLDEN_BASE_OPTIONS, extAuthzTimeoutMs: 1500 });
    expect(c.version).not.toBe(a.version);
  });

  it("a resource that fails Envoy's validation is not served, and its objects get a problem saying why", () => {
    const raw = [
      { apiVersion: "casgateway.io/v1alpha1", kind: "ADSite", metadata: { name: "s" }, spec: { hostnames: ["mail.example.com"] } },
      // Port 70000 passes the CRD's address pattern but not SocketAddress.port_value (lte 65535).
      { apiVersion: "casgateway.io/v1alpha1", kind: "ClientAccessServer", metadata: { name: "bad" }, spec: { site: "s", fqdn: "bad.example.com", exchangeVersion: "2016", roles: ["ClientAccess"], address: "bad.example.com:70000" } },
      { apiVersion: "casgateway.io/v1alpha1", kind: "ClientAccessServer", metadata: { name: "good" }, spec: { site: "s", fqdn: "good.example.com", exchangeVersion: "2016", roles: ["ClientAccess"] } },
      { apiVersion: "casgateway.io/v1alpha1", kind: "VirtualDirectory", metadata: { name: "bad-owa" }, spec: { server: "bad", service: "Owa", internalUrl: "https://bad.example.com/owa" } },
      { apiVersion: "casgateway.io/v1alpha1", kind: "VirtualDirectory", metadata: { name: "good-owa" }, spec: { server: "good", service: "Owa", internalUrl: "https://good.example.com/owa" } },
    ].map((o) => KIND_SCHEMAS[o.kind as keyof typeof KIND_SCHEMAS].parse(o) as ApiObject);
    const r = translate(buildTopology(raw), GOLDEN_BASE_OPTIONS);
    const names = r.clusters.map((c) => c.name);
    expect(names).toContain("server/good/owa");
    expect(names).not.toContain("server/bad/owa");
    // The pool holds the bad server too, so it is withheld as well.
    expect(names).not.toContain("pool/s/v2013plus/owa");
    const p = r.problems.find((x) => x.kind === "ClientAccessServer" && x.name === "bad")!;
    expect(p.reason).toBe("InvalidEnvoyResource");
    expect(p.message).toContain("port_value");
    expect(p.message).toContain("65535");
    expect(p.resource).toEqual({ typeUrl: TYPE_URLS.cluster, name: "server/bad/owa" });
    expect(r.problems.some((x) => x.kind === "VirtualDirectory" && x.name === "bad-owa")).toBe(true);
  });
});

describe("bootstrap", () => {
  it("ADS over gRPC to the control plane, admin on loopback, valid against the Bootstrap proto", () => {
    const b = bootstrap({ nodeId: "gw-1", nodeCluster: "cas-gateway", xds: { address: "127.0.0.1", port: 18000 } });
    const v = b.value as Obj;
    expect(v.dynamic_resources.ads_config.api_type).toBe("GRPC");
    expect(v.dynamic_resources.cds_config.ads).toEqual({});
    expect(v.admin.address.socket_address.address).toBe("127.0.0.1");
    expect(JSON.parse(b.json)).toEqual(v);
    expect(b.yaml).toContain("ads_config:");
    expect(() => bootstrap({ nodeId: "", nodeCluster: "c", xds: { address: "127.0.0.1", port: 18000 } })).toThrow(/node/);
  });
});
