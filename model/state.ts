// What a sidecar needs to decide: the current Topology and health view. In standalone mode it comes
// from the control plane in-process; in a cluster, over xDS under a custom type URL (stateless sidecars).
import type { Topology } from "./topology/types.js";
import type { HealthView } from "./health.js";

export interface GatewayState {
  readonly topology: Topology;
  readonly health: HealthView;
  /** Topology version plus health generation: changes whenever either changes. */
  readonly version: string;
}

export interface StateSource {
  /** Undefined until the first state arrives (the sidecar is not ready until then). */
  current(): GatewayState | undefined;
  /** Called on every new state; returns an unsubscribe function. */
  subscribe(listener: (state: GatewayState) => void): () => void;
}

/** A StateSource that is set by hand: standalone mode and tests. */
export class SettableStateSource implements StateSource {
  private state: GatewayState | undefined;
  private readonly listeners = new Set<(s: GatewayState) => void>();

  constructor(initial?: GatewayState) {
    this.state = initial;
  }
  current(): GatewayState | undefined {
    return this.state;
  }
  set(state: GatewayState): void {
    this.state = state;
    for (const l of this.listeners) l(state);
  }
  subscribe(listener: (state: GatewayState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
