// Per-topology indexes the engine needs on every request, computed once per Topology object
// (topologies are immutable, so a WeakMap keyed by the object is a safe cache).
import type { Service } from "../../crds/index.js";
import type { DatabaseInfo, OfflineAddressBookInfo, ServerInfo, SiteInfo, Topology, VersionClass, VirtualDirectoryInfo } from "../../model/topology/types.js";

export const CLASSES_NEWEST_FIRST: readonly VersionClass[] = ["2013+", "2010", "2007", "2003"];

export interface ServiceIndex {
  /** Pool members by version class: client access servers (and Exchange 2003 back-ends) with this service's directory, by name. */
  readonly byClass: ReadonlyMap<VersionClass, readonly ServerInfo[]>;
  /** Classes present, newest first. */
  readonly classes: readonly VersionClass[];
  /** Every member, newest class first then by name: the order the receiving directory is chosen in. */
  readonly ordered: readonly ServerInfo[];
}

export interface SiteIndex {
  readonly info: SiteInfo;
  readonly services: ReadonlyMap<Service, ServiceIndex>;
}

export interface TopologyIndex {
  readonly sites: ReadonlyMap<string, SiteIndex>;
  readonly siteCount: number;
  /** Host header exactly as configured (lower-case, no port) → site: the fast path before siteForHost. */
  readonly hostExact: ReadonlyMap<string, string>;
  /** Database as a directory names it → database (memo over topology.findDatabase, bounded). */
  findDatabase(name: string): ReturnType<Topology["findDatabase"]>;
  /** Server by name (exact first, then topology.findServer, bounded memo). */
  findServer(name: string): ServerInfo | undefined;
  /** R-OAB-2: lower-case OAB GUID → the OAB and the database whose mailbox generates it. */
  readonly offlineAddressBooks: ReadonlyMap<string, { readonly oab: OfflineAddressBookInfo; readonly database: DatabaseInfo }>;
}

const MEMO_LIMIT = 4096;

function memo<V>(lookup: (k: string) => V): (k: string) => V {
  const m = new Map<string, V>();
  return (k) => {
    let v = m.get(k);
    if (v === undefined && !m.has(k)) {
      v = lookup(k);
      // Keys come from directories and cookies; keep the memo bounded.
      if (m.size >= MEMO_LIMIT) m.clear();
      m.set(k, v);
    }
    return v as V;
  };
}

const cache = new WeakMap<Topology, TopologyIndex>();

const EMPTY_SERVICE: ServiceIndex = { byClass: new Map(), classes: [], ordered: [] };

export function serviceIndex(site: SiteIndex, service: Service): ServiceIndex {
  return site.services.get(service) ?? EMPTY_SERVICE;
}

/** Whether a server belongs in a site's load-balanced pool (R-LB-6: same site only). */
function isPoolMember(s: ServerInfo): boolean {
  return s.clientAccess || s.version === 2003;
}

export function topologyIndex(topology: Topology): TopologyIndex {
  let idx = cache.get(topology);
  if (idx) return idx;
  const sites = new Map<string, SiteIndex>();
  for (const info of topology.sites.values()) {
    const services = new Map<Service, { byClass: Map<VersionClass, ServerInfo[]> }>();
    for (const name of info.servers) {
      const s = topology.servers.get(name);
      if (!s || !isPoolMember(s)) continue;
      for (const svc of s.vdirs.keys()) {
        let e = services.get(svc);
        if (!e) services.set(svc, (e = { byClass: new Map() }));
        let list = e.byClass.get(s.versionClass);
        if (!list) e.byClass.set(s.versionClass, (list = []));
        list.push(s);
      }
    }
    const done = new Map<Service, ServiceIndex>();
    for (const [svc, e] of services) {
      const classes = CLASSES_NEWEST_FIRST.filter((c) => e.byClass.has(c));
      for (const list of e.byClass.values()) list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      done.set(svc, { byClass: e.byClass, classes, ordered: classes.flatMap((c) => e.byClass.get(c) ?? []) });
    }
    sites.set(info.name, { info, services: done });
  }
  const hostExact = new Map(topology.hostToSite);
  const dbMemo = memo((n) => topology.findDatabase(n));
  const srvMemo = memo((n) => topology.servers.get(n) ?? topology.findServer(n));
  // R-OAB-2: OAB GUID → the database whose mailbox generates it (the first by name, as build.ts warns).
  const oabs = new Map<string, { oab: OfflineAddressBookInfo; database: DatabaseInfo }>();
  for (const d of [...topology.databases.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    for (const oab of d.offlineAddressBooks) if (!oabs.has(oab.guid)) oabs.set(oab.guid, { oab, database: d });
  }
  idx = { sites, siteCount: sites.size, hostExact, findDatabase: dbMemo, findServer: srvMemo, offlineAddressBooks: oabs };
  cache.set(topology, idx);
  return idx;
}

export function vdirOf(s: ServerInfo, service: Service): VirtualDirectoryInfo | undefined {
  return s.vdirs.get(service);
}
