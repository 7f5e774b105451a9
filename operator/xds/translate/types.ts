// Output shape of the xDS translator (operator/xds/translate): a pure function Topology → Envoy
// resources, each built as a proto3-JSON-like object, encoded with Envoy's real API protos and
// checked against their protoc-gen-validate rules. The ADS server serves `encoded` as the
// google.protobuf.Any value of each resource; a resource that failed validation is not in the
// lists at all, and `problems` says which objects caused it and why.
import type { Kind } from "../../../crds/index.js";
import type { Problem, Topology } from "../../../model/topology/types.js";

export const TYPE_URLS = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  secret: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
} as const;
export type ResourceKind = keyof typeof TYPE_URLS;

export interface EnvoyResource {
  /** Resource name (listener/route config/cluster name; cluster name for a ClusterLoadAssignment). */
  readonly name: string;
  readonly typeUrl: string;
  /**
   * The resource as built, in proto3 JSON form (what golden files and `render` show). For clusters
   * and endpoints this is a getter that rebuilds the (identical) object on each read.
   */
  readonly value: Readonly<Record<string, unknown>>;
  /** Serialized protobuf bytes of the message (the Any's value). */
  readonly encoded: Uint8Array;
  /** Content hash of `encoded` (hex, 16 chars): the per-resource version for delta xDS. */
  readonly version: string;
}

/**
 * A translation problem. Object problems carry the CRD kind/name (so status conditions can show
 * them); problems caused by the gateway's own options use kind "GatewayOptions".
 */
export interface XdsProblem extends Omit<Problem, "kind"> {
  readonly kind: Kind | "GatewayOptions";
  /** The resource that was not served because of this problem, when there is one. */
  readonly resource?: { readonly typeUrl: string; readonly name: string };
}

export interface EnvoyResources {
  /** Content hash over every served resource: same topology + options → same version. */
  readonly version: string;
  /** The topology version these were built from. */
  readonly topologyVersion: string;
  readonly listeners: readonly EnvoyResource[];
  readonly routes: readonly EnvoyResource[];
  readonly clusters: readonly EnvoyResource[];
  readonly endpoints: readonly EnvoyResource[];
  /** SDS secrets (only when options.tls is given as inline PEM; empty otherwise). */
  readonly secrets: readonly EnvoyResource[];
  readonly problems: readonly XdsProblem[];
}

export interface SocketAddr {
  readonly address: string;
  readonly port: number;
}

/** Where the HTTPS/POP3S/IMAPS listeners get their certificate. */
export type ListenerTls =
  /** PEM files on Envoy's file system (mounted Secret). */
  | { readonly certFile: string; readonly keyFile: string }
  /** An SDS secret served by the control plane over ADS (name of a tls_certificate Secret). */
  | { readonly sdsSecret: string }
  /**
   * File-based SDS: Envoy reads the secret from `sdsFile` (a file holding one Secret resource whose
   * tls_certificate names the PEM files, see frontDoorSdsFile) and watches it and the certificate's
   * directory, so a renewed Secret (the kubelet's atomic symlink swap) takes effect without a restart.
   */
  | { readonly sdsFile: string };

export interface ListenerPorts {
  readonly https: number;
  readonly http: number;
  readonly pop3: number;
  readonly pop3s: number;
  readonly imap4: number;
  readonly imaps: number;
  readonly smtp: number;
  readonly submission: number;
}

export interface TranslateOptions {
  /** The sidecar's ext_authz/ext_proc gRPC endpoint (HTTP/2). */
  readonly sidecar: SocketAddr;
  /** The sidecar's POP3/IMAP4 proxy: plain-text ports Envoy forwards mail connections to. */
  readonly mailProxy: {
    readonly address: string;
    readonly pop3Port: number;
    readonly imap4Port: number;
    /**
     * Ports for connections whose implicit TLS (995/993) Envoy already terminated, so the proxy
     * knows the session is encrypted and does not offer STLS/STARTTLS again (default: the plain ports).
     */
    readonly pop3TlsPort?: number;
    readonly imap4TlsPort?: number;
    /**
     * Send a PROXY protocol v2 header on every connection to the mail proxy, so it sees the
     * client's address (the proxy's --proxy-protocol listeners; docs/mail-proxy.md). Default false.
     */
    readonly proxyProtocol?: boolean;
  };
  /** Front-door certificate; without it only the HTTP and plain mail listeners are built. */
  readonly tls?: ListenerTls;
  /**
   * Ports Envoy's listeners bind (container ports); any not given take the unprivileged defaults
   * (8443, 8080, 8110, 8995, 8143, 8993, 8025, 8587), so a non-root Envoy can bind every one.
   */
  readonly ports?: Partial<ListenerPorts>;
  /**
   * Ports clients see (a Kubernetes Service's ports in front of the container ports). Every URL
   * the translator builds (the HTTP listener's redirect) uses these. Any not given equal `ports`.
   */
  readonly publicPorts?: Partial<ListenerPorts>;
  /** Build the SMTP (25) and submission (587) listeners (default false: nobody asked for them). */
  readonly smtp?: boolean;
  /**
   * Response headers removed before a response reaches a client (R-SEC-2): Exchange's internal
   * server names. Default INTERNAL_RESPONSE_HEADERS (X-FEServer, X-BEServer, X-CalculatedBETarget,
   * X-DiagInfo, X-TargetBEServer).
   */
  readonly stripResponseHeaders?: readonly string[];
  /**
   * Debugging only: let the sidecar's x-cas-* decision headers reach clients (default false:
   * removed from every response, local replies included).
   */
  readonly exposeDecisionHeaders?: boolean;
  /** Address listeners bind to (default 0.0.0.0). */
  readonly listenAddress?: string;
  /** Active health checks on /<vdir>/healthcheck.htm (default true). */
  readonly healthChecks?: boolean;
  /** ext_authz gRPC timeout in ms (default 1000; Envoy's own default of 200 ms is too tight for directory look-ups). */
  readonly extAuthzTimeoutMs?: number;
  /** Largest request body buffered for ext_authz on EWS/Autodiscover/OWA logon (default 65536). */
  readonly maxRequestBodyBytes?: number;
  /** CA bundle used to validate upstream CAS certificates (R-GEN-3; default /etc/ssl/certs/ca-certificates.crt). */
  readonly upstreamCaFile?: string;
  /**
   * Wire the sidecar's ext_proc service in for the response phase of the OWA/ECP/EWS routes
   * (default false: the sidecar puts the affinity Set-Cookie on ext_authz's OK response).
   */
  readonly extProc?: boolean;
  /** Site whose transport servers take SMTP on 25/587 (default: the first internet-facing site, by name); used with `smtp`. */
  readonly smtpSite?: string;
}

/** Implemented by `translate` in ./translate.ts (re-exported from ./index.ts). */
export type Translate = (topology: Topology, options: TranslateOptions) => EnvoyResources;

export interface BootstrapOptions {
  /** Envoy node id and cluster (the ADS server keys snapshots by node id). */
  readonly nodeId: string;
  readonly nodeCluster: string;
  /** The control plane's ADS gRPC endpoint. */
  readonly xds: SocketAddr;
  /** Admin interface; always on loopback (default 127.0.0.1:9901). */
  readonly adminPort?: number;
  /**
   * A static listener on 0.0.0.0:readyPort answering GET /ready (Envoy's health_check filter, not
   * passed through): 200 while Envoy serves, 503 once /healthcheck/fail or a drain began. Envoy
   * starts listeners only after its first configuration arrived, so it is also the startup signal.
   * The kubelet probes it over HTTP; the admin port stays on loopback.
   */
  readonly readyPort?: number;
  /** Address the readiness listener binds (default 0.0.0.0: a kubelet probes the pod IP; standalone uses loopback). */
  readonly readyAddress?: string;
  /**
   * ADS over mutual TLS: Envoy verifies the operator's certificate against `caFile` and that it
   * names `serverName` (Envoy checks no name unless told), and presents `certFile`/`keyFile`.
   */
  readonly xdsTls?: {
    readonly caFile: string;
    readonly certFile: string;
    readonly keyFile: string;
    readonly serverName: string;
    /** Directory (on Envoy's file system) of the SDS files from xdsClientSdsFiles: certificate and CA then rotate without a restart. */
    readonly sdsDir?: string;
  };
}
