// FleetProgress (operator/xds/fleet.ts): per topology version, has every connected client ACKed
// every type it subscribes to? The status writer turns that into the Programmed condition.
// A client that has not caught up with its current snapshot within `ackTimeoutMs` is left out
// ("lagging") until it does: one stuck or hostile stream must not hold every object at Pending. The
// Programmed condition's message says how many were left out.
import type { FleetProgress, FleetSummary } from "../fleet.js";
import type { SnapshotCache } from "./cache.js";
import type { XdsMetrics } from "./metrics.js";
import type { AdsStream } from "./stream.js";

export const DEFAULT_ACK_TIMEOUT_MS = 60_000;

export class FleetTracker implements FleetProgress {
  private acked: string | undefined;
  private readonly listeners = new Set<(v: string | undefined) => void>();
  private readonly order = new Map<string, number>();
  private seq = 0;
  /** Since when each stream has been behind its current snapshot. */
  private readonly behindSince = new WeakMap<AdsStream, number>();
  private last: FleetSummary;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly streams: () => Iterable<AdsStream>,
    private readonly metrics: XdsMetrics,
    private readonly ackTimeoutMs = DEFAULT_ACK_TIMEOUT_MS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.last = { clients: 0, lagging: 0, ackTimeoutMs };
  }

  ackedTopologyVersion(): string | undefined {
    return this.acked;
  }

  summary(): FleetSummary {
    return this.last;
  }

  onAcked(listener: (topologyVersion: string | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Remember the order topology versions were set in, so "newest" has a meaning across streams. */
  noteSnapshot(topologyVersion: string): void {
    if (!this.order.has(topologyVersion)) this.order.set(topologyVersion, this.seq++);
  }

  /**
   * Recompute. Each stream remembers the newest topology it had fully ACKed; the fleet is at the
   * oldest of those, among streams not lagging. With no client connected nothing is reported:
   * "programmed" needs an Envoy that applied the configuration, not an empty fleet.
   */
  update(): void {
    const now = this.now();
    let fleet: string | undefined;
    let any = false;
    let blocked = false;
    let clients = 0;
    let lagging = 0;
    let nextDeadline: number | undefined;
    for (const s of this.streams()) {
      if (!s.node) continue; // not yet identified: has not subscribed to anything
      clients++;
      const snap = this.cache.getSnapshot(s.group ?? "");
      if (snap && s.caughtUp(snap)) {
        s.ackedTopology = snap.topologyVersion;
        this.behindSince.delete(s);
      } else if (snap) {
        const since = this.behindSince.get(s) ?? now;
        this.behindSince.set(s, since);
        if (now - since >= this.ackTimeoutMs) {
          lagging++;
          continue;
        }
        nextDeadline = Math.min(nextDeadline ?? Infinity, since + this.ackTimeoutMs);
      }
      if (s.ackedTopology === undefined) {
        blocked = true;
        continue;
      }
      if (fleet === undefined || (this.order.get(s.ackedTopology) ?? -1) < (this.order.get(fleet) ?? -1)) fleet = s.ackedTopology;
      any = true;
    }
    this.schedule(nextDeadline, now);
    const summaryChanged = clients !== this.last.clients || lagging !== this.last.lagging;
    if (summaryChanged) this.last = { clients, lagging, ackTimeoutMs: this.ackTimeoutMs };
    const versionChanged = !blocked && any && fleet !== undefined && fleet !== this.acked;
    if (versionChanged) {
      if (this.acked !== undefined) this.metrics.fleetAcked.remove({ topology_version: this.acked });
      this.acked = fleet;
      this.metrics.fleetAcked.set({ topology_version: fleet! }, 1);
    }
    if (versionChanged || summaryChanged) for (const l of this.listeners) l(this.acked);
  }

  /** Re-check when the first behind stream reaches the bound (no ACK will come to trigger it). */
  private schedule(deadline: number | undefined, now: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (deadline === undefined) return;
    this.timer = setTimeout(() => this.update(), Math.max(0, deadline - now) + 5);
    this.timer.unref();
  }

  /** Stop the re-check timer (server closing). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
