// The working state of one decision and the steps every rule module shares: trace lines, rule IDs,
// target selection (health, version class, affinity, R-LB-1 combined servers, R-2013-2 active copy),
// and building the three kinds of answer.
import type { AuthMethod, ConnectionSetting, Service } from "../../crds/index.js";
import { PATH_REWRITES, poolClusterName, serverClusterName, type RewriteName } from "../../model/topology/names.js";
import type { ServerInfo, Topology, VersionClass, VersionNumber, VirtualDirectoryInfo } from "../../model/topology/types.js";
import type { MailboxRecord } from "../../model/directory/types.js";
import type { HealthView } from "../../model/health.js";
import type { IdentityCandidate } from "./identity.js";
import { serviceIndex, vdirOf, type SiteIndex, type TopologyIndex } from "./topology-index.js";
import type {
  ClientRequest,
  ErrorDecision,
  RedirectDecision,
  RedirectKind,
  RouteDecision,
  RuleId,
} from "./types.js";

export type Affinity = RouteDecision["affinity"];

/** Where a request goes: a server (single-server cluster) or a site's pool of one version class. */
export interface Target {
  readonly site: string;
  readonly cls: VersionClass;
  readonly server?: ServerInfo;
  readonly affinity: Affinity;
  /** Service whose cluster is used when it differs from the request's (EWS Availability → Public). */
  readonly clusterService?: Service;
}

export type Picked = Target | ErrorDecision;
export const isError = (p: Picked | RouteDecision | RedirectDecision): p is ErrorDecision =>
  (p as ErrorDecision).outcome === "error";

const IWA: ReadonlySet<AuthMethod> = new Set<AuthMethod>(["Ntlm", "Negotiate", "Kerberos", "WindowsIntegrated"]);
export function usesIwa(methods: readonly AuthMethod[]): boolean {
  for (const m of methods) if (IWA.has(m)) return true;
  return false;
}
export function basicOnly(methods: readonly AuthMethod[]): boolean {
  for (const m of methods) if (m !== "Basic") return false;
  return methods.length > 0;
}
export function usesFba(methods: readonly AuthMethod[]): boolean {
  return methods.includes("Fba");
}
export function sameMethods(a: readonly AuthMethod[], b: readonly AuthMethod[]): boolean {
  if (a.length === 0 || b.length === 0) return false;
  for (const m of a) if (!b.includes(m)) return false;
  for (const m of b) if (!a.includes(m)) return false;
  return true;
}

const MAIL: ReadonlySet<Service> = new Set<Service>(["Pop3", "Imap4"]);
export const isMailService = (s: Service) => MAIL.has(s);

/** POP3/IMAP4 endpoint to use: implicit TLS first, then STARTTLS, then plain. */
export function bestConnection(settings: readonly ConnectionSetting[]): ConnectionSetting | undefined {
  let best: ConnectionSetting | undefined;
  const rank = (e: ConnectionSetting["encryption"]) => (e === "Ssl" ? 3 : e === "Tls" ? 2 : 1);
  for (const s of settings) if (!best || rank(s.encryption) > rank(best.encryption)) best = s;
  return best;
}

/** Rendezvous (highest random weight) hash: a stable choice that moves only the keys of a lost server. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
export function rendezvous(key: string, servers: readonly ServerInfo[]): ServerInfo {
  const k = fnv1a(key.toLowerCase());
  let best = servers[0];
  let bestScore = -1;
  for (const s of servers) {
    const score = mix(fnv1a(s.name, k));
    if (score > bestScore || (score === bestScore && s.name < best.name)) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

export interface PickOptions {
  /** pool: the site's pool of the class; sticky: one server with an affinity pin (R-LB-2); server: one server, no pin. */
  readonly mode: "pool" | "sticky" | "server";
  /** Cross-site: HTTPS upstream required (R-GEN-3). */
  readonly crossSite: boolean;
  /** The target directory must accept Integrated Windows authentication (R-GEN-7, R-OWA-4, R-EAS-5). */
  readonly requireIwa: boolean;
  /** Rule to name when no directory accepts IWA (R-OWA-5, R-EAS-5, ...). */
  readonly iwaRule?: RuleId;
  /** Extra filter (R-EWS-4: servers with an NLB bypass URL). */
  readonly filter?: (s: ServerInfo) => boolean;
  /** Apply R-LB-1 (a combined CAS+Mailbox active server is always the target). Default true. */
  readonly combined?: boolean;
}

/**
 * A trace line: a constant string, or a function that builds it from the decision's values. The
 * function runs at once when the decision is traced and never otherwise, so a decision made without
 * a trace (the sidecar's hot path) builds none of its text.
 */
export type TraceLine = string | (() => string);

/** The text of a trace line (builds it when it is a function). */
export const traceText = (line: TraceLine): string => (typeof line === "string" ? line : line());

/** The trace of an untraced decision: shared and frozen, so a stray write fails loudly. */
export const NO_TRACE: string[] = Object.freeze([]) as unknown as string[];

export class Ctx {
  readonly rules: RuleId[] = [];
  /**
   * The human trace, or the shared (frozen) empty list when this decision is not traced. Read-only
   * outside Ctx: lines go through rule() and note(), which know whether to build them.
   */
  private readonly lines: string[];
  get trace(): readonly string[] {
    return this.lines;
  }
  identity?: IdentityCandidate;
  mailbox?: MailboxRecord;
  active?: ServerInfo;
  mailboxSite?: SiteIndex;
  version?: VersionNumber;
  cls?: VersionClass;
  /**
   * R-LB-8: the first NTLM/Negotiate request of a downstream connection. Its target is one server,
   * never a pool (a pool could split the handshake), and the connection stays there.
   */
  connectionAuth = false;

  constructor(
    readonly req: ClientRequest,
    readonly topology: Topology,
    readonly index: TopologyIndex,
    readonly health: HealthView,
    readonly service: Service,
    readonly local: SiteIndex,
    /** Build the human trace (explain, tests); the sidecar decides without one. */
    readonly tracing = true,
  ) {
    this.lines = tracing ? [] : NO_TRACE;
  }

  rule(id: RuleId, line: TraceLine): void {
    if (!this.rules.includes(id)) this.rules.push(id);
    if (this.tracing) this.lines.push(`${id}: ${traceText(line)}`);
  }
  note(line: TraceLine): void {
    if (this.tracing) this.lines.push(traceText(line));
  }
  /** Record a rule ID without its own trace line (it is explained by a neighbouring line). */
  tag(id: RuleId): void {
    if (!this.rules.includes(id)) this.rules.push(id);
  }

  get sameSite(): boolean {
    return this.mailboxSite === undefined || this.mailboxSite.info.name === this.local.info.name;
  }

  /** Affinity key: the identity, else the client address (R-LB-5), else nothing. */
  get affinityKey(): string | undefined {
    return this.identity?.value ?? this.req.sourceAddress;
  }

  usable(s: ServerInfo, svc: Service = this.service): boolean {
    return !s.maintenance && this.health.isServerHealthy(s.name) && this.health.isServiceHealthy(s.name, svc);
  }

  whyUnusable(s: ServerInfo, svc: Service = this.service): string {
    if (s.maintenance) return "in maintenance";
    if (!this.health.isServerHealthy(s.name)) return "down";
    return `${svc} down`;
  }

  /** The pinned server, if the request carries a verified pin to a known server. */
  pinned(): ServerInfo | undefined {
    const p = this.req.pinnedServer;
    return p ? this.index.findServer(p) : undefined;
  }

  /** The receiving site's directory for a service: newest version class first, usable first. */
  receivingDir(svc: Service = this.service): VirtualDirectoryInfo | undefined {
    const ordered = serviceIndex(this.local, svc).ordered;
    for (const s of ordered) if (this.usable(s, svc)) return vdirOf(s, svc);
    return ordered.length ? vdirOf(ordered[0], svc) : undefined;
  }

  error(status: number, reason: string, rule?: RuleId, line?: TraceLine): ErrorDecision {
    if (rule) this.rule(rule, line ?? reason);
    else if (line) this.note(line);
    const d: { -readonly [K in keyof ErrorDecision]: ErrorDecision[K] } = { outcome: "error", status, reason, rules: this.rules, trace: this.lines, service: this.service, receivingSite: this.local.info.name };
    if (this.identity) d.identity = { value: this.identity.value, source: this.identity.source };
    return d;
  }

  redirect(kind: RedirectKind, url: string): RedirectDecision {
    const d: { -readonly [K in keyof RedirectDecision]: RedirectDecision[K] } = { outcome: "redirect", kind, url, rules: this.rules, trace: this.lines, service: this.service, receivingSite: this.local.info.name };
    if (this.identity) d.identity = { value: this.identity.value, source: this.identity.source };
    return d;
  }

  route(t: Target, rewrite?: RewriteName): RouteDecision {
    const svc = t.clusterService ?? this.service;
    const cluster = t.server ? serverClusterName(t.server.name, svc) : poolClusterName(t.site, t.cls, svc);
    const outcome = t.site === this.local.info.name ? "local" : "proxy";
    let upstreamPath: string | undefined;
    if (rewrite) upstreamPath = rewritePath(this.req.path, rewrite);
    let mailBackend: RouteDecision["mailBackend"];
    if (isMailService(this.service) && t.server) {
      const c = bestConnection(t.server.vdirs.get(this.service)?.internalConnectionSettings ?? []);
      if (c) mailBackend = { host: c.hostname, port: c.port, encryption: c.encryption };
    }
    const server = t.server;
    if (server && (t.affinity === "set" || t.affinity === "keep") && (svc === "Owa" || svc === "Ecp")) {
      this.rule("R-LB-7", () => `the pin to ${server.name} is one for OWA and ECP: the forms-auth cookie ${server.name} issues is readable by it only`);
    }
    if (server?.insecureSkipVerify && outcome === "proxy") {
      this.rule("R-GEN-3", () => `certificate validation is switched off for ${server.name} (tls.insecureSkipVerify), as Exchange does`);
    }
    // Built field by field (no spreads): this runs on every request.
    const d: { -readonly [K in keyof RouteDecision]: RouteDecision[K] } = {
      outcome,
      targetSite: t.site,
      cluster,
      affinity: t.affinity,
      rules: this.rules,
      trace: this.lines,
      service: this.service,
      receivingSite: this.local.info.name,
    };
    if (t.server) d.targetServer = t.server.name;
    if (upstreamPath !== undefined) {
      d.upstreamPath = upstreamPath;
      d.rewrite = rewrite;
    }
    if (mailBackend) d.mailBackend = mailBackend;
    if (this.identity) d.identity = { value: this.identity.value, source: this.identity.source };
    return d;
  }

  /** Why a server cannot take this request across sites / through a proxy hop; undefined when it can. */
  private ineligible(s: ServerInfo, svc: Service, o: { crossSite: boolean; requireIwa: boolean }): "no-https" | "no-iwa" | "no-tls" | undefined {
    const v = s.vdirs.get(svc);
    if (!v) return "no-iwa";
    if (isMailService(svc)) {
      if (o.crossSite && bestConnection(v.internalConnectionSettings)?.encryption === "None") return "no-tls";
      return undefined;
    }
    if (o.crossSite && !(v.internalUrl ?? "").toLowerCase().startsWith("https:")) return "no-https";
    if (o.requireIwa && !usesIwa(v.internalAuthenticationMethods)) return "no-iwa";
    return undefined;
  }

  /** Choose a target among `site`'s servers of version class `cls` (R-GEN-2) for this service. */
  pick(site: SiteIndex, cls: VersionClass, o: PickOptions, svc: Service = this.service): Picked {
    const siteName = site.info.name;
    const members = serviceIndex(site, svc).byClass.get(cls) ?? [];
    if (members.length === 0) {
      return this.error(
        502,
        "No server is set up to open your mailbox with this application. Contact your administrator.",
        "R-GEN-2",
        () => `no Exchange ${cls} client access server with a ${svc} directory in site ${siteName}; never sent to an older one`,
      );
    }
    const eligible: ServerInfo[] = [];
    let noHttps = 0;
    let noIwa = 0;
    let noTls = 0;
    let basic = 0;
    for (const s of members) {
      if (o.filter && !o.filter(s)) continue;
      const why = this.ineligible(s, svc, o);
      if (why === undefined) eligible.push(s);
      else if (why === "no-https") noHttps++;
      else if (why === "no-tls") noTls++;
      else {
        noIwa++;
        if (basicOnly(s.vdirs.get(svc)?.internalAuthenticationMethods ?? [])) basic++;
      }
    }
    if (eligible.length === 0) {
      if (noTls > 0) {
        this.tag("R-GEN-7");
        return this.error(
          502,
          "Your mailbox cannot be reached securely from here. Contact your administrator.",
          "R-GEN-3",
          () => `POP3/IMAP4 credentials are proxied only over TLS: no ${cls} server in site ${siteName} offers an encrypted ${svc} endpoint`,
        );
      }
      if (noHttps > 0 && noIwa === 0) {
        return this.error(
          502,
          "Your mailbox cannot be reached securely from here. Contact your administrator.",
          "R-GEN-3",
          () => `cross-site traffic is HTTPS only: the ${svc} InternalUrl of every ${cls} server in site ${siteName} is http`,
        );
      }
      if (basic > 0) this.rule("R-GEN-7", () => `the ${svc} directories in site ${siteName} accept only Basic authentication, which cannot be proxied`);
      return this.error(
        403,
        "Your mailbox cannot be opened from this address. Use the address your organisation gave for your mailbox.",
        o.iwaRule ?? "R-GEN-7",
        () => `no ${cls} ${svc} directory in site ${siteName} accepts Integrated Windows authentication, which proxying needs`,
      );
    }
    const usable: ServerInfo[] = [];
    for (const s of eligible) if (this.usable(s, svc)) usable.push(s);
    if (usable.length < eligible.length) {
      this.note(
        `not usable: ${eligible
          .filter((s) => !usable.includes(s))
          .map((s) => `${s.name} (${this.whyUnusable(s, svc)})`)
          .join(", ")}`,
      );
    }
    if (usable.length === 0) {
      return this.error(
        503,
        "The server that holds your mailbox is not available right now. Try again in a few minutes.",
        undefined,
        () => `no usable ${cls} ${svc} server in site ${siteName}`,
      );
    }
    const pin = this.pinned();
    // R-LB-1: a combined CAS+Mailbox server holding the active copy is the target.
    const a = this.active;
    if (o.combined !== false && a && a.clientAccess && a.mailbox && a.site === siteName && usable.includes(a)) {
      this.rule("R-LB-1", () => `${a.name} holds the active copy and has the Client Access role: it is the target`);
      const affinity: Affinity = o.mode === "sticky" ? (pin?.name === a.name ? "keep" : "set") : pin ? "clear" : "none";
      return { site: siteName, cls, server: a, affinity };
    }
    if (o.mode === "pool" && this.connectionAuth) {
      const chosen = rendezvous(this.affinityKey ?? "", usable);
      this.rule("R-LB-8", () => `the connection authenticates with NTLM/Negotiate: one server of the pool, ${chosen.name}, takes the whole handshake`);
      return { site: siteName, cls, server: chosen, affinity: pin ? "clear" : "none" };
    }
    if (o.mode === "pool") {
      this.rule("R-LB-6", () => `pool of ${usable.length} usable ${cls} server(s) of site ${siteName} only`);
      return { site: siteName, cls, affinity: "none" };
    }
    if (o.mode === "sticky") {
      if (pin && usable.includes(pin)) {
        this.rule("R-LB-2", () => `affinity pin to ${pin.name} kept: it is usable, in site ${siteName} and runs ${cls}`);
        return { site: siteName, cls, server: pin, affinity: "keep" };
      }
      const key = this.affinityKey ?? "";
      const chosen = rendezvous(key, usable);
      this.rule(
        "R-LB-2",
        () => pin
          ? `pin to ${pin.name} cannot be kept (${pin.site !== siteName || pin.versionClass !== cls || !pin.vdirs.has(svc) ? "not a " + cls + " " + svc + " server of site " + siteName : this.whyUnusable(pin, svc)}): moved to ${chosen.name}; the user may sign in again`
          : `new affinity to ${chosen.name} (rendezvous hash of ${this.identity ? "the identity" : "the client address"} over ${usable.length} usable server(s))`,
      );
      return { site: siteName, cls, server: chosen, affinity: "set" };
    }
    const chosen = rendezvous(this.affinityKey ?? "", usable);
    return { site: siteName, cls, server: chosen, affinity: pin ? "clear" : "none" };
  }

  /**
   * 2013+ mailbox (R-2013-1, R-2013-2): the server holding the active copy when it has the service and
   * is usable; otherwise any usable 2013+ server of the site (the 2013+ front end is stateless).
   */
  pick2013(site: SiteIndex, o: Omit<PickOptions, "mode">, svc: Service = this.service): Picked {
    const a = this.active;
    const pin = this.pinned();
    const affinity: Affinity = pin ? "clear" : "none";
    if (a && a.site === site.info.name && a.vdirs.has(svc)) {
      const why = this.ineligible(a, svc, o);
      if (why === undefined && this.usable(a, svc)) {
        this.rule("R-2013-2", () => `routed to ${a.name}, the server holding the active copy of the database`);
        this.rule("R-2013-1", () => `no session affinity for a 2013+ mailbox${pin ? " (existing pin cleared)" : ""}`);
        this.rule("R-2013-3", () => `cluster ${serverClusterName(a.name, svc)} is a shared, pooled upstream for every user of ${a.name}`);
        return { site: site.info.name, cls: "2013+", server: a, affinity };
      }
      this.note(() => `active server ${a.name} cannot take it (${why ?? this.whyUnusable(a, svc)})`);
    }
    const p = this.pick(site, "2013+", { mode: "pool", crossSite: o.crossSite, requireIwa: o.requireIwa, iwaRule: o.iwaRule, combined: false }, svc);
    if (isError(p)) return p;
    this.rule("R-2013-1", () => `any 2013+ server may take a 2013+ mailbox's request; no affinity${pin ? " (existing pin cleared)" : ""}`);
    return p.server ? { site: p.site, cls: p.cls, server: p.server, affinity } : { site: p.site, cls: p.cls, affinity };
  }

  /** Route to one named server (2003 back-end, R-EAS-1, R-POP-1, R-EWS-3). */
  pickServer(s: ServerInfo, o: Omit<PickOptions, "mode">, svc: Service = this.service, clusterService?: Service): Picked {
    if (!s.vdirs.has(svc)) {
      return this.error(
        502,
        "No server is set up to open your mailbox with this application. Contact your administrator.",
        "R-GEN-2",
        () => `${s.name} has no ${svc} directory`,
      );
    }
    const why = this.ineligible(s, svc, o);
    if (why === "no-iwa") {
      if (basicOnly(s.vdirs.get(svc)?.internalAuthenticationMethods ?? [])) {
        this.rule("R-GEN-7", () => `${s.name}'s ${svc} directory accepts only Basic authentication, which cannot be proxied`);
      }
      return this.error(
        403,
        "Your mailbox cannot be opened from this address. Use the address your organisation gave for your mailbox.",
        o.iwaRule ?? "R-GEN-7",
        () => `${s.name}'s ${svc} directory does not accept Integrated Windows authentication`,
      );
    }
    if (why !== undefined) {
      return this.error(502, "Your mailbox cannot be reached securely from here. Contact your administrator.", "R-GEN-3", () => `${s.name}'s ${svc} endpoint is not encrypted`);
    }
    if (!this.usable(s, svc)) {
      return this.error(
        503,
        "The server that holds your mailbox is not available right now. Try again in a few minutes.",
        undefined,
        () => `${s.name} is ${this.whyUnusable(s, svc)}`,
      );
    }
    const site = s.site;
    return { site, cls: s.versionClass, server: s, affinity: this.pinned() ? "clear" : "none", ...(clusterService ? { clusterService } : {}) };
  }

  /** A configured ExternalUrl for this service in the mailbox site, from a server of class `cls` or newer. */
  externalUrlIn(site: SiteIndex, cls: VersionClass, svc: Service = this.service): { url: string; dir: VirtualDirectoryInfo } | undefined {
    const si = serviceIndex(site, svc);
    let fallback: { url: string; dir: VirtualDirectoryInfo } | undefined;
    let looped: string | undefined;
    // The mailbox's own class first, then newer ones (never older: R-GEN-2).
    for (const c of CLASSES_OLDEST_FIRST) {
      if (rankOf(c) < rankOf(cls)) continue;
      for (const s of si.byClass.get(c) ?? []) {
        const v = s.vdirs.get(svc);
        if (!v?.externalUrl) continue;
        if (this.loopsBack(v.externalUrl)) {
          looped = v.externalUrl;
          continue;
        }
        if (this.usable(s, svc)) return { url: v.externalUrl, dir: v };
        fallback ??= { url: v.externalUrl, dir: v };
      }
    }
    if (!fallback && looped) {
      this.note(() => `${svc} ExternalUrl ${looped} of site ${site.info.name} is a host name of the receiving site: redirecting there would loop, so it is not used`);
    }
    return fallback;
  }

  /** Whether a URL's host is one of the receiving site's own front-door names (a redirect there loops). */
  private loopsBack(url: string): boolean {
    const start = url.indexOf("://");
    if (start < 0) return false;
    let end = start + 3;
    while (end < url.length) {
      const ch = url.charCodeAt(end);
      if (ch === 47 /* / */ || ch === 63 /* ? */ || ch === 35 /* # */) break;
      end++;
    }
    const host = url.slice(start + 3, end);
    const site = this.index.hostExact.get(host.toLowerCase()) ?? this.topology.siteForHost(host);
    return site === this.local.info.name;
  }
}

const RANK: Record<VersionClass, number> = { "2003": 0, "2007": 1, "2010": 2, "2013+": 3 };
const CLASSES_OLDEST_FIRST: readonly VersionClass[] = ["2003", "2007", "2010", "2013+"];
export const rankOf = (c: VersionClass) => RANK[c];

export function rewritePath(path: string, rewrite: RewriteName): string {
  const r = PATH_REWRITES[rewrite];
  if (path.length >= r.prefix.length && path.slice(0, r.prefix.length).toLowerCase() === r.prefix.toLowerCase()) {
    return r.rewrite + path.slice(r.prefix.length);
  }
  const q = path.indexOf("?");
  return r.rewrite + (q < 0 ? "" : path.slice(q));
}
