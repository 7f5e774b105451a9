// Clusters and endpoints: one pool per site, version class and service (R-LB-6, R-GEN-2), one
// cluster per server and service (pins, NLB bypass R-EWS-4, single-server targets), the sidecar
// (gRPC), the mail proxy, and the SMTP pool of the front-door site (R-2013-4).
//
// EDS design: Envoy resolves no names for EDS endpoints (an EDS address must be an IP literal;
// envoyproxy/envoy#4290), and Exchange servers are normally known by FQDN. So a cluster whose
// endpoints are all IP literals is an EDS cluster fed over ADS (membership, drain and health
// status change without re-warming the cluster), and a cluster with any host name is STRICT_DNS
// with the same ClusterLoadAssignment inline, so Envoy resolves and follows DNS itself.
import { isIP } from "node:net";
import type { Kind, Service } from "../../../crds/index.js";
import { MAIL_PROXY_CLUSTER, SIDECAR_CLUSTER, poolClusterName, serverClusterName } from "../../../model/topology/names.js";
import type { ServerInfo, Topology, VersionClass, VirtualDirectoryInfo } from "../../../model/topology/types.js";
import { TYPE_URLS } from "./types.js";
import { dur } from "./services.js";
import type { ResolvedOptions } from "./options.js";

export type Obj = Record<string, unknown>;
export interface Source {
  readonly kind: Kind | "GatewayOptions";
  readonly name: string;
}
export interface Built {
  readonly typeUrl: string;
  readonly name: string;
  /** The resource in proto3 JSON form, or a function that builds it (again) on demand. */
  readonly value: Obj | (() => Obj);
  readonly sources: readonly Source[];
  /** For clusters: the name of their EDS ClusterLoadAssignment, when they have one. */
  readonly eds?: string;
}

const T = {
  upstreamTls: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
  rawBuffer: "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
  httpOptions: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
} as const;
const HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const TS_MATCH_KEY = "envoy.transport_socket_match";

/**
 * Fan-in sizing (R-2013-3): limits are per cluster and shared by all Envoy workers. Every
 * long-poll (EAS Ping, EWS streaming, MAPI NotificationWait) holds one upstream HTTP/1.1
 * connection for up to ~30 minutes, so concurrent connections ≈ concurrent long-polling clients;
 * 100,000 per cluster leaves room for tens of thousands of devices per site, far above
 * Exchange 2010's `maxconnections` 2000. Retries stay low: a proxied request that fails is an
 * error to the client, never a silent retry elsewhere (R-EAS-6).
 */
export const CIRCUIT_BREAKERS = deepFreeze({
  thresholds: [
    // Routes use the default priority only, so no HIGH thresholds are sent.
    { priority: "DEFAULT", max_connections: 100000, max_pending_requests: 100000, max_requests: 100000, max_retries: 3 },
  ],
});

const ADS = Object.freeze({ ads: Object.freeze({}), resource_api_version: "V3" });
/** ADS config source; one shared object, so the codec converts it once. */
export const adsConfigSource = () => ADS;
const EDS_CONFIG = Object.freeze({ eds_config: ADS });
const NO_PANIC = Object.freeze({ healthy_panic_threshold: Object.freeze({ value: 0 }) });
const OUTLIER = Object.freeze({ consecutive_5xx: 0, enforcing_consecutive_5xx: 0, consecutive_gateway_failure: 5, enforcing_consecutive_gateway_failure: 100 });
const KEEPALIVE = Object.freeze({ tcp_keepalive: Object.freeze({ keepalive_time: 300 }) });

/** Per-translation cache of built sub-objects: equal inputs share one object (see ProtoCodec's memo). */
export class Memo {
  private readonly m = new Map<string, unknown>();
  get size(): number {
    return this.m.size;
  }
  get<T>(key: string, make: () => T): T {
    let v = this.m.get(key) as T | undefined;
    if (v === undefined) this.m.set(key, (v = deepFreeze(make())));
    return v;
  }
  private readonly owned = new WeakMap<object, Map<string, unknown>>();
  /**
   * Like get, for what is built from one object alone (an Upstream): keyed by its identity and a
   * constant name, so no key string is built and hashed per call (10,000s per translation).
   */
  of<T>(owner: object, name: string, make: () => T): T {
    let m = this.owned.get(owner);
    if (!m) this.owned.set(owner, (m = new Map()));
    let v = m.get(name) as T | undefined;
    if (v === undefined) m.set(name, (v = deepFreeze(make())));
    return v;
  }
}

/** Frozen values are what the codec memoises (shared, never changed after building). */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

const IP_KIND = new Map<string, number>();
/** node:net isIP, remembered (it runs regular expressions; addresses repeat across clusters). */
export function ipKind(host: string): number {
  let k = IP_KIND.get(host);
  if (k === undefined) {
    if (IP_KIND.size > 100000) IP_KIND.clear();
    IP_KIND.set(host, (k = isIP(host)));
  }
  return k;
}

/** Split ServerInfo.address ("host", "host:port", "[v6]:port") into host and optional port. */
export function splitAddress(address: string): { host: string; port?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  if (v6) return { host: v6[1], ...(v6[2] ? { port: Number(v6[2]) } : {}) };
  if (isIP(address) === 6) return { host: address };
  const i = address.lastIndexOf(":");
  if (i > 0 && /^\d+$/.test(address.slice(i + 1))) return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
  return { host: address };
}

interface Upstream {
  readonly server: ServerInfo;
  readonly host: string;
  readonly port: number;
  /** TLS to this endpoint (https vdir URL, or implicit-TLS mail endpoint). */
  readonly tls: boolean;
  /** Names the certificate must carry (server FQDN and the vdir URL host). */
  readonly names: readonly string[];
}

function httpUpstream(server: ServerInfo, vdir: VirtualDirectoryInfo, addr: { host: string; port?: number }): Upstream | undefined {
  if (!vdir.internalUrl) return undefined;
  const url = parseUrl(vdir.internalUrl);
  const https = url.protocol === "https:";
  const port = addr.port ?? (url.port ? Number(url.port) : https ? 443 : 80);
  const names = url.hostLower === server.fqdn ? [server.fqdn] : [server.fqdn, url.hostLower];
  return { server, host: addr.host, port, tls: https, names };
}

// URL parsing is slow next to the rest of a cluster's building: parse each distinct URL once.
const URLS = new Map<string, { protocol: string; hostname: string; hostLower: string; port: string; first: string | undefined }>();
function parseUrl(s: string) {
  let u = URLS.get(s);
  if (!u) {
    const p = new URL(s);
    if (URLS.size > 100000) URLS.clear();
    URLS.set(s, (u = { protocol: p.protocol, hostname: p.hostname, hostLower: p.hostname.toLowerCase(), port: p.port, first: p.pathname.split("/").filter(Boolean)[0] }));
  }
  return u;
}
const firstSegment = (vdir: VirtualDirectoryInfo) => (vdir.internalUrl ? parseUrl(vdir.internalUrl).first : undefined);

/** Managed Availability answers /<vdir>/healthcheck.htm on 2013+; older servers get the vdir itself. */
export function healthCheckPath(vdir: VirtualDirectoryInfo): string {
  return `/${firstSegment(vdir) ?? vdir.service.toLowerCase()}/healthcheck.htm`;
}

function httpHealthCheck(server: ServerInfo, vdir: VirtualDirectoryInfo): Obj {
  const modern = server.version >= 2013;
  const first = firstSegment(vdir);
  return {
    timeout: dur(5),
    interval: dur(10),
    interval_jitter: dur(1),
    unhealthy_threshold: 3,
    healthy_threshold: 2,
    no_traffic_interval: dur(30),
    http_health_check: modern
      ? { path: healthCheckPath(vdir) }
      : // Before 2013 there is no healthcheck.htm: the vdir answering at all (even 401/403) means IIS and the app pool are up.
        { path: `/${first ?? vdir.service.toLowerCase()}/`, expected_statuses: [{ start: 200, end: 500 }] },
  };
}

const GREETINGS: Partial<Record<Service, string>> = {
  Pop3: Buffer.from("+OK").toString("hex"),
  Imap4: Buffer.from("* OK").toString("hex"),
};

function tcpHealthCheck(expectHex: string | undefined): Obj {
  return {
    timeout: dur(5),
    interval: dur(10),
    interval_jitter: dur(1),
    unhealthy_threshold: 3,
    healthy_threshold: 2,
    no_traffic_interval: dur(30),
    tcp_health_check: expectHex ? { receive: [{ text: expectHex }] } : {},
  };
}

function upstreamTlsSocket(u: Upstream, opts: ResolvedOptions, memo?: Memo): Obj {
  if (memo) return memo.of(u, "tls", () => upstreamTlsSocket(u, opts));
  const common: Obj = { alpn_protocols: ["http/1.1"] };
  if (!u.server.insecureSkipVerify) {
    // R-GEN-3: validate name and trust; Exchange itself does not, cas-gateway does unless opted out.
    common.validation_context = {
      // The server's own CA bundle (spec.tls.caBundle, inline), else the gateway's file.
      trusted_ca: u.server.caBundle !== undefined ? { inline_string: u.server.caBundle } : { filename: opts.upstreamCaFile },
      match_typed_subject_alt_names: u.names.map((n) => ({ san_type: "DNS", matcher: { exact: n } })),
    };
  }
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: { "@type": T.upstreamTls, sni: u.server.fqdn, common_tls_context: common },
  };
}
const RAW_SOCKET = Object.freeze({ name: "envoy.transport_sockets.raw_buffer", typed_config: Object.freeze({ "@type": T.rawBuffer }) });
const rawSocket = () => RAW_SOCKET;

const HTTP_OPTIONS = new Map<boolean, Obj>();
function httpProtocolOptions(http2: boolean): Obj {
  let o = HTTP_OPTIONS.get(http2);
  if (!o) HTTP_OPTIONS.set(http2, (o = deepFreeze(buildHttpProtocolOptions(http2))));
  return o;
}
function buildHttpProtocolOptions(http2: boolean): Obj {
  return {
    [HTTP_OPTIONS_KEY]: {
      "@type": T.httpOptions,
      // Pooled, reused upstream connections (R-2013-3); closed after a minute unused.
      common_http_protocol_options: { idle_timeout: dur(60) },
      explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
    },
  };
}

/** Connection-oriented Windows auth: NTLM authenticates the TCP connection, not the request. */
const CONNECTION_AUTH = new Set(["Ntlm", "Negotiate", "WindowsIntegrated"]);
const vdirNeedsConnectionAffinity = (v: VirtualDirectoryInfo) => {
  for (const m of v.internalAuthenticationMethods) if (CONNECTION_AUTH.has(m)) return true;
  return false;
};
const needsConnectionAffinity = (vdirs: readonly VirtualDirectoryInfo[]) => vdirs.some(vdirNeedsConnectionAffinity);

function lbEndpoint(u: Upstream, withMatch: boolean): Obj {
  const ep: Obj = {
    endpoint: {
      address: { socket_address: { address: u.host, port_value: u.port } },
      hostname: u.server.fqdn,
      health_check_config: { hostname: u.server.fqdn },
    },
  };
  // A server in maintenance takes no new sessions (drained), but stays known to Envoy.
  if (u.server.maintenance) ep.health_status = "DRAINING";
  if (withMatch) ep.metadata = { filter_metadata: { [TS_MATCH_KEY]: { server: u.server.name } } };
  return ep;
}

const byServerThenPort = (a: Upstream, b: Upstream) => (a.server.name < b.server.name ? -1 : a.server.name > b.server.name ? 1 : a.port - b.port);

interface ClusterSpec {
  readonly name: string;
  readonly upstreams: readonly Upstream[];
  readonly healthCheck: Obj | undefined;
  readonly http: boolean;
  readonly connectionAffinity: boolean;
  readonly lbPolicy: "ROUND_ROBIN" | "LEAST_REQUEST";
  readonly sources: readonly Source[];
}

/** A cluster and, for IP-only endpoints, its EDS ClusterLoadAssignment. */
function upstreamCluster(spec: ClusterSpec, opts: ResolvedOptions, memo: Memo): Built[] {
  let eds = true;
  for (const u of spec.upstreams) if (ipKind(u.host) === 0) eds = false;
  // Built on demand: the JSON form is encoded and dropped at once (short-lived objects are cheap
  // to collect), and rebuilt, identically, only if someone reads `value` (render, golden files).
  const clusterValue = () => clusterObjects(spec, opts, memo).cluster;
  const out: Built[] = [{ typeUrl: TYPE_URLS.cluster, name: spec.name, value: clusterValue, sources: spec.sources, ...(eds ? { eds: spec.name } : {}) }];
  if (eds) out.push({ typeUrl: TYPE_URLS.endpoint, name: spec.name, value: () => clusterObjects(spec, opts, memo).cla, sources: spec.sources });
  return out;
}

function clusterObjects(spec: ClusterSpec, opts: ResolvedOptions, memo: Memo): { cluster: Obj; cla: Obj } {
  const ups = spec.upstreams.length > 1 ? [...spec.upstreams].sort(byServerThenPort) : spec.upstreams;
  const multi = ups.length > 1;
  const cla = {
    cluster_name: spec.name,
    // Built once per upstream (shared by a server's clusters, see serverPieces) and frozen.
    endpoints: [{ lb_endpoints: ups.map((u) => memo.of(u, multi ? "endpoint-in-pool" : "endpoint", () => lbEndpoint(u, multi))) }],
  };
  let eds = true;
  for (const u of ups) if (ipKind(u.host) === 0) eds = false;
  const cluster: Obj = { name: spec.name, connect_timeout: "5s" };
  if (eds) {
    cluster.type = "EDS";
    cluster.eds_cluster_config = EDS_CONFIG;
  } else {
    cluster.type = "STRICT_DNS";
    cluster.dns_lookup_family = "V4_PREFERRED";
    cluster.respect_dns_ttl = true;
  }
  cluster.lb_policy = spec.lbPolicy;
  cluster.circuit_breakers = CIRCUIT_BREAKERS;
  cluster.per_connection_buffer_limit_bytes = 1048576;
  // No panic routing: with every endpoint down, fail instead of sending to unhealthy servers (R-EAS-6, R-POP-5).
  cluster.common_lb_config = NO_PANIC;
  // Connection failures eject a server; 5xx from Exchange are answers, not outages.
  cluster.outlier_detection = OUTLIER;
  cluster.upstream_connection_options = KEEPALIVE;
  if (spec.http) cluster.typed_extension_protocol_options = httpProtocolOptions(false);
  // NTLM authenticates the connection: such clusters get a pool per client connection.
  if (spec.connectionAffinity) cluster.connection_pool_per_downstream_connection = true;
  if (spec.healthCheck && opts.healthChecks) cluster.health_checks = [spec.healthCheck];
  if (!multi) {
    const u = ups[0];
    if (u?.tls) cluster.transport_socket = upstreamTlsSocket(u, opts, memo);
  } else {
    // Each server gets its own SNI and certificate names: a transport socket per endpoint, each
    // entry shared (frozen) by the server's pools of every service.
    cluster.transport_socket_matches = ups.map((u) => {
      const socket = u.tls ? upstreamTlsSocket(u, opts, memo) : rawSocket();
      return memo.of(u, "socket-match", () => ({ name: u.server.name, match: { server: u.server.name }, transport_socket: socket }));
    });
  }
  if (!eds) cluster.load_assignment = cla;
  return { cluster, cla };
}

const vdirSource = (v: VirtualDirectoryInfo): Source => ({ kind: "VirtualDirectory", name: v.name });
const serverSource = (s: ServerInfo): Source => ({ kind: "ClientAccessServer", name: s.name });

/** Servers that can be in a site's front-end pool: Client Access servers, and 2003 back-ends (R-EAS-1, R-POP-1). */
const poolMember = (s: ServerInfo) => s.clientAccess || s.version === 2003;

/**
 * What upstream clusters reuse from one translation to the next (for one set of options): each
 * server's clusters and pool contributions, keyed by ServerInfo identity (buildTopology keeps a
 * server's info object while neither it nor its virtual directories change), the pool clusters,
 * keyed by their members, and a long-lived Memo so shared sub-objects keep identity (the codec
 * memoises their encodings). The Built objects it returns keep identity too, so the translator's
 * encode cache (translate.ts) reuses their bytes. Output is the same as without the cache.
 */
export class UpstreamCache {
  memo = new Memo();
  private readonly servers = new WeakMap<ServerInfo, ServerPieces>();
  private readonly ids = new WeakMap<ServerInfo, number>();
  private nextId = 1;
  private pools = new Map<string, Built[]>();
  private nextPools = new Map<string, Built[]>();
  private sites = new Map<string, Built[]>();
  private nextSites = new Map<string, Built[]>();
  private collecting: string[] | undefined;
  /** The pool keys a cached site's pools were made under. */
  private readonly sitePoolKeys = new WeakMap<Built[], string[]>();

  server(s: ServerInfo, make: () => ServerPieces): ServerPieces {
    let p = this.servers.get(s);
    if (!p) this.servers.set(s, (p = make()));
    return p;
  }
  id(s: ServerInfo): number {
    let i = this.ids.get(s);
    if (i === undefined) this.ids.set(s, (i = this.nextId++));
    return i;
  }
  pool(key: string, make: () => Built[]): Built[] {
    const b = this.pools.get(key) ?? make();
    this.nextPools.set(key, b);
    this.collecting?.push(key);
    return b;
  }
  /** A site's pools, keyed by the site and its members; pools inside are cached too (pool()). */
  sitePools(key: string, make: () => Built[]): Built[] {
    let b = this.sites.get(key);
    if (b) {
      // Its pools stay cached: a later change to one member rebuilds only the pools it is in.
      for (const k of this.sitePoolKeys.get(b) ?? []) this.nextPools.set(k, this.pools.get(k)!);
    } else {
      const keys: string[] = [];
      this.collecting = keys;
      try {
        b = make();
      } finally {
        this.collecting = undefined;
      }
      this.sitePoolKeys.set(b, keys);
    }
    this.nextSites.set(key, b);
    return b;
  }
  /** Pools and sites not used by this translation are dropped. */
  endTranslation(): void {
    this.pools = this.nextPools;
    this.nextPools = new Map();
    this.sites = this.nextSites;
    this.nextSites = new Map();
    // Bound the memo (keys are content: server names, SANs); cached clusters keep the objects they use.
    if (this.memo.size > 200_000) this.memo = new Memo();
  }
}

interface PoolMember {
  readonly key: string;
  readonly up: Upstream;
  readonly vdir: VirtualDirectoryInfo;
  readonly hc: Obj;
}
interface ServerPieces {
  readonly built: readonly Built[];
  readonly pool: readonly PoolMember[];
}

const hcOf = (memo: Memo, server: ServerInfo, vdir: VirtualDirectoryInfo) =>
  memo.get(`hc|${server.version >= 2013}|${vdir.service}|${firstSegment(vdir) ?? ""}`, () => httpHealthCheck(server, vdir));

/** One server's own clusters (per virtual directory) and what it adds to its site's pools. */
function serverPieces(server: ServerInfo, opts: ResolvedOptions, memo: Memo): ServerPieces {
  const built: Built[] = [];
  const pool: PoolMember[] = [];
  const addr = splitAddress(server.address);
  const serverSrc = serverSource(server);
  // A server's vdirs mostly reach the same host, port and names: one Upstream object for them,
  // so what is built from it (endpoint, TLS socket) is built and encoded once (Memo.of).
  const distinct: Upstream[] = [];
  const shared = (u: Upstream | undefined): Upstream | undefined => {
    if (!u) return u;
    const same = distinct.find((d) => d.host === u.host && d.port === u.port && d.tls === u.tls && d.names.length === u.names.length && d.names.every((n, i) => n === u.names[i]));
    if (same) return same;
    distinct.push(u);
    return u;
  };
  for (const vdir of server.vdirs.values()) {
    if (vdir.service === "Pop3" || vdir.service === "Imap4") {
      built.push(...mailServerCluster(server, vdir, opts, memo));
      continue;
    }
    const up = shared(httpUpstream(server, vdir, addr));
    if (!up) continue;
    const hc = hcOf(memo, server, vdir);
    built.push(
      ...upstreamCluster(
        {
          name: serverClusterName(server.name, vdir.service),
          upstreams: [up],
          healthCheck: hc,
          http: true,
          connectionAffinity: vdirNeedsConnectionAffinity(vdir),
          lbPolicy: "ROUND_ROBIN",
          sources: [vdirSource(vdir), serverSrc],
        },
        opts,
        memo,
      ),
    );
    if (!poolMember(server)) continue;
    pool.push({ key: poolClusterName(server.site, server.versionClass as VersionClass, vdir.service), up, vdir, hc });
  }
  return { built, pool };
}

export function upstreamClusters(topology: Topology, opts: ResolvedOptions, cache: UpstreamCache = new UpstreamCache()): Built[] {
  const out: Built[] = [];
  for (const server of topology.servers.values()) {
    for (const b of cache.server(server, () => serverPieces(server, opts, cache.memo)).built) out.push(b);
  }
  // Pools: site × version class × HTTP service. A site's pools depend only on its members (server
  // info objects, each with its vdirs): a change elsewhere reuses them without regrouping.
  for (const site of topology.sites.values()) {
    const members: ServerInfo[] = [];
    for (const n of site.servers) {
      const s = topology.servers.get(n);
      if (s) members.push(s);
    }
    if (members.length === 0) continue;
    const key = `${site.name}|${members.map((s) => cache.id(s)).join(",")}`;
    for (const b of cache.sitePools(key, () => sitePools(members, opts, cache))) out.push(b);
  }
  out.push(...smtpClusters(topology, opts, cache.memo));
  cache.endTranslation();
  return out;
}

/** One site's pool clusters, from its members' pool contributions (in member order). */
function sitePools(members: readonly ServerInfo[], opts: ResolvedOptions, cache: UpstreamCache): Built[] {
  const out: Built[] = [];
  const pools = new Map<string, { ids: number[]; upstreams: Upstream[]; vdirs: VirtualDirectoryInfo[]; hc: Obj }>();
  for (const server of members) {
    const pieces = cache.server(server, () => serverPieces(server, opts, cache.memo));
    if (pieces.pool.length === 0) continue;
    const id = cache.id(server);
    for (const m of pieces.pool) {
      let p = pools.get(m.key);
      if (!p) pools.set(m.key, (p = { ids: [], upstreams: [], vdirs: [], hc: m.hc }));
      p.ids.push(id);
      p.upstreams.push(m.up);
      p.vdirs.push(m.vdir);
    }
  }
  for (const [name, p] of pools) {
    // A pool's cluster depends only on its members (server info objects, each with its vdirs).
    const built = cache.pool(`${name}|${p.ids.join(",")}`, () =>
      upstreamCluster(
        {
          name,
          upstreams: p.upstreams,
          healthCheck: p.hc,
          http: true,
          connectionAffinity: needsConnectionAffinity(p.vdirs),
          // Availability and 2013+ are stateless (R-EWS-5, R-2013-1): round robin.
          lbPolicy: "ROUND_ROBIN",
          sources: p.vdirs.map(vdirSource),
        },
        opts,
        cache.memo,
      ),
    );
    for (const b of built) out.push(b);
  }
  return out;
}

/** A mail service's own endpoints (internalConnectionSettings), health-checked for R-POP-5. */
function mailServerCluster(server: ServerInfo, vdir: VirtualDirectoryInfo, opts: ResolvedOptions, memo: Memo): Built[] {
  const settings = vdir.internalConnectionSettings;
  if (settings.length === 0) return [];
  const s = settings[0];
  const tls = s.encryption === "Ssl";
  const up: Upstream = { server, host: s.hostname.toLowerCase(), port: s.port, tls, names: [...new Set([server.fqdn, s.hostname.toLowerCase()])] };
  return upstreamCluster(
    {
      name: serverClusterName(server.name, vdir.service),
      upstreams: [up],
      // Implicit TLS: a TLS handshake that completes is the check; plain: the greeting.
      healthCheck: memo.get(`tcp|${tls ? "" : vdir.service}`, () => tcpHealthCheck(tls ? undefined : GREETINGS[vdir.service])),
      http: false,
      connectionAffinity: false,
      lbPolicy: "ROUND_ROBIN",
      sources: [vdirSource(vdir), serverSource(server)],
    },
    opts,
    memo,
  );
}

export const smtpClusterName = (site: string, port: number) => `smtp/${site}/${port}`;

/**
 * SMTP front door (R-2013-4): the configured (or first internet-facing) site's transport servers —
 * 2013+ servers (Front End Transport on Client Access, transport on Mailbox) and 2007/2010
 * Client Access servers, where Hub Transport is normally co-located.
 */
export function smtpSite(topology: Topology, opts: ResolvedOptions): string | undefined {
  if (opts.smtpSite) return topology.sites.has(opts.smtpSite) ? opts.smtpSite : undefined;
  for (const site of topology.sites.values()) if (site.internetFacing && smtpServers(topology, site.name).length > 0) return site.name;
  return undefined;
}
function smtpServers(topology: Topology, site: string): ServerInfo[] {
  return [...topology.servers.values()].filter((s) => s.site === site && s.version >= 2007 && (s.clientAccess || s.version >= 2013));
}

function smtpClusters(topology: Topology, opts: ResolvedOptions, memo: Memo): Built[] {
  const site = opts.smtp ? smtpSite(topology, opts) : undefined;
  if (!site) return [];
  const servers = smtpServers(topology, site);
  const out: Built[] = [];
  for (const port of [25, 587]) {
    const upstreams = servers.map((s): Upstream => ({ server: s, host: splitAddress(s.address).host, port, tls: false, names: [s.fqdn] }));
    // STARTTLS is end to end: Envoy only relays bytes, so the transport socket stays raw.
    const built = upstreamCluster(
      {
        name: smtpClusterName(site, port),
        upstreams: upstreams.map((u) => ({ ...u, tls: false })),
        healthCheck: tcpHealthCheck(Buffer.from("220").toString("hex")),
        http: false,
        connectionAffinity: false,
        lbPolicy: "LEAST_REQUEST",
        sources: [{ kind: "ADSite", name: site }],
      },
      opts,
      memo,
    );
    out.push(...built);
  }
  return out;
}

export const mailProxyClusterName = (protocol: "pop3" | "imap4", tlsTerminated: boolean) =>
  `${MAIL_PROXY_CLUSTER}/${protocol}${tlsTerminated ? "-tls" : ""}`;

/** PROXY protocol v2 in front of the plain bytes: the mail proxy learns the client's address. */
const PROXY_PROTOCOL_SOCKET = deepFreeze({
  name: "envoy.transport_sockets.upstream_proxy_protocol",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport",
    config: { version: "V2" },
    transport_socket: { name: "envoy.transport_sockets.raw_buffer", typed_config: { "@type": T.rawBuffer } },
  },
});

function localCluster(name: string, host: string, port: number, http2: boolean, proxyProtocol = false): Built {
  const ip = isIP(host) !== 0;
  return {
    typeUrl: TYPE_URLS.cluster,
    name,
    value: {
      name,
      connect_timeout: dur(1),
      type: ip ? "STATIC" : "STRICT_DNS",
      lb_policy: "ROUND_ROBIN",
      circuit_breakers: CIRCUIT_BREAKERS,
      ...(http2 ? { typed_extension_protocol_options: httpProtocolOptions(true) } : {}),
      ...(proxyProtocol ? { transport_socket: PROXY_PROTOCOL_SOCKET } : {}),
      load_assignment: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
      },
    },
    sources: [{ kind: "GatewayOptions", name: "sidecar" }],
  };
}

/** The sidecar's gRPC service (ext_authz + ext_proc, HTTP/2) and its POP3/IMAP4 proxy ports. */
export function gatewayClusters(opts: ResolvedOptions): Built[] {
  const mp = opts.mailProxy;
  const out = [
    localCluster(SIDECAR_CLUSTER, opts.sidecar.address, opts.sidecar.port, true),
    localCluster(mailProxyClusterName("pop3", false), mp.address, mp.pop3Port, false, mp.proxyProtocol),
    localCluster(mailProxyClusterName("imap4", false), mp.address, mp.imap4Port, false, mp.proxyProtocol),
  ];
  if (opts.tls) {
    out.push(localCluster(mailProxyClusterName("pop3", true), mp.address, mp.pop3TlsPort ?? mp.pop3Port, false, mp.proxyProtocol));
    out.push(localCluster(mailProxyClusterName("imap4", true), mp.address, mp.imap4TlsPort ?? mp.imap4Port, false, mp.proxyProtocol));
  }
  return out;
}
