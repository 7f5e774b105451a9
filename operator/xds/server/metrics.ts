// prom-client metrics of the ADS server, in a registry the caller owns (standalone merges it into /metrics).
import { Counter, Gauge, Registry } from "prom-client";

export class XdsMetrics {
  readonly streams: Gauge<"mode">;
  readonly responses: Counter<"mode" | "type">;
  readonly acks: Counter<"mode" | "type">;
  readonly nacks: Counter<"mode" | "type">;
  readonly snapshots: Counter<"group">;
  readonly fleetAcked: Gauge<"topology_version">;
  /** Requests refused by the per-client bounds (no type label: an unknown type_url never becomes a series). */
  readonly refused: Counter<"mode" | "reason">;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.streams = new Gauge({ name: "cas_xds_streams", help: "Open ADS streams", labelNames: ["mode"], registers });
    this.responses = new Counter({
      name: "cas_xds_responses_total",
      help: "Discovery responses sent",
      labelNames: ["mode", "type"],
      registers,
    });
    this.acks = new Counter({ name: "cas_xds_acks_total", help: "ACKs received", labelNames: ["mode", "type"], registers });
    this.nacks = new Counter({
      name: "cas_xds_nacks_total",
      help: "NACKs received (the rejected version is kept out; the last ACKed stays in force)",
      labelNames: ["mode", "type"],
      registers,
    });
    this.snapshots = new Counter({
      name: "cas_xds_snapshots_total",
      help: "Snapshots set in the cache",
      labelNames: ["group"],
      registers,
    });
    this.refused = new Counter({
      name: "cas_xds_requests_refused_total",
      help: "Discovery requests ignored or streams closed by the per-client bounds (reason: unknown_type | rate | bad_request)",
      labelNames: ["mode", "reason"],
      registers,
    });
    this.fleetAcked = new Gauge({
      name: "cas_xds_fleet_acked_topology",
      help: "1 for the newest topology version every connected client has ACKed",
      labelNames: ["topology_version"],
      registers,
    });
  }
}
