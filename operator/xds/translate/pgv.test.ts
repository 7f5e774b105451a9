// The PGV validator on deliberately broken resources: each case breaks one (validate.rules)
// annotation of Envoy's protos and must be caught with the right rule and path.
import { describe, expect, it } from "vitest";
import { ProtoCodec, envoyRoot, parseDuration } from "./index.js";

const codec = new ProtoCodec(envoyRoot());
const CLUSTER = "envoy.config.cluster.v3.Cluster";
const okCluster = () => ({ name: "c", connect_timeout: "1s", type: "STATIC", load_assignment: { cluster_name: "c" } });
const rules = (type: string, v: unknown) => codec.validate(type, v).map((x) => `${x.path} ${x.rule}`);

describe("PGV validator", () => {
  it("accepts a valid cluster and encodes it", () => {
    const r = codec.encode(CLUSTER, okCluster());
    expect(r.violations).toEqual([]);
    expect(r.bytes!.length).toBeGreaterThan(0);
    const decoded = envoyRoot().lookupType(CLUSTER).decode(r.bytes!) as unknown as { name: string; connect_timeout: { seconds: number } };
    expect(decoded.name).toBe("c");
    expect(Number(decoded.connect_timeout.seconds)).toBe(1);
  });

  it("string.min_len applies to an absent proto3 string (Cluster.name)", () => {
    const { name: _n, ...noName } = okCluster();
    expect(rules(CLUSTER, noName)).toEqual(["name string.min_len"]);
  });

  it("duration.gt: connect_timeout must be above 0", () => {
    expect(rules(CLUSTER, { ...okCluster(), connect_timeout: "0s" })).toEqual(["connect_timeout duration.gt"]);
  });

  it("enum.defined_only and unknown enum names", () => {
    expect(rules(CLUSTER, { ...okCluster(), lb_policy: 99 })).toEqual(["lb_policy enum.defined_only"]);
    expect(rules(CLUSTER, { ...okCluster(), lb_policy: "FASTEST" })).toEqual(["lb_policy json"]);
  });

  it("message.required, required oneof and repeated.min_items inside a health check", () => {
    const v = codec.validate(CLUSTER, { ...okCluster(), health_checks: [{ timeout: "1s" }] });
    expect(v.map((x) => `${x.path} ${x.rule}`)).toEqual([
      "health_checks[0].interval message.required",
      "health_checks[0].unhealthy_threshold message.required",
      "health_checks[0].healthy_threshold message.required",
      "health_checks[0].health_checker oneof.required",
    ]);
  });

  it("numeric ranges on wrapped values (UInt32Value status_code 200..599 of a local reply mapper)", () => {
    const HCM = "envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper";
    const mapper = (code: number) => ({ filter: { status_code_filter: { comparison: { op: "EQ", value: { default_value: 403, runtime_key: "k" } } } }, status_code: code });
    expect(rules(HCM, mapper(451))).toEqual([]);
    expect(rules(HCM, mapper(700))).toEqual(["status_code uint32.range"]);
    expect(rules(HCM, mapper(100))).toEqual(["status_code uint32.range"]);
  });

  it("port_value lte 65535 and uint32 overflow", () => {
    const A = "envoy.config.core.v3.SocketAddress";
    expect(rules(A, { address: "10.0.0.1", port_value: 70000 })).toEqual(["port_value uint32.range"]);
    expect(rules(A, { address: "10.0.0.1", port_value: -1 })).toContain("port_value json");
  });

  it("well-known header-name regex and string pattern (path_separated_prefix)", () => {
    const H = "envoy.config.core.v3.HeaderValue";
    expect(rules(H, { key: "x-ok", value: "v" })).toEqual([]);
    expect(rules(H, { key: "bad\nname", value: "v" })).toEqual(["key string.well_known_regex"]);
    const M = "envoy.config.route.v3.RouteMatch";
    expect(rules(M, { path_separated_prefix: "/owa" })).toEqual([]);
    expect(rules(M, { path_separated_prefix: "/owa/" })).toEqual(["path_separated_prefix string.pattern"]);
  });

  it("recurses into Any by type URL, and rejects unknown types and fields", () => {
    const bad = {
      ...okCluster(),
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", sni: "x".repeat(300) },
      },
    };
    expect(rules(CLUSTER, bad)).toEqual(["transport_socket.typed_config<UpstreamTlsContext>.sni string.max_bytes"]);
    const unknownType = { ...okCluster(), transport_socket: { name: "t", typed_config: { "@type": "type.googleapis.com/envoy.Nope" } } };
    expect(rules(CLUSTER, unknownType)).toEqual(["transport_socket.typed_config any.type"]);
    expect(rules(CLUSTER, { ...okCluster(), colour: "blue" })).toEqual(["colour json"]);
  });

  it("two members of one oneof are refused", () => {
    expect(rules(CLUSTER, { ...okCluster(), cluster_type: { name: "envoy.clusters.aggregate" } })).toEqual(["cluster_discovery_type oneof"]);
  });

  it("a rule on a oneof member applies only when that member is set (StringMatcher.safe_regex)", () => {
    expect(rules("envoy.type.matcher.v3.StringMatcher", { exact: "a" })).toEqual([]);
    expect(rules("envoy.type.matcher.v3.StringMatcher", {})).toEqual(["match_pattern oneof.required"]);
  });

  it("repeated.min_items (virtual host domains) and map values", () => {
    const VH = "envoy.config.route.v3.VirtualHost";
    expect(rules(VH, { name: "v", domains: [] })).toEqual(["domains repeated.min_items"]);
    expect(rules(VH, { name: "v", domains: ["*"] })).toEqual([]);
  });

  it("bool.const: ExtProcPerRoute.disabled must be true when set", () => {
    const T = "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute";
    expect(rules(T, { disabled: true })).toEqual([]);
    expect(rules(T, { disabled: false })).toEqual(["disabled bool.const"]);
  });

  it("proto3 JSON durations", () => {
    expect(parseDuration("1.5s")).toEqual({ seconds: 1, nanos: 500000000 });
    expect(parseDuration("0s")).toEqual({});
    expect(parseDuration("5m")).toBeUndefined();
    expect(rules(CLUSTER, { ...okCluster(), connect_timeout: "5m" })).toContain("connect_timeout json");
  });

  it("shared (frozen) sub-objects are checked once and give the same bytes as unshared ones", () => {
    const hc = Object.freeze({ timeout: "1s", interval: "2s", unhealthy_threshold: 2, healthy_threshold: 1, tcp_health_check: Object.freeze({}) });
    const a = codec.encode(CLUSTER, { ...okCluster(), health_checks: [hc] });
    const b = codec.encode(CLUSTER, { ...okCluster(), health_checks: [hc] });
    const c = codec.encode(CLUSTER, { ...okCluster(), health_checks: [{ ...hc, tcp_health_check: {} }] });
    expect(Buffer.from(a.bytes!).equals(Buffer.from(b.bytes!))).toBe(true);
    expect(Buffer.from(a.bytes!).equals(Buffer.from(c.bytes!))).toBe(true);
  });
});
