// The front door as Envoy serves it (issue 19): unprivileged listener ports, redirects to the port
// clients see, SMTP only when asked for, Outlook Anywhere methods accepted on the HTTPS connection
// manager, RPC/MAPI streams never buffered and outlasting Outlook's keep-alive, and no internal
// header reaching a client.
import { describe, expect, it } from "vitest";
import { CAS_HEADERS } from "../../../model/topology/names.js";
import { loadOrganisation } from "../../provider/organisation.js";
import { GOLDEN_BASE_OPTIONS } from "./testing.js";
import { INTERNAL_RESPONSE_HEADERS, resolveOptions } from "./options.js";
import { SERVICE_ROUTES } from "./services.js";
import { TYPE_URLS, translate, type EnvoyResources, type TranslateOptions } from "./index.js";
import { envoyRoot } from "./protos.js";

type Obj = Record<string, any>;
const root = envoyRoot();
/** Decode with the real protos (so what is checked is what Envoy receives), Any payloads too. */
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
const res = (r: EnvoyResources, kind: "listeners" | "routes" | "clusters", name: string) => {
  const x = r[kind].find((y) => y.name === name);
  if (!x) throw new Error(`no ${kind} ${name}`);
  return decode(x.typeUrl, x.encoded);
};

async function contoso(extra: Partial<TranslateOptions> = {}) {
  const org = await loadOrganisation("examples/contoso");
  return translate(org.topology, { ...GOLDEN_BASE_OPTIONS, ...extra });
}

describe("front door: ports", () => {
  it("every listener binds a port >= 1024 by default, and HTTP redirects to the HTTPS listener's port", async () => {
    const r = await contoso({ smtp: true });
    expect(r.problems).toEqual([]);
    expect(r.listeners.map((l) => l.name)).toEqual(["http", "https", "imap4", "imaps", "pop3", "pop3s", "smtp", "submission"]);
    for (const l of r.listeners) expect(decode(l.typeUrl, l.encoded).address.socket_address.port_value, l.name).toBeGreaterThanOrEqual(1024);
    const https = res(r, "listeners", "https").address.socket_address.port_value;
    const redirect = res(r, "routes", "http").virtual_hosts[0].routes[0].redirect;
    // response_code MOVED_PERMANENTLY is the enum's zero value, so it does not appear once decoded.
    expect(redirect).toEqual({ https_redirect: true, port_redirect: https });
  });

  it("behind a Service: listeners bind the container ports, URLs use the public ones (none for 443)", async () => {
    const r = await contoso({ ports: { https: 8443, http: 8080 }, publicPorts: { https: 443, http: 80 } });
    expect(res(r, "listeners", "https").address.socket_address.port_value).toBe(8443);
    const redirect = res(r, "routes", "http").virtual_hosts[0].routes[0].redirect;
    expect(redirect.https_redirect).toBe(true);
    expect(redirect.port_redirect).toBeUndefined();
    // No route configuration carries a container port anywhere (redirects, rewrites).
    for (const rc of r.routes) expect(JSON.stringify(decode(rc.typeUrl, rc.encoded)), rc.name).not.toMatch(/8443|8080/);
    const other = await contoso({ ports: { https: 8443 }, publicPorts: { https: 9443 } });
    expect(res(other, "routes", "http").virtual_hosts[0].routes[0].redirect.port_redirect).toBe(9443);
  });

  it("SMTP and submission listeners (and their clusters) only when asked for", async () => {
    const without = await contoso();
    expect(without.listeners.map((l) => l.name)).not.toContain("smtp");
    expect(without.clusters.map((c) => c.name).filter((n) => n.includes("smtp"))).toEqual([]);
    const named = await contoso({ smtpSite: "usa" });
    expect(named.listeners.map((l) => l.name)).toEqual(expect.arrayContaining(["smtp", "submission"]));
  });

  it("two listeners on one port is a clear option error", () => {
    expect(() => resolveOptions({ ...GOLDEN_BASE_OPTIONS, ports: { http: 8443 } })).toThrow(/already the https listener/);
  });
});

describe("front door: Outlook Anywhere and MAPI (R-OUT-2, R-OUT-3)", () => {
  it("the HTTPS connection managers accept RPC_IN_DATA / RPC_OUT_DATA (allow_custom_methods)", async () => {
    const r = await contoso();
    const l = res(r, "listeners", "https");
    const chains = [...l.filter_chains, l.default_filter_chain];
    expect(chains.length).toBeGreaterThan(1);
    for (const c of chains) expect(c.filters[0].typed_config.http_protocol_options, c.name).toEqual({ allow_custom_methods: true });
  });

  it("RPC and MAPI bodies are never buffered for ext_authz, and their streams outlast Outlook's 15-minute keep-alive", async () => {
    const r = await contoso();
    const routes = res(r, "routes", "https").virtual_hosts[0].routes as Obj[];
    const hcm = res(r, "listeners", "https").default_filter_chain.filters[0].typed_config;
    const seconds = (d: Obj | undefined) => Number(d?.seconds ?? 0);
    const connIdle = seconds(hcm.common_http_protocol_options.idle_timeout);
    for (const name of ["rpchttp/rpc", "mapi/mapi"]) {
      const route = routes.find((x) => x.name === name)!;
      expect(route, name).toBeDefined();
      expect(route.typed_per_filter_config["envoy.filters.http.ext_authz"].check_settings.disable_request_body_buffering, name).toBe(true);
      // No whole-request timeout (0 = none); stream idle well past 15 minutes.
      expect(seconds(route.route.timeout), name).toBe(0);
      expect(seconds(route.route.idle_timeout), name).toBeGreaterThan(15 * 60);
      expect(connIdle).toBeGreaterThan(15 * 60);
    }
    for (const s of SERVICE_ROUTES.filter((x) => x.service === "RpcHttp" || x.service === "Mapi")) expect(s.body).toBe(false);
  });

  it("NTLM-authenticated RPC and MAPI clusters keep one upstream connection per client connection", async () => {
    const r = await contoso();
    const rpc = r.clusters.filter((c) => /\/(rpchttp|mapi)$/.test(c.name));
    expect(rpc.length).toBeGreaterThan(0);
    for (const c of rpc) expect(decode(c.typeUrl, c.encoded).connection_pool_per_downstream_connection, c.name).toBe(true);
  });
});

describe("front door: nothing internal leaks (R-SEC-2)", () => {
  const responseRemovals = (r: EnvoyResources) => {
    const l = res(r, "listeners", "https");
    const mutation = l.default_filter_chain.filters[0].typed_config.http_filters[0];
    expect(mutation.name).toBe("envoy.filters.http.header_mutation");
    return (mutation.typed_config.mutations.response_mutations as Obj[]).map((m) => m.remove as string);
  };

  it("responses lose Exchange's internal-name headers and the sidecar's x-cas-* headers", async () => {
    const removed = responseRemovals(await contoso());
    expect(removed).toEqual(expect.arrayContaining([...INTERNAL_RESPONSE_HEADERS, ...Object.values(CAS_HEADERS)]));
  });

  it("the internal-name list is configurable, and x-cas-* stay only under the debug option", async () => {
    const removed = responseRemovals(await contoso({ stripResponseHeaders: ["X-FEServer", "X-Custom-Backend"], exposeDecisionHeaders: true }));
    expect(removed).toEqual(["x-custom-backend", "x-feserver"]);
  });

  it("the 451 mapping keys on ext_authz metadata, so it works with x-cas-* removed", async () => {
    const hcm = res(await contoso(), "listeners", "https").default_filter_chain.filters[0].typed_config;
    const mapper = hcm.local_reply_config.mappers[0];
    expect(mapper.status_code).toEqual({ value: 451 });
    expect(mapper.filter.metadata_filter).toBeDefined();
    expect(JSON.stringify(mapper)).not.toContain("x-cas-");
  });

  it("HTTP (redirect-only) listener has no decision filters and no custom methods", async () => {
    const l = res(await contoso(), "listeners", "http");
    const t = l.filter_chains[0].filters[0].typed_config;
    expect(t.http_filters.map((f: Obj) => f.name)).toEqual(["envoy.filters.http.router"]);
    expect(t.http_protocol_options).toBeUndefined();
    expect(TYPE_URLS.listener).toContain("Listener");
  });
});
