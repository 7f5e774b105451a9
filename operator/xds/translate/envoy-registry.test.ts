// The extension registry's parsers (on small inputs shaped like Envoy's files), the check, and the
// committed data file (operator/xds/envoy-extensions.json) against the chart's Envoy pin.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  buildExtensions,
  checkUses,
  extensionUses,
  loadRegistry,
  parseBuildConfig,
  parseBuiltins,
  parseMetadata,
  type Registry,
} from "./envoy-registry.js";
import { protoStatusFindings } from "./proto-status.js";

const BZL = `# See bazel/README.md for details on how this system works.
EXTENSIONS = {
    #
    # HTTP filters
    #

    "envoy.filters.http.router":                        "//source/extensions/filters/http/router:config",
    "envoy.access_loggers.fluentd"  :                   "//source/extensions/access_loggers/fluentd:config",
    # Disabled by default. kill_request is not built into most prebuilt images.
    "envoy.filters.http.kill_request":                  "//source/extensions/filters/http/kill_request:kill_request_config",
    # "envoy.filters.http.gone":                        "//source/extensions/filters/http/gone:config",
}

LEGACY_ALWAYSLINK = 1
`;
const META = `envoy.filters.http.router:
  categories:
  - envoy.filters.http
  security_posture: robust_to_untrusted_downstream_and_upstream
  status: stable
  type_urls:
  - envoy.extensions.filters.http.router.v3.Router
envoy.filters.http.kill_request:
  categories:
  - envoy.filters.http
  security_posture: robust_to_untrusted_downstream
  status: stable
  type_urls:
  - envoy.extensions.filters.http.kill_request.v3.KillRequest
envoy.filters.http.mcp:
  categories:
  - envoy.filters.http
  security_posture: unknown
  status: alpha
  type_urls:
  - envoy.extensions.filters.http.mcp.v3.Mcp
envoy.upstreams.http.http_protocol_options:
  categories:
  - envoy.upstream_options
  security_posture: robust_to_untrusted_downstream
  status: stable
`;

describe("parsing Envoy's extension files", () => {
  it("the .bzl EXTENSIONS dict: entries, odd spacing, notes above an entry, commented-out entries left out", () => {
    const e = parseBuildConfig(BZL);
    expect(e.map((x) => x.name)).toEqual(["envoy.filters.http.router", "envoy.access_loggers.fluentd", "envoy.filters.http.kill_request"]);
    expect(e[0]!.note).toBeUndefined(); // a "#"-framed section heading is not a note
    expect(e[2]!.note).toMatch(/^Disabled by default/);
    expect(() => parseBuildConfig("EXTENSIONS = {\n    envoy.x: 1,\n}\n", "f.bzl")).toThrow(/f\.bzl:2: not a "name": "\/\/target" entry/);
    expect(() => parseBuildConfig("X = 1\n", "f.bzl")).toThrow(/no "EXTENSIONS = \{" line/);
  });

  it("the metadata: checked entry by entry", () => {
    expect(Object.keys(parseMetadata(META))).toHaveLength(4);
    expect(() => parseMetadata("envoy.x:\n  categories: []\n  status: stable\n", "m.yaml")).toThrow(/m\.yaml: envoy\.x: categories/);
  });

  it("BUILTIN_EXTENSIONS of extensions_check.py", () => {
    expect(parseBuiltins('X = 1\nBUILTIN_EXTENSIONS = (\n    "envoy.request_id.uuid", "envoy.transport_sockets.tls")\n')).toEqual(["envoy.request_id.uuid", "envoy.transport_sockets.tls"]);
  });

  it("registered = in the .bzl (not disabled by default) or built in; config types from metadata, else proto tags", () => {
    const ext = buildExtensions({
      buildConfig: parseBuildConfig(BZL),
      metadata: parseMetadata(META),
      builtins: ["envoy.upstreams.http.http_protocol_options"],
      protoTags: new Map([
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "envoy.upstreams.http.http_protocol_options"],
        ["envoy.config.filter.http.router.v2.Router", "envoy.filters.http.router"],
      ]),
    });
    expect(Object.keys(ext)).toEqual([...Object.keys(ext)].sort());
    expect(ext["envoy.filters.http.router"]).toMatchObject({ registered: true, source: "build_config", typeUrls: ["envoy.extensions.filters.http.router.v3.Router"] });
    expect(ext["envoy.filters.http.router"]!.protoTypes).toBeUndefined();
    expect(ext["envoy.filters.http.kill_request"]).toMatchObject({ registered: false, source: "build_config" });
    expect(ext["envoy.filters.http.mcp"]).toMatchObject({ registered: false, source: "metadata_only" });
    expect(ext["envoy.upstreams.http.http_protocol_options"]).toMatchObject({ registered: true, source: "builtin", protoTypes: ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] });
    expect(ext["envoy.access_loggers.fluentd"]).toMatchObject({ registered: true, source: "build_config" });
  });
});

describe("the check", () => {
  const reg: Registry = {
    release: "v1.39.3",
    generatedBy: "test",
    provenance: { tiedToRelease: false, summary: "", files: [], checked: [] },
    extensions: buildExtensions({ buildConfig: parseBuildConfig(BZL), metadata: parseMetadata(META), builtins: ["envoy.upstreams.http.http_protocol_options"], protoTags: new Map([["envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "envoy.upstreams.http.http_protocol_options"]]) }),
  };
  const filter = (name: string, type: string) => ({ "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", filter_chains: [{ filters: [{ name, typed_config: { "@type": `type.googleapis.com/${type}` } }] }] });

  it("passes a registered filter given under its own name", () => {
    expect(checkUses(extensionUses(filter("envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router")), reg)).toEqual([]);
  });
  it("fails an extension the release does not build, one it builds only on request, an unknown type, and a type under another's name", () => {
    const msgs = (v: unknown) => checkUses(extensionUses(v), reg).map((p) => `${p.path}: ${p.message}`);
    expect(msgs(filter("envoy.filters.http.mcp", "envoy.extensions.filters.http.mcp.v3.Mcp"))).toEqual([
      "filter_chains[0].filters[0].name: extension envoy.filters.http.mcp is not built by default in Envoy v1.39.3",
      "filter_chains[0].filters[0].typed_config: type envoy.extensions.filters.http.mcp.v3.Mcp belongs to envoy.filters.http.mcp, which Envoy v1.39.3 does not build by default",
    ]);
    expect(msgs(filter("envoy.filters.http.kill_request", "envoy.extensions.filters.http.kill_request.v3.KillRequest"))[0]).toMatch(/not built by default.*\(Disabled by default/);
    expect(msgs(filter("envoy.filters.http.router", "envoy.extensions.filters.http.nope.v3.Nope"))).toEqual(["filter_chains[0].filters[0].typed_config: type envoy.extensions.filters.http.nope.v3.Nope is no extension's configuration in Envoy v1.39.3"]);
    expect(msgs(filter("envoy.filters.http.kill_request", "envoy.extensions.filters.http.router.v3.Router"))[1]).toMatch(/given as "envoy.filters.http.kill_request" but belongs to envoy.filters.http.router/);
  });
  it("implied extensions: a cluster's discovery type and its health checkers", () => {
    const uses = extensionUses({ "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", type: "STRICT_DNS", health_checks: [{ tcp_health_check: {} }] });
    expect(uses.filter((u) => u.kind === "implied").map((u) => u.value)).toEqual(["envoy.clusters.strict_dns", "envoy.health_checkers.tcp"]);
    expect(checkUses(uses, reg).map((p) => p.message)).toEqual([
      "extension envoy.clusters.strict_dns is not registered by Envoy v1.39.3",
      "extension envoy.health_checkers.tcp is not registered by Envoy v1.39.3",
    ]);
  });
  it("typed_extension_protocol_options keyed by the config type resolve through the type's extension", () => {
    const c = {
      "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
      type: "STATIC",
      typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions" } },
    };
    expect(checkUses(extensionUses(c), reg).map((p) => p.message)).toEqual(["extension envoy.clusters.static is not registered by Envoy v1.39.3"]);
  });
});

describe("the committed registry", () => {
  const reg = loadRegistry();
  it("is for the release the chart pins (gateway.envoy.image.tag)", () => {
    const values = parse(readFileSync("charts/cas-gateway/values.yaml", "utf8")) as { gateway: { envoy: { image: { tag: string } } } };
    expect(reg.release).toBe(values.gateway.envoy.image.tag);
  });
  it("says where it came from, and the core extensions every configuration needs are registered", () => {
    expect(reg.provenance.files.map((f) => f.path)).toEqual(expect.arrayContaining(["source/extensions/extensions_build_config.bzl", "source/extensions/extensions_metadata.yaml"]));
    expect(reg.provenance.summary.length).toBeGreaterThan(0);
    for (const n of ["envoy.filters.network.http_connection_manager", "envoy.filters.http.router", "envoy.transport_sockets.tls"]) expect(reg.extensions[n]?.registered, n).toBe(true);
    expect(Object.keys(reg.extensions)).toEqual([...Object.keys(reg.extensions)].sort());
  });
});

describe("deprecated / work-in-progress / not-implemented-hide fields", () => {
  it("reads the annotations from the protos: deprecated, field_status WIP, [#not-implemented-hide:]", () => {
    const f = protoStatusFindings("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
      stat_prefix: "x",
      http_protocol_options: { allow_custom_methods: true },
      access_log_flush_interval: "1s",
    });
    expect(f.map((x) => `${x.subject} ${x.kind}`).sort()).toEqual([
      "envoy.config.core.v3.Http1ProtocolOptions.allow_custom_methods not_implemented_hide",
      "envoy.config.core.v3.Http1ProtocolOptions.allow_custom_methods work_in_progress",
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.access_log_flush_interval deprecated",
    ]);
  });
  it("follows Any values and deprecated cluster fields", () => {
    const f = protoStatusFindings("envoy.config.cluster.v3.Cluster", {
      name: "c",
      max_requests_per_connection: 10,
      transport_socket: { name: "t", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", http_protocol_options: { allow_custom_methods: true } } },
    });
    expect(f.map((x) => x.path)).toEqual(["max_requests_per_connection", "transport_socket.typed_config.http_protocol_options.allow_custom_methods", "transport_socket.typed_config.http_protocol_options.allow_custom_methods"]);
  });
});
