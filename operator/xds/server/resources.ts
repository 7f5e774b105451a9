// What the ADS server serves: opaque, already-encoded resources. The translator's EnvoyResource
// ({name, typeUrl, value, encoded, version}) fits this shape; so does the gateway's own state type.
import { GATEWAY_STATE_TYPE_URL } from "../../../model/gateway-state.js";
import { hashHex } from "../../../model/hash.js";

export interface XdsResource {
  readonly name: string;
  readonly typeUrl: string;
  /** Serialized protobuf (or, for the custom state type, JSON) bytes: the Any's value. */
  readonly encoded: Uint8Array;
  /** Content-derived version; computed from `encoded` when empty. */
  readonly version: string;
}

export const TYPE_URLS = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  secret: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
  /** The gateway's own type: the accepted API objects + health down-list, for stateless sidecars. */
  gatewayState: GATEWAY_STATE_TYPE_URL,
} as const;

/** Make-before-break push order: clusters, then their endpoints, (secrets,) listeners, then routes. */
export const PUSH_ORDER: readonly string[] = [
  TYPE_URLS.cluster,
  TYPE_URLS.endpoint,
  TYPE_URLS.secret,
  TYPE_URLS.listener,
  TYPE_URLS.route,
  TYPE_URLS.gatewayState,
];

/** Types a server-initiated push of `typeUrl` waits on (their previous responses must be answered). */
export const PUSH_AFTER: Readonly<Record<string, readonly string[]>> = {
  [TYPE_URLS.endpoint]: [TYPE_URLS.cluster],
  [TYPE_URLS.listener]: [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.secret],
  [TYPE_URLS.route]: [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.secret, TYPE_URLS.listener],
};

/**
 * Removals of a type wait until these types have ACKed the new snapshot (make before break):
 * a cluster goes away only once no listener or route of the old configuration can point at it.
 */
export const BREAK_AFTER: Readonly<Record<string, readonly string[]>> = {
  [TYPE_URLS.cluster]: [TYPE_URLS.listener, TYPE_URLS.route],
};

/**
 * Types where an empty SotW resource_names (or an empty first Delta subscribe) means "everything"
 * (legacy wildcard). RDS and EDS are always subscribed by name.
 */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URLS.listener, TYPE_URLS.cluster, TYPE_URLS.gatewayState]);

export const SHORT_TYPE: Readonly<Record<string, string>> = {
  [TYPE_URLS.listener]: "LDS",
  [TYPE_URLS.route]: "RDS",
  [TYPE_URLS.cluster]: "CDS",
  [TYPE_URLS.endpoint]: "EDS",
  [TYPE_URLS.secret]: "SDS",
  [TYPE_URLS.gatewayState]: "GatewayState",
};
/** The types this server serves; a request for any other is ignored (looked up in constant time). */
export const KNOWN_TYPES: ReadonlySet<string> = new Set(Object.values(TYPE_URLS));

/** A log field from a client (NACK error_detail, ...), cut to `max` characters with the length it had. */
export function clip(s: string, max = 512): string {
  return s.length <= max ? s : `${s.slice(0, max)}... (${s.length} characters, cut)`;
}

export const shortType = (typeUrl: string): string => SHORT_TYPE[typeUrl] ?? typeUrl.replace(/^type\.googleapis\.com\//, "");

// Lists known to hold one type's resources sorted by name, without duplicates, each with its
// version: the translator marks what it returns, so a snapshot takes them without re-checking
// 10,000 names per change. Marked lists must not be changed afterwards.
const SORTED_BY_NAME = new WeakSet<readonly XdsResource[]>();
export function markSortedByName<T extends readonly XdsResource[]>(list: T): T {
  SORTED_BY_NAME.add(list);
  return list;
}
export const isMarkedSortedByName = (list: readonly XdsResource[]): boolean => SORTED_BY_NAME.has(list);

/** The version of one resource: the one it carries, or a hash of its bytes. */
export function resourceVersion(r: XdsResource): string {
  return r.version || hashHex(r.encoded).slice(0, 16);
}
