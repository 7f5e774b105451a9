// Envoy's xDS protos, loaded from the copy @grpc/grpc-js-xds ships (deps/{envoy-api,xds,googleapis,
// protoc-gen-validate}). One loader for the ADS service definition (grpc-js) and one protobufjs Root
// for encoding and decoding Envoy resources (tests, benchmarks, config_dump).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);

/** Include directories holding Envoy's API protos and their dependencies. */
export function envoyProtoDirs(): string[] {
  const base = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
  return ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(base, d));
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: envoyProtoDirs(),
};

let adsPackage: grpc.GrpcObject | undefined;

/** grpc-js package object for envoy.service.discovery.v3 (ADS) and friends. */
export function loadAdsPackage(): grpc.GrpcObject {
  adsPackage ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(["envoy/service/discovery/v3/ads.proto"], LOADER_OPTIONS),
  );
  return adsPackage;
}

/** The AggregatedDiscoveryService client constructor + service definition. */
export function adsService(): grpc.ServiceClientConstructor {
  const pkg = loadAdsPackage() as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
}

/** Files that define the resource types the gateway serves (and the gRPC xDS interop test uses). */
export const ENVOY_RESOURCE_PROTOS = [
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/service/discovery/v3/discovery.proto",
];

let root: protobuf.Root | undefined;

/** A protobufjs Root with Envoy's resource types, resolving imports from envoyProtoDirs(). */
export function envoyRoot(extraFiles: readonly string[] = []): protobuf.Root {
  if (root && extraFiles.length === 0) return root;
  const dirs = envoyProtoDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  r.loadSync([...ENVOY_RESOURCE_PROTOS, ...extraFiles], { keepCase: true });
  r.resolveAll();
  if (extraFiles.length === 0) root = r;
  return r;
}

/** Encode a plain object as the named Envoy message (e.g. "envoy.config.cluster.v3.Cluster"). */
export function encodeEnvoy(typeName: string, value: Record<string, unknown>): Uint8Array {
  const t = envoyRoot().lookupType(typeName);
  // fromObject (not verify) so enums may be given by name, as in Envoy's JSON/YAML.
  return t.encode(t.fromObject(value)).finish();
}

/** Decode Envoy message bytes to a plain JSON-able object (enums as names, longs as strings). */
export function decodeEnvoy(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const t = envoyRoot().lookupType(typeName);
  return t.toObject(t.decode(bytes), { enums: String, longs: String, bytes: String, defaults: false, json: true }) as Record<
    string,
    unknown
  >;
}
