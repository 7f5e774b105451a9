// The xDS translator: Topology → Envoy resources (see docs/xds.md).
export * from "./types.js";
export { translate, translateFromScratch, sharedCodec, resetTranslationCaches } from "./translate.js";
export { bootstrap, BootstrapError, type Bootstrap } from "./bootstrap.js";
export { resolveOptions, DEFAULT_PORTS, TranslateOptionsSchema } from "./options.js";
export { ProtoCodec, parseDuration, type Violation, type EncodeResult } from "./pgv.js";
export { envoyRoot, protoIncludeDirs, PROTO_FILES } from "./protos.js";
export { SERVICE_ROUTES, serviceForPath, MAIL_IDLE_TIMEOUT_S } from "./services.js";
export { EAS_451_DECISION, HTTPS_ROUTE_CONFIG, HTTP_ROUTE_CONFIG, EXT_PROC_FILTER_NAME } from "./listeners.js";
export { mailProxyClusterName, smtpClusterName, CIRCUIT_BREAKERS } from "./clusters.js";
export { toDiscoveryListing, resourcesToYaml } from "./render.js";
