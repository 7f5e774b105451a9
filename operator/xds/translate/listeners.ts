// Listeners and route configurations: HTTPS (SNI filter chain per site) with the CAS filter
// chain, HTTP → HTTPS redirect, POP3/IMAP4 (plain and implicit TLS) to the sidecar's mail proxy,
// SMTP to the front-door site's transport pool.
import {
  CAS_HEADERS,
  DECISION_METADATA_KEY,
  EXT_AUTHZ_FILTER_NAME,
  PATH_REWRITES,
  SIDECAR_CLUSTER,
} from "../../../model/topology/names.js";
import type { Topology } from "../../../model/topology/types.js";
import { adsConfigSource, mailProxyClusterName, smtpClusterName, smtpSite, type Built, type Obj, type Source } from "./clusters.js";
import type { ResolvedOptions } from "./options.js";
import { MAIL_IDLE_TIMEOUT_S, OWA_FBA_LOGON_PATHS, SERVICE_ROUTES, SMTP_IDLE_TIMEOUT_S, dur, serviceForPath, type ServiceRoute } from "./services.js";
import { TYPE_URLS } from "./types.js";
import { FRONT_DOOR_SDS_SECRET } from "./sds-file.js";

/** ext_authz decision value the sidecar puts in dynamic metadata for an ActiveSync 451 (R-EAS-4). */
export const EAS_451_DECISION = "redirect-451";
export const HTTPS_ROUTE_CONFIG = "https";
export const HTTP_ROUTE_CONFIG = "http";
export const EXT_PROC_FILTER_NAME = "envoy.filters.http.ext_proc";
export const HEADER_MUTATION_FILTER_NAME = "envoy.filters.http.header_mutation";

const T = {
  hcm: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  tcpProxy: "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
  extAuthz: "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
  extAuthzPerRoute: "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
  extProc: "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
  extProcPerRoute: "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
  headerMutation: "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
  router: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
  tlsInspector: "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
  downstreamTls: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
} as const;

const OPTIONS_SOURCE: Source = { kind: "GatewayOptions", name: "listeners" };

// ---------------------------------------------------------------------------------------------
// Routes

interface RouteFlavour {
  readonly body: boolean;
  readonly responsePhase: boolean;
  readonly service: string;
}

function perFilterConfig(f: RouteFlavour, opts: ResolvedOptions, site: string | undefined): Obj {
  const cfg: Obj = {
    [EXT_AUTHZ_FILTER_NAME]: {
      "@type": T.extAuthzPerRoute,
      check_settings: {
        // cas_site: the receiving site chosen by SNI (docs/sidecar-contract.md; the Host header
        // still wins when it names a site); service: which service the route is for.
        context_extensions: { ...(site ? { cas_site: site } : {}), service: f.service },
        ...(f.body ? {} : { disable_request_body_buffering: true }),
      },
    },
  };
  if (opts.extProc && !f.responsePhase) cfg[EXT_PROC_FILTER_NAME] = { "@type": T.extProcPerRoute, disabled: true };
  return cfg;
}

function routeAction(r: ServiceRoute, extra: Obj = {}): Obj {
  return {
    // The sidecar names the upstream cluster (model/topology/names.ts) in x-cas-cluster.
    cluster_header: CAS_HEADERS.cluster,
    cluster_not_found_response_code: "SERVICE_UNAVAILABLE",
    timeout: dur(r.timeoutS),
    idle_timeout: dur(r.idleS),
    ...(r.websocket ? { upgrade_configs: [{ upgrade_type: "websocket", enabled: true }] } : {}),
    ...extra,
  };
}

const segmentPrefix = (prefix: string) => ({ path_separated_prefix: prefix, case_sensitive: false });

/** RDS name of the HTTPS route configuration for a site's SNI filter chain, or the default one. */
export const httpsRouteConfigName = (site?: string) => (site ? `${HTTPS_ROUTE_CONFIG}/${site}` : HTTPS_ROUTE_CONFIG);

function httpsRouteConfig(opts: ResolvedOptions, site: string | undefined): Built {
  const routes: Obj[] = [];
  // One route per named rewrite: chosen after ext_authz (clear_route_cache) once the sidecar set
  // x-cas-rewrite. The client's own x-cas-* headers are removed before ext_authz, and these routes
  // carry the same per-filter settings as their service's route, so a forged header changes nothing.
  for (const [name, rw] of Object.entries(PATH_REWRITES)) {
    const svc = serviceForPath(rw.prefix);
    if (!svc) continue;
    routes.push({
      name: `rewrite/${name}`,
      match: {
        ...segmentPrefix(rw.prefix),
        headers: [{ name: CAS_HEADERS.rewrite, string_match: { exact: name } }],
      },
      route: routeAction(svc, { prefix_rewrite: rw.rewrite }),
      typed_per_filter_config: perFilterConfig({ ...svc, service: svc.service }, opts, site),
    });
  }
  const owa = SERVICE_ROUTES.find((r) => r.service === "Owa")!;
  for (const p of OWA_FBA_LOGON_PATHS) {
    routes.push({
      name: `owa-logon${p}`,
      match: { path: p, case_sensitive: false },
      route: routeAction(owa),
      typed_per_filter_config: perFilterConfig({ body: true, responsePhase: true, service: "Owa" }, opts, site),
    });
  }
  for (const r of SERVICE_ROUTES) {
    for (const prefix of r.prefixes) {
      routes.push({
        name: `${r.service.toLowerCase()}${prefix.toLowerCase()}`,
        match: segmentPrefix(prefix),
        route: routeAction(r),
        typed_per_filter_config: perFilterConfig(r, opts, site),
      });
    }
  }
  // "/" goes to OWA, as on an Exchange CAS; anything else is not Exchange: 404, without a decision.
  const noDecision = {
    [EXT_AUTHZ_FILTER_NAME]: { "@type": T.extAuthzPerRoute, disabled: true },
    ...(opts.extProc ? { [EXT_PROC_FILTER_NAME]: { "@type": T.extProcPerRoute, disabled: true } } : {}),
  };
  routes.push({ name: "root", match: { path: "/" }, redirect: { path_redirect: "/owa/", response_code: "FOUND" }, typed_per_filter_config: noDecision });
  routes.push({
    name: "not-exchange",
    match: { prefix: "/" },
    direct_response: { status: 404, body: { inline_string: "Not found\n" } },
    typed_per_filter_config: noDecision,
  });
  const name = httpsRouteConfigName(site);
  return {
    typeUrl: TYPE_URLS.route,
    name,
    value: {
      name,
      // One virtual host: the sidecar decides from Host (and cas_site), routes only pick the cluster.
      virtual_hosts: [{ name: "cas", domains: ["*"], routes }],
      validate_clusters: false,
    },
    sources: site ? [{ kind: "ADSite", name: site }] : [OPTIONS_SOURCE],
  };
}

function httpRouteConfig(opts: ResolvedOptions): Built {
  return {
    typeUrl: TYPE_URLS.route,
    name: HTTP_ROUTE_CONFIG,
    value: {
      name: HTTP_ROUTE_CONFIG,
      virtual_hosts: [
        {
          name: "redirect-to-https",
          domains: ["*"],
          routes: [
            {
              name: "https",
              match: { prefix: "/" },
              // The port clients reach HTTPS on (a Service's 443 in front of container port 8443), not the bound one.
              redirect: { https_redirect: true, ...(opts.publicPorts.https !== 443 ? { port_redirect: opts.publicPorts.https } : {}), response_code: "MOVED_PERMANENTLY" },
            },
          ],
        },
      ],
    },
    sources: [OPTIONS_SOURCE],
  };
}

/** Sites that get their own SNI filter chain (and route configuration): those with host names. */
export const sniSites = (topology: Topology) => [...topology.sites.values()].filter((s) => s.hostnames.length > 0);

export function routeConfigs(topology: Topology, opts: ResolvedOptions): Built[] {
  const out = [httpsRouteConfig(opts, undefined), httpRouteConfig(opts)];
  if (opts.tls) for (const s of sniSites(topology)) out.push(httpsRouteConfig(opts, s.name));
  return out;
}

// ---------------------------------------------------------------------------------------------
// HTTP connection managers

/** Response headers the CAS connection manager removes: internal server names, and x-cas-* unless debugging. */
export function responseHeadersToRemove(opts: ResolvedOptions): string[] {
  return [...opts.stripResponseHeaders, ...(opts.exposeDecisionHeaders ? [] : Object.values(CAS_HEADERS))];
}

function casHttpFilters(opts: ResolvedOptions): Obj[] {
  const filters: Obj[] = [
    {
      // Client-sent x-cas-* headers are removed before ext_authz sees the request. Envoy has no
      // prefix removal, so the fixed contract list (CAS_HEADERS) is removed; the sidecar also
      // lists them in headers_to_remove. Route-level request_headers_to_remove would be wrong:
      // it runs at forwarding time and would drop the sidecar's own x-cas-* headers too.
      name: HEADER_MUTATION_FILTER_NAME,
      typed_config: {
        "@type": T.headerMutation,
        mutations: {
          request_mutations: Object.values(CAS_HEADERS).map((h) => ({ remove: h })),
          // R-SEC-2: nothing internal reaches a client. This filter is first in the chain, so its
          // response phase runs last: after ext_proc and after ext_authz's own denied responses
          // (local replies run the whole encoder chain; the 451 mapper keys on dynamic metadata,
          // not on these headers, and has already run by then).
          response_mutations: responseHeadersToRemove(opts).map((h) => ({ remove: h })),
        },
      },
    },
    {
      name: EXT_AUTHZ_FILTER_NAME,
      typed_config: {
        "@type": T.extAuthz,
        grpc_service: { envoy_grpc: { cluster_name: SIDECAR_CLUSTER }, timeout: dur(opts.extAuthzTimeoutMs / 1000) },
        transport_api_version: "V3",
        // No decision, no request: a sidecar outage is a 503, never an unchecked pass.
        failure_mode_allow: false,
        status_on_error: { code: "ServiceUnavailable" },
        // Bodies are buffered only where a route allows it (EWS, Autodiscover, OWA logon).
        with_request_body: { max_request_bytes: opts.maxRequestBodyBytes, allow_partial_message: true },
        // The sidecar's x-cas-cluster / x-cas-rewrite select the route after the check.
        clear_route_cache: true,
      },
    },
  ];
  if (opts.extProc) {
    filters.push({
      name: EXT_PROC_FILTER_NAME,
      typed_config: {
        "@type": T.extProc,
        grpc_service: { envoy_grpc: { cluster_name: SIDECAR_CLUSTER }, timeout: dur(opts.extAuthzTimeoutMs / 1000) },
        // Response phase only (affinity cookies, R-LB-2); a failure leaves the response as it is.
        failure_mode_allow: true,
        processing_mode: {
          request_header_mode: "SKIP",
          response_header_mode: "SEND",
          request_body_mode: "NONE",
          response_body_mode: "NONE",
          request_trailer_mode: "SKIP",
          response_trailer_mode: "SKIP",
        },
        message_timeout: dur(opts.extAuthzTimeoutMs / 1000),
        // The decision ext_authz recorded is what the response phase acts on.
        metadata_options: { forwarding_namespaces: { untyped: [EXT_AUTHZ_FILTER_NAME] } },
      },
    });
  }
  filters.push({ name: "envoy.filters.http.router", typed_config: { "@type": T.router } });
  return filters;
}

function hcm(statPrefix: string, routeConfig: string, filters: Obj[], opts: ResolvedOptions, cas: boolean): Obj {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": T.hcm,
      stat_prefix: statPrefix,
      codec_type: "AUTO",
      rds: { config_source: adsConfigSource(), route_config_name: routeConfig },
      http_filters: filters,
      use_remote_address: true,
      normalize_path: true,
      merge_slashes: true,
      // Kerberos/Negotiate tokens make large headers.
      max_request_headers_kb: 96,
      // Routes override this with their own idle timeouts (EAS/EWS long-polls).
      stream_idle_timeout: dur(300),
      request_headers_timeout: dur(30),
      common_http_protocol_options: { idle_timeout: dur(3600), headers_with_underscores_action: "ALLOW" },
      server_header_transformation: "PASS_THROUGH",
      ...(cas
        ? {
            // Outlook Anywhere (R-OUT-2): RPC_IN_DATA / RPC_OUT_DATA are not in the HTTP/1 codec's
            // built-in method list. Envoy's BalsaParser (the default HTTP/1 parser of the pinned
            // release) accepts any RFC 9110 token as a method when this is set; without it, a
            // 400 (HPE_INVALID_METHOD). HTTP/2 has no method list. Upstream, Envoy writes the
            // method as it is (the client codec parses responses only), so no upstream setting.
            http_protocol_options: { allow_custom_methods: true },
            // WebSocket is allowed only where a route enables it.
            upgrade_configs: [{ upgrade_type: "websocket", enabled: false }],
            local_reply_config: {
              mappers: [
                {
                  // R-EAS-4: the sidecar denies with the decision "redirect-451" in ext_authz dynamic
                  // metadata and the X-MS-Location header; Envoy's HttpStatus enum has no 451, and a
                  // mapper's header_filter only sees request headers, so the mapper keys on metadata.
                  filter: {
                    metadata_filter: {
                      matcher: {
                        filter: EXT_AUTHZ_FILTER_NAME,
                        path: [{ key: DECISION_METADATA_KEY }],
                        value: { string_match: { exact: EAS_451_DECISION } },
                      },
                      match_if_key_not_found: false,
                    },
                  },
                  status_code: 451,
                },
              ],
            },
          }
        : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Listeners

/**
 * File-based SDS for the front-door certificate. The SDS file lives in a mounted ConfigMap, itself
 * swapped by the kubelet as a symlink: Envoy watches that file's directory for moves
 * (path_config_source.watched_directory). The certificate files it names are watched through the
 * Secret's directory (TlsCertificate.watched_directory in the file, frontDoorSdsFile).
 */
function fileSdsSecretConfig(sdsFile: string): Obj {
  return {
    name: FRONT_DOOR_SDS_SECRET,
    sds_config: {
      path_config_source: { path: sdsFile, watched_directory: { path: sdsFile.slice(0, sdsFile.lastIndexOf("/")) || "/" } },
      resource_api_version: "V3",
    },
  };
}

function downstreamTls(opts: ResolvedOptions, alpn: readonly string[]): Obj | undefined {
  const tls = opts.tls;
  if (!tls) return undefined;
  const common: Obj = {
    tls_params: { tls_minimum_protocol_version: "TLSv1_2" },
    ...(alpn.length ? { alpn_protocols: alpn } : {}),
    ...("sdsSecret" in tls
      ? { tls_certificate_sds_secret_configs: [{ name: tls.sdsSecret, sds_config: adsConfigSource() }] }
      : "sdsFile" in tls
        ? { tls_certificate_sds_secret_configs: [fileSdsSecretConfig(tls.sdsFile)] }
        : { tls_certificates: [{ certificate_chain: { filename: tls.certFile }, private_key: { filename: tls.keyFile } }] }),
  };
  return { name: "envoy.transport_sockets.tls", typed_config: { "@type": T.downstreamTls, common_tls_context: common } };
}

const address = (opts: ResolvedOptions, port: number) => ({ socket_address: { address: opts.listenAddress, port_value: port } });

function listener(name: string, opts: ResolvedOptions, port: number, body: Obj, sources: readonly Source[]): Built {
  return {
    typeUrl: TYPE_URLS.listener,
    name,
    value: { name, address: address(opts, port), per_connection_buffer_limit_bytes: 1048576, ...body },
    sources,
  };
}

function tcpProxy(stat: string, cluster: string, idleS: number): Obj {
  return {
    name: "envoy.filters.network.tcp_proxy",
    typed_config: { "@type": T.tcpProxy, stat_prefix: stat, cluster, idle_timeout: dur(idleS) },
  };
}

export function listeners(topology: Topology, opts: ResolvedOptions): Built[] {
  const out: Built[] = [];
  const p = opts.ports;
  const tlsHttp = downstreamTls(opts, ["h2", "http/1.1"]);
  if (tlsHttp) {
    const filters = casHttpFilters(opts);
    const sites = sniSites(topology);
    out.push(
      listener(
        "https",
        opts,
        p.https,
        {
          listener_filters: [{ name: "envoy.filters.listener.tls_inspector", typed_config: { "@type": T.tlsInspector } }],
          // One chain per site, matched on SNI: per-site statistics (https.<site>.*) and a place
          // for per-site certificates; clients without SNI or with another name take the default chain.
          filter_chains: sites.map((s) => ({
            name: `site/${s.name}`,
            filter_chain_match: { server_names: [...s.hostnames] },
            filters: [hcm(`https_${s.name}`, httpsRouteConfigName(s.name), filters, opts, true)],
            transport_socket: tlsHttp,
          })),
          default_filter_chain: {
            name: "default",
            filters: [hcm("https_default", HTTPS_ROUTE_CONFIG, filters, opts, true)],
            transport_socket: tlsHttp,
          },
        },
        [OPTIONS_SOURCE, ...sites.map((s): Source => ({ kind: "ADSite", name: s.name }))],
      ),
    );
  }
  out.push(
    listener(
      "http",
      opts,
      p.http,
      {
        filter_chains: [
          { filters: [hcm("http", HTTP_ROUTE_CONFIG, [{ name: "envoy.filters.http.router", typed_config: { "@type": T.router } }], opts, false)] },
        ],
      },
      [OPTIONS_SOURCE],
    ),
  );
  // POP3/IMAP4: STARTTLS/STLS on the plain ports is the mail proxy's business; 995/993 are
  // implicit TLS, terminated here. Idle timeouts outlast IMAP IDLE (re-issued every ~29 min).
  const mail: Array<[string, number, "pop3" | "imap4"]> = [
    ["pop3", p.pop3, "pop3"],
    ["imap4", p.imap4, "imap4"],
  ];
  for (const [name, port, proto] of mail) {
    out.push(listener(name, opts, port, { filter_chains: [{ filters: [tcpProxy(name, mailProxyClusterName(proto, false), MAIL_IDLE_TIMEOUT_S)] }] }, [OPTIONS_SOURCE]));
  }
  const tlsMail = downstreamTls(opts, []);
  if (tlsMail) {
    const secure: Array<[string, number, "pop3" | "imap4"]> = [
      ["pop3s", p.pop3s, "pop3"],
      ["imaps", p.imaps, "imap4"],
    ];
    for (const [name, port, proto] of secure) {
      out.push(
        listener(
          name,
          opts,
          port,
          { filter_chains: [{ filters: [tcpProxy(name, mailProxyClusterName(proto, true), MAIL_IDLE_TIMEOUT_S)], transport_socket: tlsMail }] },
          [OPTIONS_SOURCE],
        ),
      );
    }
  }
  // SMTP and submission only when asked for (--smtp): no listener for a protocol nobody uses.
  const smtp = opts.smtp ? smtpSite(topology, opts) : undefined;
  if (smtp) {
    for (const [name, port, upstreamPort] of [
      ["smtp", p.smtp, 25],
      ["submission", p.submission, 587],
    ] as const) {
      out.push(
        listener(name, opts, port, { filter_chains: [{ filters: [tcpProxy(name, smtpClusterName(smtp, upstreamPort), SMTP_IDLE_TIMEOUT_S)] }] }, [
          OPTIONS_SOURCE,
          { kind: "ADSite", name: smtp },
        ]),
      );
    }
  }
  return out;
}
