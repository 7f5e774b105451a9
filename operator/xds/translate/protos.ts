// Envoy's real API protos (the tree @grpc/grpc-js-xds ships), loaded once with protobufjs.
// Field names are kept as written in the .proto files (snake_case), which is also what Envoy's
// own YAML/JSON configuration and config dumps use, so built values read like Envoy docs.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);

/** Proto files the translator and bootstrap need; their imports are loaded with them. */
export const PROTO_FILES = [
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
  "envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto",
  "envoy/extensions/filters/http/health_check/v3/health_check.proto",
  "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
  "envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/service/discovery/v3/discovery.proto",
];

/** Include directories: Envoy API, xds/udpa, googleapis, protoc-gen-validate, and protobufjs' own google/protobuf. */
export function protoIncludeDirs(): string[] {
  const xdsPkg = path.dirname(require.resolve("@grpc/grpc-js-xds/package.json"));
  const pbPkg = path.dirname(require.resolve("protobufjs/package.json"));
  return [
    ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => path.join(xdsPkg, "deps", d)),
    pbPkg,
  ];
}

let cached: protobuf.Root | undefined;

/** The loaded, resolved root (loaded on first use; about 0.3 s). */
export function envoyRoot(): protobuf.Root {
  return (cached ??= loadRoot(false));
}

let withComments: protobuf.Root | undefined;
/**
 * The same protos with every field's `//` comment kept (e.g. "[#not-implemented-hide:]"), for the
 * checks that read Envoy's annotations; a separate root so the translator's stays lean.
 */
export function envoyRootWithComments(): protobuf.Root {
  return (withComments ??= loadRoot(true));
}

function loadRoot(comments: boolean): protobuf.Root {
  const dirs = protoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const d of dirs) {
      const p = path.join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(PROTO_FILES, { keepCase: true, ...(comments ? { alternateCommentMode: true } : {}) });
  root.resolveAll();
  return root;
}

/** Fully qualified message name from a type URL (type.googleapis.com/envoy.x.y.Z → envoy.x.y.Z). */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
}
