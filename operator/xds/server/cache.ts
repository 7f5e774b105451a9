// The snapshot cache: which Snapshot each node group should have. Kept apart from the SotW and Delta
// servers (as in go-control-plane): the control plane writes snapshots, servers watch them.
import { createHash } from "node:crypto";
import type { Snapshot } from "./snapshot.js";

/** The parts of an Envoy Node the cache cares about. */
export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
}

/** Maps a node to its group; the default is node.cluster. */
export type NodeGroupFn = (node: NodeInfo) => string;

/** Snapshot for nodes whose group has none of its own. */
export const DEFAULT_GROUP = "*";

export const byCluster: NodeGroupFn = (node) => node.cluster || DEFAULT_GROUP;

/**
 * Spread nodes over `buckets` groups by a stable hash of node.id ("shard-0" … "shard-<n-1>"), e.g.
 * to roll a new snapshot out to a fraction of the fleet first.
 */
export function byNodeIdHash(buckets: number): NodeGroupFn {
  if (!Number.isInteger(buckets) || buckets < 1) throw new Error(`byNodeIdHash: buckets must be a positive integer, got ${buckets}`);
  return (node) => `shard-${createHash("sha256").update(node.id).digest().readUInt32BE(0) % buckets}`;
}

type Watcher = (group: string, snapshot: Snapshot) => void;

export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Set<Watcher>();

  constructor(readonly nodeGroup: NodeGroupFn = byCluster) {}

  /** Set the snapshot for a group (DEFAULT_GROUP: for every group without its own) and notify. */
  setSnapshot(group: string, snapshot: Snapshot): void {
    if (this.snapshots.get(group) === snapshot) return;
    this.snapshots.set(group, snapshot);
    for (const w of this.watchers) w(group, snapshot);
  }

  clearSnapshot(group: string): void {
    this.snapshots.delete(group);
  }

  /** The snapshot in force for a group: its own, else the default one. */
  getSnapshot(group: string): Snapshot | undefined {
    return this.snapshots.get(group) ?? this.snapshots.get(DEFAULT_GROUP);
  }

  groups(): string[] {
    return [...this.snapshots.keys()].sort();
  }

  /** Called with (group, snapshot) on every setSnapshot; returns an unsubscribe function. */
  watch(watcher: Watcher): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }
}
