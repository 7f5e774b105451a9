// Envoy bootstrap for a gateway node: everything dynamic over one ADS gRPC stream to the control
// plane (XDS_CLUSTER), admin on loopback only. Checked against the Bootstrap proto's rules.
import { isIP } from "node:net";
import { stringify } from "yaml";
import { z } from "zod";
import { XDS_CLUSTER } from "../../../model/topology/names.js";
import { adsConfigSource } from "./clusters.js";
import { sharedCodec } from "./translate.js";
import type { BootstrapOptions } from "./types.js";
import { XDS_CA_SDS_SECRET, XDS_CLIENT_SDS_SECRET } from "./sds-file.js";

/** File names of the xDS client SDS files in BootstrapOptions.xdsTls.sdsDir. */
export const XDS_CLIENT_SDS_FILE = "xds-client-sds.yaml";
export const XDS_CA_SDS_FILE = "xds-ca-sds.yaml";

export interface Bootstrap {
  /** proto3 JSON form (snake_case, as Envoy's YAML). */
  readonly value: Record<string, unknown>;
  readonly json: string;
  readonly yaml: string;
}

export class BootstrapError extends Error {}

const BootstrapOptionsSchema = z.object({
  nodeId: z.string().min(1, "node id is required (the ADS server keys snapshots by it)"),
  nodeCluster: z.string().min(1, "node cluster is required"),
  xds: z.object({ address: z.string().min(1).regex(/^[^\s/]+$/), port: z.number().int().min(1).max(65535) }),
  adminPort: z.number().int().min(1).max(65535).optional(),
  readyPort: z.number().int().min(1).max(65535).optional(),
  readyAddress: z.string().min(1).regex(/^[^\s/]+$/).optional(),
  xdsTls: z
    .object({
      caFile: z.string().min(1),
      certFile: z.string().min(1),
      keyFile: z.string().min(1),
      serverName: z.string().min(1).max(253),
      sdsDir: z.string().regex(/^\/\S*$/).optional(),
    })
    .optional(),
});

/**
 * The xDS cluster's TLS: Envoy verifies the operator's certificate chain against the CA and its
 * subject alternative names against the Service name, and presents the gateway's client certificate.
 * The files come from a mounted Secret.
 */
function xdsTransportSocket(t: { caFile: string; certFile: string; keyFile: string; serverName: string; sdsDir?: string | undefined }): Record<string, unknown> {
  const san = [{ san_type: "DNS", matcher: { exact: t.serverName } }];
  // With sdsDir: the certificate and CA come from the SDS files there (xdsClientSdsFiles), which
  // Envoy watches: a renewed xDS Secret is used for the next connection without a restart.
  const fileSds = (name: string, file: string) => ({
    name,
    sds_config: { path_config_source: { path: `${t.sdsDir}/${file}`, watched_directory: { path: t.sdsDir } }, resource_api_version: "V3" },
  });
  const common = t.sdsDir
    ? {
        alpn_protocols: ["h2"],
        tls_certificate_sds_secret_configs: [fileSds(XDS_CLIENT_SDS_SECRET, XDS_CLIENT_SDS_FILE)],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: san },
          validation_context_sds_secret_config: fileSds(XDS_CA_SDS_SECRET, XDS_CA_SDS_FILE),
        },
      }
    : {
        alpn_protocols: ["h2"],
        tls_certificates: [{ certificate_chain: { filename: t.certFile }, private_key: { filename: t.keyFile } }],
        validation_context: { trusted_ca: { filename: t.caFile }, match_typed_subject_alt_names: san },
      };
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      sni: t.serverName,
      common_tls_context: common,
    },
  };
}

/** The name of the bootstrap's static readiness listener. */
export const READY_LISTENER = "cas-gateway/ready";

function readyListener(port: number, address: string): Record<string, unknown> {
  return {
    name: READY_LISTENER,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stat_prefix: "ready",
              route_config: {
                name: READY_LISTENER,
                virtual_hosts: [{ name: "ready", domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 404 } }] }],
              },
              http_filters: [
                {
                  name: "envoy.filters.http.health_check",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
                    pass_through_mode: false,
                    headers: [{ name: ":path", string_match: { exact: "/ready" } }],
                  },
                },
                { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
              ],
            },
          },
        ],
      },
    ],
  };
}

export function bootstrap(input: BootstrapOptions): Bootstrap {
  const parsed = BootstrapOptionsSchema.safeParse(input);
  if (!parsed.success) throw new BootstrapError(`bad bootstrap options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const options = parsed.data;
  const { xds } = options;
  const value = {
    node: { id: options.nodeId, cluster: options.nodeCluster },
    dynamic_resources: {
      ads_config: {
        api_type: "GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      cds_config: adsConfigSource(),
      lds_config: adsConfigSource(),
    },
    static_resources: {
      ...(options.readyPort !== undefined ? { listeners: [readyListener(options.readyPort, options.readyAddress ?? "0.0.0.0")] } : {}),
      clusters: [
        {
          name: XDS_CLUSTER,
          connect_timeout: "1s",
          type: isIP(xds.address) ? "STATIC" : "STRICT_DNS",
          // gRPC needs HTTP/2; PING keep-alives find a dead control plane (or a connection a NAT or
          // conntrack table dropped silently) in seconds, with TCP keep-alives underneath.
          typed_extension_protocol_options: {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
              "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
              explicit_http_config: { http2_protocol_options: { connection_keepalive: { interval: "30s", timeout: "5s" } } },
            },
          },
          upstream_connection_options: { tcp_keepalive: { keepalive_time: 60, keepalive_interval: 10, keepalive_probes: 3 } },
          ...(options.xdsTls ? { transport_socket: xdsTransportSocket(options.xdsTls) } : {}),
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: xds.address, port_value: xds.port } } } }] }],
          },
        },
      ],
    },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: options.adminPort ?? 9901 } } },
  };
  const { violations } = sharedCodec().encode("envoy.config.bootstrap.v3.Bootstrap", value);
  if (violations.length) throw new BootstrapError(`bootstrap fails Envoy's validation: ${violations.map((v) => `${v.path}: ${v.message}`).join("; ")}`);
  return { value, json: `${JSON.stringify(value, null, 2)}\n`, yaml: stringify(value) };
}
