// How the rest of the operator learns what the Envoy fleet has applied: the ADS server reports, per
// topology version, when every connected Envoy has ACKed the resources built from it. The status
// writer turns that into the Programmed condition.
export interface FleetProgress {
  /** The newest topology version every connected Envoy has ACKed for all types, if any. */
  ackedTopologyVersion(): string | undefined;
  /** Called whenever ackedTopologyVersion changes; returns an unsubscribe function. */
  onAcked(listener: (topologyVersion: string) => void): () => void;
}
