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
   * @param resources every resource, any type; duplicate names within a type are an error. Only
   *   name, typeUrl, encoded bytes and version are kept (not e.g. the translator's JSON form), so a
   *   snapshot holds little more than the bytes it serves.
   * @param topologyVersion the Topology the resources were built from (FleetProgress reports it).
   */
  constructor(
    resources: Iterable<XdsResource>,
    readonly topologyVersion: string,
  ) {
    const groups = new Map<string, SnapshotResource[]>();
    for (const r of resources) {
      let list = groups.get(r.typeUrl);
      if (!list) groups.set(r.typeUrl, (list = []));
      list.push({ name: r.name, typeUrl: r.typeUrl, encoded: r.encoded, version: r.version || resourceVersion(r) });
    }
    for (const [typeUrl, list] of groups) {
      // Sorted by name: deterministic responses and a version that does not depend on input order.
      let sorted = true;
      for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1]!.name <= list[i]!.name;
      if (!sorted) list.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
      const m = new Map<string, SnapshotResource>();
      const parts: string[] = [];
      for (const r of list) {
        if (m.has(r.name)) throw new Error(`snapshot: duplicate ${typeUrl} resource "${r.name}"`);
        m.set(r.name, r);
        parts.push(r.name, r.version);
      }
      this.byType.set(typeUrl, m);
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
