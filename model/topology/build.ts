// Pure: validated API objects → immutable, indexed Topology with a content-derived version.
// Referential problems are reported per object; the rest of the topology still builds.
import { createHash } from "node:crypto";
import type {
  ADSite,
  ApiObject,
  ClientAccessServer,
  Kind,
  MailboxDatabase,
  Service,
  VirtualDirectory,
} from "../../crds/index.js";
import type {
  DatabaseInfo,
  Problem,
  ServerInfo,
  SiteInfo,
  Topology,
  VersionClass,
  VersionNumber,
  VirtualDirectoryInfo,
  OrganizationRelationshipInfo,
} from "./types.js";

export function versionClassOf(v: VersionNumber): VersionClass {
  return v >= 2013 ? "2013+" : (String(v) as VersionClass);
}

/** Oldest Exchange version that has each service (a directory on an older server is a mistake). */
const SERVICE_MIN_VERSION: Record<Service, VersionNumber> = {
  Owa: 2003,
  ActiveSync: 2003,
  RpcHttp: 2003,
  Pop3: 2003,
  Imap4: 2003,
  Public: 2003,
  Ews: 2007,
  Oab: 2007,
  Autodiscover: 2007,
  Ecp: 2010,
  PowerShell: 2010,
  Mapi: 2013,
};
/** Newest version that still has the service (Exchange 2010 removed /Public). */
const SERVICE_MAX_VERSION: Partial<Record<Service, VersionNumber>> = { Public: 2007 };

const KIND_ORDER: Record<Kind, number> = { ADSite: 0, ClientAccessServer: 1, VirtualDirectory: 2, MailboxDatabase: 3, OrganizationRelationship: 4 };

function compareObjects(a: ApiObject, b: ApiObject): number {
  return (
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    cmp(a.metadata.name, b.metadata.name) ||
    cmp(a.metadata.namespace ?? "", b.metadata.namespace ?? "")
  );
}
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Canonical JSON: keys sorted, so equal content gives equal bytes. */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(",")}}`;
}

export function contentVersion(parts: unknown): string {
  return createHash("sha256").update(canonicalJson(parts)).digest("hex").slice(0, 16);
}

/** Last `CN=` of an LDAP DN or last `cn=` of a legacy Exchange DN; the input when it has none. */
export function commonNameOf(name: string): string {
  const dn = /^\s*cn=([^,]+)/i.exec(name);
  if (dn) return dn[1].trim();
  const legacy = /\/cn=([^/]+)\s*$/i.exec(name);
  if (legacy) return legacy[1].trim();
  return name.trim();
}

// Memoised pieces, keyed by object identity. API objects are immutable values (the providers hand
// over new objects for changed ones and keep unchanged ones, as the Kubernetes provider's validation
// cache does), so a one-object change re-derives only what depends on that object: the rest keeps
// identity, which the xDS translator's caches key on in turn. Results are the same as without the
// memo (build.test.ts checks that against freshly copied objects).
const VDIR_INFO = new WeakMap<VirtualDirectory, VirtualDirectoryInfo>();
const SERVER_INFO = new WeakMap<ClientAccessServer, { readonly vdirs: readonly VirtualDirectoryInfo[]; readonly info: ServerInfo }>();
const DB_INFO = new WeakMap<MailboxDatabase, DatabaseInfo>();
const SITE_INFO = new WeakMap<ADSite, SiteInfo>();
const sameStrings = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
/** Content hash of each info object (sites, servers, databases), for the topology version. */
const INFO_HASH = new WeakMap<object, string>();

function infoHash(o: object, json: () => unknown): string {
  let h = INFO_HASH.get(o);
  if (h === undefined) INFO_HASH.set(o, (h = createHash("sha256").update(canonicalJson(json())).digest("hex")));
  return h;
}

// One-object changes. A provider hands over the same array again with a few objects replaced by
// new versions of themselves (same kind and name): the Kubernetes provider's validation cache keeps
// the unchanged objects, the file provider re-reads files but keeps their order. For that input the
// previous sort order holds with the new objects put in their places (the O(n log n) sort is most
// of a full build's time on a large organisation), and the common edits (a virtual directory's
// URLs or authentication, a server's maintenance flag or address, a database failing over) are
// applied to the previous build's maps directly, without walking every object. Anything else, and
// anything a problem names, takes the full build. incremental.test.ts and build.test.ts check the
// result against a build from scratch.

/** A build's parts and the accepted objects behind them, for the replacement path. */
interface Built {
  readonly topology: Topology;
  readonly parts: TopologyParts;
  readonly siteObjs: ReadonlyMap<string, ADSite>;
  readonly serverObjs: ReadonlyMap<string, ClientAccessServer>;
}

/** An input, the same objects in build order, and for each input position its place in that order. */
interface OrderMemo {
  readonly input: readonly ApiObject[];
  readonly sorted: readonly ApiObject[];
  readonly place: Int32Array;
  built?: Built;
}

/** The last few inputs (the file provider, the control plane and the status writer build in turn). */
const ORDERS: OrderMemo[] = [];
const ORDER_MEMO_SIZE = 4;
/** More replacements than this in one delivery: a full build (over the remembered order). */
const MAX_REPLACEMENTS = 64;

const sameKey = (a: ApiObject, b: ApiObject) =>
  a.kind === b.kind && a.metadata.name === b.metadata.name && a.metadata.namespace === b.metadata.namespace;

interface Ordered {
  readonly memo: OrderMemo;
  /** The build this input differs from by `replaced` (previous object, new object) only. */
  readonly previous?: Built;
  readonly replaced: readonly (readonly [ApiObject, ApiObject])[];
}

function ordered(input: readonly ApiObject[]): Ordered {
  // The remembered input this one differs from least (the previous delivery, not a copy of it).
  let best: { memo: OrderMemo; changed: number[] } | undefined;
  for (const memo of ORDERS) {
    if (memo.input.length !== input.length) continue;
    const changed: number[] = [];
    let usable = true;
    for (let i = 0; i < input.length; i++) {
      const was = memo.input[i]!;
      const now = input[i]!;
      if (now === was) continue;
      if (!sameKey(now, was) || (best && changed.length >= best.changed.length)) {
        usable = false;
        break;
      }
      changed.push(i);
    }
    if (usable && (!best || changed.length < best.changed.length)) best = { memo, changed };
    if (best?.changed.length === 0) break;
  }
  if (best) {
    const { memo, changed } = best;
    let next = memo;
    if (changed.length) {
      const sorted = [...memo.sorted];
      for (const i of changed) sorted[memo.place[i]!] = input[i]!;
      next = { input, sorted, place: memo.place };
    } else ORDERS.splice(ORDERS.indexOf(memo), 1);
    remember(next);
    return { memo: next, ...(memo.built ? { previous: memo.built } : {}), replaced: changed.map((i) => [memo.input[i]!, input[i]!] as const) };
  }
  let inOrder = true;
  for (let i = 1; i < input.length && inOrder; i++) inOrder = compareObjects(input[i - 1]!, input[i]!) <= 0;
  const order = inOrder ? Array.from(input.keys()) : Array.from(input.keys()).sort((a, b) => compareObjects(input[a]!, input[b]!) || a - b);
  const place = new Int32Array(input.length);
  const sorted = inOrder ? input : order.map((from) => input[from]!);
  order.forEach((from, to) => (place[from] = to));
  const memo: OrderMemo = { input, sorted, place };
  remember(memo);
  return { memo, replaced: [] };
}

/** Most recent last; the one before a delivery stays too, so a copy built in between does not push it out. */
function remember(memo: OrderMemo): void {
  ORDERS.push(memo);
  if (ORDERS.length > ORDER_MEMO_SIZE) ORDERS.shift();
}

/** The input in build order: kind, name, namespace (stable). */
export function sortedObjects(input: readonly ApiObject[]): readonly ApiObject[] {
  return ordered(input).memo.sorted;
}

export function buildTopology(input: readonly ApiObject[]): Topology {
  const o = ordered(input);
  if (o.previous && o.replaced.length === 0) return o.previous.topology;
  const built = (o.previous && o.replaced.length <= MAX_REPLACEMENTS && applyReplacements(o.previous, o.replaced)) || buildFrom(o.memo.sorted);
  o.memo.built = built;
  return built.topology;
}

/** Objects named by a problem of a build: their acceptance can depend on others, so they take the full build. */
const NAMED_BY_PROBLEM = new WeakMap<readonly Problem[], ReadonlySet<string>>();
function namedByProblem(problems: readonly Problem[], o: ApiObject): boolean {
  let names = NAMED_BY_PROBLEM.get(problems);
  if (!names) NAMED_BY_PROBLEM.set(problems, (names = new Set(problems.map((p) => `${p.kind}/${p.name}`))));
  return names.has(`${o.kind}/${o.metadata.name}`);
}

const KIND_RANK = (pair: readonly [ApiObject, ApiObject]) => KIND_ORDER[pair[0].kind];

/**
 * The previous build with accepted objects replaced, for edits that cannot change which objects
 * are accepted or any problem; undefined for any other edit (then the full build runs).
 */
function applyReplacements(prev: Built, replaced: readonly (readonly [ApiObject, ApiObject])[]): Built | undefined {
  const p = prev.parts;
  let servers: Map<string, ServerInfo> | undefined;
  let serverObjs: Map<string, ClientAccessServer> | undefined;
  let databases: Map<string, DatabaseInfo> | undefined;
  let dbIndex: Map<string, DatabaseInfo> | undefined;
  const touchedSites = new Set<string>();
  // Servers before their directories (a server's new object carries its directory list on).
  for (const [was, now] of [...replaced].sort((a, b) => KIND_RANK(a) - KIND_RANK(b))) {
    if (namedByProblem(p.problems, was)) return undefined;
    if (was.kind === "ClientAccessServer" && now.kind === "ClientAccessServer") {
      const a = was.spec;
      const b = now.spec;
      // Site, version and roles decide acceptance, site membership and directory acceptance; the
      // skip-verify flag raises a warning.
      if (
        a.site !== b.site ||
        a.exchangeVersion !== b.exchangeVersion ||
        a.roles.includes("ClientAccess") !== b.roles.includes("ClientAccess") ||
        a.roles.includes("Mailbox") !== b.roles.includes("Mailbox") ||
        a.tls.insecureSkipVerify !== b.tls.insecureSkipVerify
      )
        return undefined;
      const memo = SERVER_INFO.get(was);
      if (!memo || (servers ?? p.servers).get(was.metadata.name) !== memo.info) return undefined;
      const info = serverInfoOf(now, memo.vdirs);
      SERVER_INFO.set(now, { vdirs: memo.vdirs, info });
      (servers ??= new Map(p.servers)).set(info.name, info);
      (serverObjs ??= new Map(prev.serverObjs)).set(info.name, now);
    } else if (was.kind === "VirtualDirectory" && now.kind === "VirtualDirectory") {
      // Server and service decide acceptance (version, role, one directory per service).
      if (was.spec.server !== now.spec.server || was.spec.service !== now.spec.service) return undefined;
      const srvObj = (serverObjs ?? prev.serverObjs).get(was.spec.server);
      const memo = srvObj && SERVER_INFO.get(srvObj);
      const old = VDIR_INFO.get(was);
      const cur = (servers ?? p.servers).get(was.spec.server);
      if (!memo || !old || !cur || memo.info !== cur || cur.vdirs.get(was.spec.service) !== old) return undefined;
      let info = VDIR_INFO.get(now);
      if (!info) VDIR_INFO.set(now, (info = vdirInfo(now)));
      const list = memo.vdirs.map((v) => (v === old ? info : v));
      const next = serverInfoOf(srvObj, list);
      SERVER_INFO.set(srvObj, { vdirs: list, info: next });
      (servers ??= new Map(p.servers)).set(next.name, next);
      if ((old.externalUrl === null) !== (info.externalUrl === null)) touchedSites.add(next.site);
    } else if (was.kind === "MailboxDatabase" && now.kind === "MailboxDatabase") {
      // A failover: the active server moves among accepted Mailbox servers; the names stay.
      const prevInfo = DB_INFO.get(was);
      if (!prevInfo || p.databases.get(was.metadata.name) !== prevInfo) return undefined;
      if ((now.spec.databaseName ?? now.metadata.name) !== prevInfo.databaseName) return undefined;
      // OABs are checked across databases (R-OAB-2): a change to them rebuilds everything.
      if (JSON.stringify(was.spec.offlineAddressBooks ?? []) !== JSON.stringify(now.spec.offlineAddressBooks ?? [])) return undefined;
      const srv = servers ?? p.servers;
      if (!srv.get(now.spec.activeServer)?.mailbox || !now.spec.servers.every((x) => srv.has(x))) return undefined;
      let info = DB_INFO.get(now);
      if (!info) DB_INFO.set(now, (info = databaseInfoOf(now)));
      (databases ??= new Map(p.databases)).set(info.name, info);
      dbIndex ??= new Map(p.dbIndex);
      for (const k of [info.name.toLowerCase(), info.databaseName.toLowerCase()]) dbIndex.set(k, info);
    } else return undefined;
  }
  let sites: Map<string, SiteInfo> | undefined;
  for (const name of touchedSites) {
    const site = prev.siteObjs.get(name)!;
    const was = p.sites.get(name)!;
    const internetFacing = site.spec.internetFacing ?? was.servers.some((n) => [...servers!.get(n)!.vdirs.values()].some((v) => v.externalUrl !== null));
    if (internetFacing === was.internetFacing) continue;
    const info: SiteInfo = Object.freeze({ ...was, internetFacing });
    SITE_INFO.set(site, info);
    (sites ??= new Map(p.sites)).set(name, info);
  }
  const parts: TopologyParts = {
    ...p,
    ...(sites ? { sites } : {}),
    ...(servers ? { servers } : {}),
    ...(databases ? { databases } : {}),
    ...(dbIndex ? { dbIndex } : {}),
  };
  return { topology: assemble(parts), parts, siteObjs: prev.siteObjs, serverObjs: serverObjs ?? prev.serverObjs };
}

/** The full build over objects in build order. */
function buildFrom(objects: readonly ApiObject[]): Built {
  const problems: Problem[] = [];
  const report = (
    obj: ApiObject,
    field: string,
    reason: string,
    message: string,
    severity: Problem["severity"] = "error",
    condition = severity === "error" ? "ResolvedRefs" : reason,
  ) =>
    problems.push({
      kind: obj.kind,
      name: obj.metadata.name,
      ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
      field,
      reason,
      message,
      severity,
      condition,
    });

  // Duplicate names: the organisation is one name space per kind (like Active Directory). The
  // objects are sorted by kind then name, so a duplicate follows the object it repeats.
  const byKind: { [K in Kind]: Extract<ApiObject, { kind: K }>[] } = { ADSite: [], ClientAccessServer: [], VirtualDirectory: [], MailboxDatabase: [], OrganizationRelationship: [] };
  let prev: ApiObject | undefined;
  for (const o of objects) {
    if (prev && prev.kind === o.kind && prev.metadata.name === o.metadata.name) {
      report(
        o,
        "metadata.name",
        "DuplicateName",
        `${o.kind} "${o.metadata.name}" is defined more than once (also in namespace "${prev.metadata.namespace ?? "default"}")`,
        "error",
        "Accepted",
      );
      continue;
    }
    prev = o;
    (byKind[o.kind] as ApiObject[]).push(o);
  }
  const ofKind = <K extends Kind>(k: K) => byKind[k];

  // Sites.
  const siteObjs = new Map<string, ADSite>();
  for (const s of ofKind("ADSite")) siteObjs.set(s.metadata.name, s);

  // Servers.
  const serverObjs = new Map<string, ClientAccessServer>();
  for (const s of ofKind("ClientAccessServer")) {
    if (!siteObjs.has(s.spec.site)) {
      report(s, "spec.site", "UnknownSite", `ADSite "${s.spec.site}" does not exist`);
      continue;
    }
    if (s.spec.tls.insecureSkipVerify) {
      report(
        s,
        "spec.tls.insecureSkipVerify",
        "InsecureSkipVerify",
        "upstream certificate validation is off for this server (R-GEN-3: as Exchange does, but the certificate's name, expiry and trust are not checked)",
        "warning",
        "InsecureUpstreamTLS",
      );
    }
    serverObjs.set(s.metadata.name, s);
  }

  // Virtual directories.
  // A server's directories in input order (at most one per service: a short list, no Map needed).
  const vdirsByServer = new Map<string, VirtualDirectoryInfo[]>();
  for (const v of ofKind("VirtualDirectory")) {
    const srv = serverObjs.get(v.spec.server);
    if (!srv) {
      report(v, "spec.server", "UnknownServer", `ClientAccessServer "${v.spec.server}" does not exist or was not accepted`);
      continue;
    }
    const ver = Number(srv.spec.exchangeVersion) as VersionNumber;
    const min = SERVICE_MIN_VERSION[v.spec.service];
    const max = SERVICE_MAX_VERSION[v.spec.service];
    if (ver < min || (max !== undefined && ver > max)) {
      report(
        v,
        "spec.service",
        "ServiceNotOnVersion",
        `service ${v.spec.service} does not exist on Exchange ${srv.spec.exchangeVersion} (server "${srv.metadata.name}")`,
        "error",
        "Accepted",
      );
      continue;
    }
    const isCas = srv.spec.roles.includes("ClientAccess");
    // Exchange 2003 back-end servers and 2013+ Mailbox servers host their own directories.
    if (!isCas && ver !== 2003 && ver < 2013) {
      report(
        v,
        "spec.server",
        "ServerNotClientAccess",
        `server "${srv.metadata.name}" has no ClientAccess role, so it cannot host a ${v.spec.service} virtual directory`,
      );
      continue;
    }
    let byService = vdirsByServer.get(srv.metadata.name);
    if (!byService) vdirsByServer.set(srv.metadata.name, (byService = []));
    const existing = byService.find((x) => x.service === v.spec.service);
    if (existing) {
      report(
        v,
        "spec.service",
        "DuplicateService",
        `server "${srv.metadata.name}" already has a ${v.spec.service} virtual directory ("${existing.name}")`,
        "error",
        "Accepted",
      );
      continue;
    }
    let info = VDIR_INFO.get(v);
    if (!info) VDIR_INFO.set(v, (info = vdirInfo(v)));
    byService.push(info);
  }

  const servers = new Map<string, ServerInfo>();
  for (const [name, s] of serverObjs) {
    const list = vdirsByServer.get(name) ?? [];
    const memo = SERVER_INFO.get(s);
    if (memo && memo.vdirs.length === list.length && memo.vdirs.every((v, i) => v === list[i])) {
      servers.set(name, memo.info);
      continue;
    }
    const info = serverInfoOf(s, list);
    SERVER_INFO.set(s, { vdirs: list, info });
    servers.set(name, info);
  }

  // Databases.
  const databases = new Map<string, DatabaseInfo>();
  const dbIndex = new Map<string, DatabaseInfo>();
  for (const d of ofKind("MailboxDatabase")) {
    const active = servers.get(d.spec.activeServer);
    if (!active) {
      report(d, "spec.activeServer", "UnknownServer", `server "${d.spec.activeServer}" does not exist or was not accepted`);
      continue;
    }
    if (!active.mailbox) {
      report(d, "spec.activeServer", "NotMailboxServer", `server "${active.name}" has no Mailbox role`);
      continue;
    }
    const missing = d.spec.servers.findIndex((s) => !servers.has(s));
    if (missing >= 0) {
      report(
        d,
        `spec.servers.${missing}`,
        "UnknownServer",
        `server "${d.spec.servers[missing]}" does not exist or was not accepted`,
      );
      continue;
    }
    let info = DB_INFO.get(d);
    if (!info) DB_INFO.set(d, (info = databaseInfoOf(d)));
    const keys = [info.name.toLowerCase(), info.databaseName.toLowerCase()];
    const clash = keys.map((k) => dbIndex.get(k)).find((x) => x !== undefined);
    if (clash) {
      report(
        d,
        "spec.databaseName",
        "DuplicateName",
        `database name "${info.databaseName}" is already used by MailboxDatabase "${clash.name}"`,
        "error",
        "Accepted",
      );
      continue;
    }
    databases.set(info.name, info);
    for (const k of keys) dbIndex.set(k, info);
  }
  // R-OAB-2: one OAB GUID is generated in one database; generation in a mailbox is Exchange 2013+.
  const oabOwner = new Map<string, string>();
  for (const d of [...ofKind("MailboxDatabase")].sort((a, b) => cmp(a.metadata.name, b.metadata.name))) {
    const info = databases.get(d.metadata.name);
    if (!info || info.offlineAddressBooks.length === 0) continue;
    (d.spec.offlineAddressBooks ?? []).forEach((o, i) => {
      const owner = oabOwner.get(o.guid.toLowerCase());
      if (owner !== undefined && owner !== info.name) {
        report(d, `spec.offlineAddressBooks.${i}.guid`, "DuplicateOfflineAddressBook", `R-OAB-2: offline address book ${o.guid} is already generated in MailboxDatabase "${owner}"; downloads go there and this entry is ignored`, "warning", "OfflineAddressBooksResolved");
      } else oabOwner.set(o.guid.toLowerCase(), info.name);
    });
    const active = servers.get(info.activeServer);
    if (active && active.version < 2013) {
      report(d, "spec.offlineAddressBooks", "OfflineAddressBookBefore2013", `R-OAB-2: OABs are generated in a mailbox from Exchange 2013; this database's active server ${active.name} runs Exchange ${active.version}, so its OAB downloads are served by the receiving site (R-OAB-1)`, "warning", "OfflineAddressBooksResolved");
    }
  }

  // Sites, with derived facts.
  const sites = new Map<string, SiteInfo>();
  const hostToSite = new Map<string, string>();
  const bySite = new Map<string, ServerInfo[]>();
  for (const x of servers.values()) {
    let l = bySite.get(x.site);
    if (!l) bySite.set(x.site, (l = []));
    l.push(x);
  }
  for (const [name, s] of siteObjs) {
    const members = bySite.get(name) ?? [];
    const names = members.map((m) => m.name).sort();
    const casServers = members.filter((m) => m.clientAccess).map((m) => m.name).sort();
    const mailboxServers = members.filter((m) => m.mailbox).map((m) => m.name).sort();
    let hasExternal = false;
    for (const m of members) for (const v of m.vdirs.values()) if (v.externalUrl !== null) hasExternal = true;
    const hostnames: string[] = [];
    s.spec.hostnames.forEach((h, i) => {
      const host = normaliseHost(h);
      const owner = hostToSite.get(host);
      if (owner !== undefined) {
        report(
          s,
          `spec.hostnames.${i}`,
          "DuplicateHostname",
          `host name "${host}" already belongs to ADSite "${owner}"; ignored here`,
          "warning",
          "HostnameConflict",
        );
        return;
      }
      hostToSite.set(host, name);
      hostnames.push(host);
    });
    if (mailboxServers.length > 0 && casServers.length === 0) {
      // R-GEN-6: the site stays in the topology so decisions can name it, but it is not valid.
      report(
        s,
        "spec",
        "NoClientAccessServer",
        `R-GEN-6: site has Mailbox servers (${mailboxServers.join(", ")}) but no Client Access server`,
        "error",
        "Accepted",
      );
    }
    // R-EAS-9: in one site every (2010+) ActiveSync directory has an ExternalUrl or none has; otherwise
    // devices bounce between 451 answers depending on the server they reach.
    const easWith: string[] = [];
    const easWithout: string[] = [];
    for (const m of members) {
      // Only 2010+ CAS answer 451 (R-EAS-4); a 2007 CAS is reached through its InternalUrl /Proxy (R-EAS-2).
      const v = m.clientAccess && m.version >= 2010 ? m.vdirs.get("ActiveSync") : undefined;
      if (v) (v.externalUrl !== null ? easWith : easWithout).push(v.name);
    }
    if (easWith.length > 0 && easWithout.length > 0) {
      report(
        s,
        "spec",
        "ActiveSyncExternalUrlMismatch",
        `R-EAS-9: ActiveSync directories of this site disagree on ExternalUrl (set on ${easWith.sort().join(", ")}; not on ${easWithout.sort().join(", ")}): devices bounce between 451 answers; set it on all or none`,
        "warning",
        "ActiveSyncExternalUrlConsistent",
      );
    }
    const internetFacing = s.spec.internetFacing ?? hasExternal;
    const prev = SITE_INFO.get(s);
    if (
      prev &&
      prev.internetFacing === internetFacing &&
      sameStrings(prev.hostnames, hostnames) &&
      sameStrings(prev.servers, names) &&
      sameStrings(prev.casServers, casServers) &&
      sameStrings(prev.mailboxServers, mailboxServers)
    ) {
      sites.set(name, prev); // unchanged: keep the object (and its memoised hash)
      continue;
    }
    const info: SiteInfo = Object.freeze({
      name,
      hostnames: Object.freeze(hostnames),
      internetFacing,
      description: s.spec.description,
      servers: Object.freeze(names),
      casServers: Object.freeze(casServers),
      mailboxServers: Object.freeze(mailboxServers),
    });
    SITE_INFO.set(s, info);
    sites.set(name, info);
  }

  // R-HYB-1: organisation relationships; a domain claimed by two is a warning (the first by name keeps it).
  const orgRels = new Map<string, OrganizationRelationshipInfo>();
  const domainOwner = new Map<string, string>();
  for (const o of [...ofKind("OrganizationRelationship")].sort((a, b) => cmp(a.metadata.name, b.metadata.name))) {
    if (o.spec.enabled === false) continue;
    const domains: string[] = [];
    o.spec.domainNames.forEach((d, i) => {
      const dl = d.toLowerCase().replace(/\.$/, "");
      const owner = domainOwner.get(dl);
      if (owner !== undefined && owner !== o.metadata.name) {
        report(o, `spec.domainNames.${i}`, "DuplicateDomain", `R-HYB-1: domain ${d} already belongs to OrganizationRelationship "${owner}"; remote mailboxes there use that one`, "warning", "DomainsResolved");
      } else {
        domainOwner.set(dl, o.metadata.name);
        if (!domains.includes(dl)) domains.push(dl);
      }
    });
    orgRels.set(o.metadata.name, Object.freeze({
      name: o.metadata.name,
      domainNames: Object.freeze(domains),
      targetOwaUrl: o.spec.targetOwaUrl,
      targetActiveSyncUrl: o.spec.targetActiveSyncUrl,
      ...(o.spec.targetAutodiscoverEpr ? { targetAutodiscoverEpr: o.spec.targetAutodiscoverEpr } : {}),
    }));
  }

  const parts: TopologyParts = {
    organizationRelationships: orgRels,
    sites: sortedMap(sites),
    servers: sortedMap(servers),
    databases: sortedMap(databases),
    hostToSite: sortedMap(hostToSite),
    dbIndex,
    problems: Object.freeze(problems),
  };
  return { topology: assemble(parts), parts, siteObjs, serverObjs };
}

/** What a Topology is made of (its maps and indexes), kept per build for the replacement path. */
interface TopologyParts {
  readonly organizationRelationships: ReadonlyMap<string, OrganizationRelationshipInfo>;
  readonly sites: ReadonlyMap<string, SiteInfo>;
  readonly servers: ReadonlyMap<string, ServerInfo>;
  readonly databases: ReadonlyMap<string, DatabaseInfo>;
  readonly hostToSite: ReadonlyMap<string, string>;
  readonly dbIndex: ReadonlyMap<string, DatabaseInfo>;
  readonly problems: readonly Problem[];
}

function serverInfoOf(s: ClientAccessServer, list: readonly VirtualDirectoryInfo[]): ServerInfo {
  const version = Number(s.spec.exchangeVersion) as VersionNumber;
  return Object.freeze({
    name: s.metadata.name,
    site: s.spec.site,
    fqdn: s.spec.fqdn.toLowerCase().replace(/\.$/, ""),
    exchangeVersion: s.spec.exchangeVersion,
    version,
    versionClass: versionClassOf(version),
    clientAccess: s.spec.roles.includes("ClientAccess"),
    mailbox: s.spec.roles.includes("Mailbox"),
    address: s.spec.address ?? s.spec.fqdn.toLowerCase().replace(/\.$/, ""),
    internalNLBBypassUrl: s.spec.internalNLBBypassUrl,
    maintenance: s.spec.maintenance,
    insecureSkipVerify: s.spec.tls.insecureSkipVerify,
    // Only when set: the topology version (a hash of these objects) stays what it was without it.
    ...(s.spec.tls.caBundle !== undefined ? { caBundle: s.spec.tls.caBundle } : {}),
    vdirs: sortedMap(new Map(list.map((v) => [v.service, v] as const))),
  });
}

/** The Topology over its parts: content version, look-ups. */
function assemble(p: TopologyParts): Topology {
  const { sites, servers, databases, hostToSite, dbIndex } = p;
  // Names, FQDNs, and NetBIOS names (first FQDN label) where that label is unambiguous. Built on
  // the first findServer call: the decision engine looks servers up, the xDS change path does not.
  let serverIndexCache: Map<string, ServerInfo> | undefined;
  const serverIndex = (): Map<string, ServerInfo> => {
    if (serverIndexCache) return serverIndexCache;
    const index = new Map<string, ServerInfo>();
    const labelCount = new Map<string, number>();
    for (const s of servers.values()) {
      const label = s.fqdn.split(".")[0];
      labelCount.set(label, (labelCount.get(label) ?? 0) + 1);
    }
    for (const s of servers.values()) {
      index.set(s.name.toLowerCase(), s);
      index.set(s.fqdn, s);
    }
    for (const s of servers.values()) {
      const label = s.fqdn.split(".")[0];
      if (labelCount.get(label) === 1 && !index.has(label)) index.set(label, s);
    }
    return (serverIndexCache = index);
  };

  // Content version: a hash over each site's, server's (with its virtual directories) and
  // database's own content hash, in name order; unchanged pieces reuse their memoised hash.
  const vh = createHash("sha256");
  for (const [n, x] of sortedEntries(sites)) vh.update(`site ${n} ${infoHash(x, () => x)}\n`);
  for (const [n, x] of sortedEntries(servers)) vh.update(`server ${n} ${infoHash(x, () => ({ ...x, vdirs: [...x.vdirs.values()] }))}\n`);
  for (const [n, x] of sortedEntries(databases)) vh.update(`database ${n} ${infoHash(x, () => x)}\n`);
  for (const [n, x] of sortedEntries(p.organizationRelationships)) vh.update(`orgrel ${n} ${JSON.stringify(x)}\n`);
  const version = vh.digest("hex").slice(0, 16);

  const topology: Topology = {
    version,
    sites,
    servers,
    databases,
    hostToSite,
    organizationRelationships: p.organizationRelationships,
    problems: p.problems,
    findDatabase: (name) => dbIndex.get(commonNameOf(name).toLowerCase()) ?? dbIndex.get(name.trim().toLowerCase()),
    findServer: (name) => serverIndex().get(commonNameOf(name).toLowerCase()),
    siteForHost: (host) => hostToSite.get(normaliseHost(host)),
  };
  return Object.freeze(topology);
}

/** Lower-case, without port or trailing dot; IPv6 literals keep their brackets. */
export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.lastIndexOf(":");
  if (colon >= 0 && h.indexOf(":") === colon) h = h.slice(0, colon);
  return h.replace(/\.$/, "");
}

function databaseInfoOf(d: MailboxDatabase): DatabaseInfo {
  return Object.freeze({
    name: d.metadata.name,
    databaseName: d.spec.databaseName ?? d.metadata.name,
    activeServer: d.spec.activeServer,
    servers: Object.freeze([...d.spec.servers].sort()),
    offlineAddressBooks: Object.freeze(
      (d.spec.offlineAddressBooks ?? []).map((o) => Object.freeze({ guid: o.guid.toLowerCase(), ...(o.name ? { name: o.name } : {}), generatingMailbox: o.generatingMailbox })),
    ),
  });
}

function vdirInfo(v: VirtualDirectory): VirtualDirectoryInfo {
  const s = v.spec;
  return Object.freeze({
    name: v.metadata.name,
    server: s.server,
    service: s.service,
    internalUrl: s.internalUrl,
    externalUrl: s.externalUrl ?? null,
    internalAuthenticationMethods: Object.freeze([...s.internalAuthenticationMethods]),
    externalAuthenticationMethods: Object.freeze([...s.externalAuthenticationMethods]),
    crossSiteRedirectType: s.crossSiteRedirectType ?? "Manual",
    exchange2003Url: s.exchange2003Url,
    legacyRedirectType: s.legacyRedirectType ?? "Silent",
    redirectToOptimalOwaServer: s.redirectToOptimalOwaServer ?? true,
    internalConnectionSettings: Object.freeze([...(s.internalConnectionSettings ?? [])]),
    externalConnectionSettings: Object.freeze([...(s.externalConnectionSettings ?? [])]),
  });
}

function sortedEntries<K extends string, V>(m: ReadonlyMap<K, V>): [K, V][] {
  const e = [...m.entries()];
  let sorted = true;
  for (let i = 1; i < e.length && sorted; i++) sorted = e[i - 1]![0] <= e[i]![0];
  return sorted ? e : e.sort(([a], [b]) => cmp(a, b));
}

/** The map itself when its keys are already in order (maps built here usually are), else a sorted copy. */
function sortedMap<K extends string, V>(m: ReadonlyMap<K, V>): ReadonlyMap<K, V> {
  let prev: K | undefined;
  let sorted = true;
  for (const k of m.keys()) {
    if (prev !== undefined && prev > k) {
      sorted = false;
      break;
    }
    prev = k;
  }
  return sorted ? m : new Map(sortedEntries(m));
}

export type { MailboxDatabase };
