// FleetProgress (operator/xds/fleet.ts): per topology version, has every connected client ACKed
// every type it subscribes to? The status writer turns that into the Programmed condition.
import type { FleetProgress } from "../fleet.js";
import type { SnapshotCache } from "./cache.js";
import type { XdsMetrics } from "./metrics.js";
import type { AdsStream } from "./stream.js";

export class FleetTracker implements FleetProgress {
  private acked: string | undefined;
  private readonly listeners = new Set<(v: string) => void>();
  private readonly order = new Map<string, number>();
  private seq = 0;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly streams: () => Iterable<AdsStream>,
    private readonly metrics: XdsMetrics,
  ) {}

  ackedTopologyVersion(): string | undefined {
    return this.acked;
  }

  onAcked(listener: (topologyVersion: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Remember the order topology versions were set in, so "newest" has a meaning across streams. */
  noteSnapshot(topologyVersion: string): void {
    if (!this.order.has(topologyVersion)) this.order.set(topologyVersion, this.seq++);
  }

  /**
   * Recompute. Each stream remembers the newest topology it had fully ACKed; the fleet is at the
   * oldest of those. With no client connected nothing is reported: "programmed" needs an Envoy that
   * applied the configuration, not an empty fleet.
   */
  update(): void {
    let fleet: string | undefined;
    let any = false;
    for (const s of this.streams()) {
      if (!s.node) continue; // not yet identified: has not subscribed to anything
      const snap = this.cache.getSnapshot(s.group ?? "");
      if (snap && s.caughtUp(snap)) s.ackedTopology = snap.topologyVersion;
      if (s.ackedTopology === undefined) return;
      if (fleet === undefined || (this.order.get(s.ackedTopology) ?? -1) < (this.order.get(fleet) ?? -1)) fleet = s.ackedTopology;
      any = true;
    }
    if (!any || fleet === undefined || fleet === this.acked) return;
    if (this.acked !== undefined) this.metrics.fleetAcked.remove({ topology_version: this.acked });
    this.acked = fleet;
    this.metrics.fleetAcked.set({ topology_version: fleet }, 1);
    for (const l of this.listeners) l(fleet);
  }
}
