// An immutable set of resources for one node group, with a content-derived version per type (so a
// control-plane restart that rebuilds the same resources gives Envoy the same versions: no churn).
//
// Built from the previous snapshot when there is one: resources that are the very same objects as
// before (the translator's caches return unchanged resources as the same objects) are matched by
// identity in one merge pass, and only the changed ones are hashed and indexed. The name index
// shares the previous snapshot's Map and keeps the differences beside it, so a one-resource change
// costs O(changes) hashing, not a rebuild of a 10,000-entry Map.
import { createHash } from "node:crypto";
import { hashHex } from "../../../model/hash.js";
import { isMarkedSortedByName, resourceVersion, type XdsResource } from "./resources.js";

export interface SnapshotResource extends XdsResource {
  readonly version: string;
}

/**
 * A read-only name → resource index in name order: a shared base Map plus this snapshot's
 * differences from it. Compacted into a fresh Map when the differences grow.
 */
class ResourceIndex implements ReadonlyMap<string, SnapshotResource> {
  constructor(
    /** Every resource, sorted by name (iteration order). */
    private readonly list: readonly SnapshotResource[],
    private readonly base: ReadonlyMap<string, SnapshotResource>,
    /** Names whose resource differs from base's (undefined: not in this index). */
    private readonly diff: ReadonlyMap<string, SnapshotResource | undefined>,
  ) {}

  static of(list: readonly SnapshotResource[]): ResourceIndex {
    const m = new Map<string, SnapshotResource>();
    for (const r of list) m.set(r.name, r);
    return new ResourceIndex(list, m, new Map());
  }

  /** This index with `changes` applied (name → new resource, or undefined for a removal). */
  derive(list: readonly SnapshotResource[], changes: ReadonlyMap<string, SnapshotResource | undefined>): ResourceIndex {
    if (this.diff.size + changes.size > Math.max(64, list.length >> 4)) return ResourceIndex.of(list);
    const diff = new Map(this.diff);
    for (const [n, r] of changes) {
      if (r === this.base.get(n)) diff.delete(n);
      else diff.set(n, r);
    }
    return new ResourceIndex(list, this.base, diff);
  }

  get size(): number {
    return this.list.length;
  }
  get(name: string): SnapshotResource | undefined {
    return this.diff.has(name) ? this.diff.get(name) : this.base.get(name);
  }
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  values(): MapIterator<SnapshotResource> {
    return this.list.values();
  }
  *keys(): MapIterator<string> {
    for (const r of this.list) yield r.name;
  }
  *entries(): MapIterator<[string, SnapshotResource]> {
    for (const r of this.list) yield [r.name, r];
  }
  [Symbol.iterator](): MapIterator<[string, SnapshotResource]> {
    return this.entries();
  }
  forEach(cb: (value: SnapshotResource, key: string, map: ReadonlyMap<string, SnapshotResource>) => void, thisArg?: unknown): void {
    for (const r of this.list) cb.call(thisArg, r, r.name, this);
  }
}

/** Per-type content hash: XOR of a 64-bit hash of each (name, version), so it updates per change. */
class SetHash {
  constructor(
    public hi = 0,
    public lo = 0,
  ) {}
  toggle(r: SnapshotResource): void {
    const d = createHash("sha1").update(r.name).update("\0").update(r.version).digest();
    this.hi = (this.hi ^ d.readUInt32BE(0)) >>> 0;
    this.lo = (this.lo ^ d.readUInt32BE(4)) >>> 0;
  }
  hex(): string {
    return this.hi.toString(16).padStart(8, "0") + this.lo.toString(16).padStart(8, "0");
  }
}

interface TypeEntry {
  readonly list: readonly SnapshotResource[];
  readonly index: ResourceIndex;
  readonly hash: SetHash;
  readonly version: string;
  /** When derived from the previous snapshot: the names that differ from it (undefined value: removed). */
  readonly changes?: ReadonlyMap<string, SnapshotResource | undefined>;
}

/**
 * A snapshot's resources: any iterable, or lists of them, where a list the translator marked
 * sorted (markSortedByName) is taken as one type's resources without re-checking its order.
 */
export type SnapshotInput = Iterable<XdsResource> | { readonly lists: readonly Iterable<XdsResource>[] };

/** Changes between a snapshot and the one it was derived from. */
export type SnapshotChanges = ReadonlyMap<string, SnapshotResource | undefined>;
const NO_CHANGES: SnapshotChanges = new Map();

const byNameCmp = (x: { name: string }, y: { name: string }) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0);

export class Snapshot {
  private readonly byType = new Map<string, TypeEntry>();
  /** The snapshot this one was derived from (weak: a chain of old snapshots is not kept alive). */
  private readonly from: WeakRef<Snapshot> | undefined;

  /**
   * @param resources every resource, any type; duplicate names within a type are an error.
   *   Resources that carry a version are kept as given (their bytes are shared with the
   *   translator's cache); others are copied with a version computed from their bytes.
   * @param topologyVersion the Topology the resources were built from (FleetProgress reports it).
   * @param previous the snapshot this one replaces, if any (only makes building cheaper: the
   *   result is the same with or without it).
   */
  constructor(
    resources: SnapshotInput,
    readonly topologyVersion: string,
    previous?: Snapshot,
  ) {
    this.from = previous ? new WeakRef(previous) : undefined;
    const groups = new Map<string, SnapshotResource[]>();
    /** Groups taken as given: one list marked sorted (markSortedByName) per type. */
    const marked = new Set<string>();
    const add = (r: XdsResource) => {
      let list = groups.get(r.typeUrl);
      if (!list) groups.set(r.typeUrl, (list = []));
      else if (marked.delete(r.typeUrl)) groups.set(r.typeUrl, (list = [...list]));
      list.push(r.version ? r : { name: r.name, typeUrl: r.typeUrl, encoded: r.encoded, version: resourceVersion(r) });
    };
    for (const part of "lists" in resources ? resources.lists : [resources]) {
      const first = Array.isArray(part) ? (part as readonly XdsResource[])[0] : undefined;
      if (first && isMarkedSortedByName(part as readonly XdsResource[]) && !groups.has(first.typeUrl)) {
        groups.set(first.typeUrl, part as SnapshotResource[]);
        marked.add(first.typeUrl);
      } else for (const r of part) add(r);
    }
    for (const [typeUrl, list] of groups) {
      // Sorted by name: deterministic responses and a version that does not depend on input order.
      let sorted = true;
      if (!marked.has(typeUrl)) for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1]!.name < list[i]!.name;
      if (!sorted) {
        list.sort(byNameCmp);
        for (let i = 1; i < list.length; i++)
          if (list[i - 1]!.name === list[i]!.name) throw new Error(`snapshot: duplicate ${typeUrl} resource "${list[i]!.name}"`);
      }
      const before = previous?.byType.get(typeUrl);
      this.byType.set(typeUrl, before ? derive(typeUrl, before, list) : fresh(typeUrl, list));
    }
  }

  /** Version of all resources of one type (the SotW version_info, the Delta system_version_info). */
  version(typeUrl: string): string {
    return this.byType.get(typeUrl)?.version ?? hashHex(typeUrl).slice(0, 16);
  }

  /**
   * The resources of one type that differ between `earlier` and this snapshot (name → resource, or
   * undefined where removed), when that is known cheaply: `earlier` is this snapshot or the one it
   * was derived from. Undefined otherwise (the caller compares in full).
   */
  changesSince(earlier: Snapshot, typeUrl: string): SnapshotChanges | undefined {
    if (earlier === this) return NO_CHANGES;
    if (this.from?.deref() !== earlier) return undefined;
    const e = this.byType.get(typeUrl);
    const before = earlier.byType.get(typeUrl);
    if (!e && !before) return NO_CHANGES;
    return e && before ? e.changes : undefined;
  }

  resources(typeUrl: string): ReadonlyMap<string, SnapshotResource> {
    return this.byType.get(typeUrl)?.index ?? EMPTY;
  }

  typeUrls(): string[] {
    return [...this.byType.keys()];
  }

  /** Number of resources of every type. */
  size(): number {
    let n = 0;
    for (const e of this.byType.values()) n += e.list.length;
    return n;
  }
}

const EMPTY: ReadonlyMap<string, SnapshotResource> = new Map();

const typeVersion = (typeUrl: string, h: SetHash) => hashHex(typeUrl, h.hex()).slice(0, 16);

function fresh(typeUrl: string, list: readonly SnapshotResource[]): TypeEntry {
  const hash = new SetHash();
  for (const r of list) hash.toggle(r);
  return { list, index: ResourceIndex.of(list), hash, version: typeVersion(typeUrl, hash) };
}

/** Merge the previous sorted list with the new one: identical objects are skipped at pointer cost. */
function derive(typeUrl: string, before: TypeEntry, list: readonly SnapshotResource[]): TypeEntry {
  const old = before.list;
  const changes = new Map<string, SnapshotResource | undefined>();
  const hash = new SetHash(before.hash.hi, before.hash.lo);
  let i = 0;
  let j = 0;
  while (i < old.length || j < list.length) {
    const a = old[i];
    const b = list[j];
    if (a !== undefined && a === b) {
      i++;
      j++;
      continue;
    }
    if (a !== undefined && b !== undefined && a.name === b.name) {
      i++;
      j++;
      if (a.version === b.version && a.encoded === b.encoded) continue;
      hash.toggle(a);
      hash.toggle(b);
      changes.set(b.name, b);
    } else if (b === undefined || (a !== undefined && a.name < b.name)) {
      i++;
      hash.toggle(a!);
      changes.set(a!.name, undefined);
    } else {
      j++;
      hash.toggle(b);
      changes.set(b.name, b);
    }
  }
  if (changes.size === 0 && old.length === list.length) return { list, index: before.index, hash, version: before.version, changes };
  return { list, index: before.index.derive(list, changes), hash, version: typeVersion(typeUrl, hash), changes };
}
