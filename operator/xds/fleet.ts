// How the rest of the operator learns what the Envoy fleet has applied: the ADS server reports, per
// topology version, when every connected Envoy has ACKed the resources built from it. The status
// writer turns that into the Programmed condition.
export interface FleetProgress {
  /** The newest topology version every connected Envoy has ACKed for all types, if any. */
  ackedTopologyVersion(): string | undefined;
  /**
   * Called whenever ackedTopologyVersion or the summary changes (undefined: nothing ACKed yet, but
   * clients came or went); returns an unsubscribe function.
   */
  onAcked(listener: (topologyVersion: string | undefined) => void): () => void;
  /** Who counted: connected clients, and those left out for not ACKing in time (absent on test doubles). */
  summary?(): FleetSummary;
}

export interface FleetSummary {
  /** Identified clients (they subscribed) on this ADS server. */
  readonly clients: number;
  /**
   * Clients left out of the fleet's progress because they have not ACKed the current snapshot
   * within the ACK time bound: a client that subscribes and never ACKs cannot hold status back.
   */
  readonly lagging: number;
  /** The bound (ms). */
  readonly ackTimeoutMs: number;
}
