// Envoy's real API protos (shipped by @grpc/grpc-js-xds under deps/), loaded with @grpc/proto-loader.
// No hand-written copies of Envoy message shapes: field names are the protos' own (keepCase).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);

/** Include dirs of the Envoy API tree: envoy-api, xds, googleapis, protoc-gen-validate. */
export function envoyIncludeDirs(): string[] {
  const main = require.resolve("@grpc/grpc-js-xds");
  // main = <pkg>/build/src/index.js
  const deps = path.join(path.dirname(main), "..", "..", "deps");
  return ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => path.join(deps, d));
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: envoyIncludeDirs(),
};

export const AUTHZ_PROTO = "envoy/service/auth/v3/external_auth.proto";
export const EXT_PROC_PROTO = "envoy/service/ext_proc/v3/external_processor.proto";

export interface EnvoyServices {
  readonly packageDefinition: protoLoader.PackageDefinition;
  /** envoy.service.auth.v3.Authorization */
  readonly authorization: grpc.ServiceDefinition;
  /** envoy.service.ext_proc.v3.ExternalProcessor */
  readonly externalProcessor: grpc.ServiceDefinition;
  /** Client constructors, for tests and the benchmark. */
  readonly AuthorizationClient: grpc.ServiceClientConstructor;
  readonly ExternalProcessorClient: grpc.ServiceClientConstructor;
}

let cached: EnvoyServices | undefined;

/** Load (once per process) the ext_authz and ext_proc service definitions. */
export function loadEnvoyServices(): EnvoyServices {
  if (cached) return cached;
  const packageDefinition = protoLoader.loadSync([AUTHZ_PROTO, EXT_PROC_PROTO], LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(packageDefinition);
  const pick = (dotted: string): grpc.ServiceClientConstructor => {
    let node: unknown = root;
    for (const part of dotted.split(".")) node = (node as Record<string, unknown>)[part];
    if (typeof node !== "function") throw new Error(`Envoy proto service ${dotted} not found`);
    return node as grpc.ServiceClientConstructor;
  };
  const AuthorizationClient = pick("envoy.service.auth.v3.Authorization");
  const ExternalProcessorClient = pick("envoy.service.ext_proc.v3.ExternalProcessor");
  cached = {
    packageDefinition,
    authorization: AuthorizationClient.service,
    externalProcessor: ExternalProcessorClient.service,
    AuthorizationClient,
    ExternalProcessorClient,
  };
  return cached;
}

/** Serialize a CheckRequest object (snake_case fields) with Envoy's proto: tests and the h2load frame file. */
export function serializeCheckRequest(req: unknown): Buffer {
  const def = loadEnvoyServices().authorization.Check;
  return def.requestSerialize(req);
}

export function deserializeCheckResponse(buf: Buffer): unknown {
  return loadEnvoyServices().authorization.Check.responseDeserialize(buf);
}

let codec: { CheckRequest: protobuf.Type; CheckResponse: protobuf.Type } | undefined;

/** protobufjs types of CheckRequest/CheckResponse, from the same proto files and include dirs. */
export function checkCodec(): { CheckRequest: protobuf.Type; CheckResponse: protobuf.Type } {
  if (codec) return codec;
  const root = new protobuf.Root();
  const dirs = envoyIncludeDirs();
  root.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = path.join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync([AUTHZ_PROTO], { keepCase: true });
  root.resolveAll();
  codec = {
    CheckRequest: root.lookupType("envoy.service.auth.v3.CheckRequest"),
    CheckResponse: root.lookupType("envoy.service.auth.v3.CheckResponse"),
  };
  return codec;
}
