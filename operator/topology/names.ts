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
