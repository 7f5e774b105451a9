// Envoy cluster names, shared by the decision engine (which names the cluster a request goes to)
// and the xDS translator (which creates the clusters). One place, so the two cannot drift.
import type { Service } from "../../crds/index.js";
import type { VersionClass } from "./types.js";

const versionSlug = (v: VersionClass) => (v === "2013+" ? "v2013plus" : `v${v}`);

/** Load-balanced pool of the CAS of one site that serve one version class and one service (R-LB-6, R-GEN-2). */
export function poolClusterName(site: string, versionClass: VersionClass, service: Service): string {
  return `pool/${site}/${versionSlug(versionClass)}/${service.toLowerCase()}`;
}

/** One server's virtual directory: for affinity pins, NLB bypass (R-EWS-4) and single-server targets. */
export function serverClusterName(server: string, service: Service): string {
  return `server/${server}/${service.toLowerCase()}`;
}

/** The sidecar's ext_authz/ext_proc gRPC service. */
export const SIDECAR_CLUSTER = "cas-gateway/sidecar";
/** The sidecar's POP3/IMAP4 proxy. */
export const MAIL_PROXY_CLUSTER = "cas-gateway/mail-proxy";
/** The control plane's ADS service. */
export const XDS_CLUSTER = "cas-gateway/xds";

/**
 * Path rewrites the sidecar can ask for with the `x-cas-rewrite` header; the translator emits one
 * route per rewrite (header match + prefix_rewrite). Prefixes match case-insensitively.
 */
export const PATH_REWRITES = {
  /** R-EAS-2, R-EAS-5: ActiveSync proxied to another CAS goes to its /Proxy sub-directory. */
  "eas-proxy": { prefix: "/Microsoft-Server-ActiveSync", rewrite: "/Microsoft-Server-ActiveSync/Proxy" },
  /** R-EWS-3: Availability for an Exchange 2003 mailbox is free/busy on the 2003 server's /Public. */
  "public-freebusy": { prefix: "/EWS/Exchange.asmx", rewrite: "/public" },
} as const;
export type RewriteName = keyof typeof PATH_REWRITES;

/** Headers of the sidecar → Envoy contract (docs/sidecar-contract.md). Client-sent x-cas-* are stripped. */
export const CAS_HEADERS = {
  decision: "x-cas-decision",
  targetSite: "x-cas-target-site",
  targetServer: "x-cas-target-server",
  cluster: "x-cas-cluster",
  rules: "x-cas-rules",
  rewrite: "x-cas-rewrite",
} as const;

/**
 * ext_authz dynamic metadata key that carries the decision name; Envoy stores it under the
 * ext_authz filter's namespace for denials too, and the HTTP connection manager's
 * local_reply_config maps `redirect-451` to HTTP 451 (docs/eas-451.md).
 */
export const EXT_AUTHZ_FILTER_NAME = "envoy.filters.http.ext_authz";
export const DECISION_METADATA_KEY = "cas_decision";
/**
 * ext_authz dynamic metadata key that carries the version of the configuration (topology version
 * and health generation, GatewayState.version) a decision was made with: access logs can record
 * it, and a check against a reference (bench/soak.bench.ts) knows which configuration to ask.
 */
export const CONFIG_VERSION_METADATA_KEY = "cas_config_version";
