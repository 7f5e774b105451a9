// An immutable set of resources for one node group, with a content-derived version per type (so a
// control-plane restart that rebuilds the same resources gives Envoy the same versions: no churn).
import { hashHex, resourceVersion, type XdsResource } from "./resources.js";

export interface SnapshotResource extends XdsResource {
  readonly version: string;
}

export class Snapshot {
  private readonly byType = new Map<string, ReadonlyMap<string, SnapshotResource>>();
  private readonly versions = new Map<string, string>();

  /**
   * @param resources every resource, any type; duplicate names within a type are an error.
   * @param topologyVersion the Topology the resources were built from (FleetProgress reports it).
   */
  constructor(
    resources: Iterable<XdsResource>,
    readonly topologyVersion: string,
  ) {
    const groups = new Map<string, Map<string, SnapshotResource>>();
    for (const r of resources) {
      let m = groups.get(r.typeUrl);
      if (!m) groups.set(r.typeUrl, (m = new Map()));
      if (m.has(r.name)) throw new Error(`snapshot: duplicate ${r.typeUrl} resource "${r.name}"`);
      m.set(r.name, r.version ? (r as SnapshotResource) : { ...r, version: resourceVersion(r) });
    }
    for (const [typeUrl, m] of groups) {
      const names = [...m.keys()].sort();
      const sorted = new Map(names.map((n) => [n, m.get(n)!]));
      this.byType.set(typeUrl, sorted);
      const parts: string[] = [];
      for (const n of names) parts.push(n, sorted.get(n)!.version);
      this.versions.set(typeUrl, hashHex(typeUrl, parts.join("\n")).slice(0, 16));
    }
  }

  /** Version of all resources of one type (the SotW version_info, the Delta system_version_info). */
  version(typeUrl: string): string {
    return this.versions.get(typeUrl) ?? hashHex(typeUrl).slice(0, 16);
  }

  resources(typeUrl: string): ReadonlyMap<string, SnapshotResource> {
    return this.byType.get(typeUrl) ?? EMPTY;
  }

  typeUrls(): string[] {
    return [...this.byType.keys()];
  }

  /** Number of resources of every type. */
  size(): number {
    let n = 0;
    for (const m of this.byType.values()) n += m.size;
    return n;
  }
}

const EMPTY: ReadonlyMap<string, SnapshotResource> = new Map();
