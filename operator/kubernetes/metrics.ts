// Prometheus metrics of the Kubernetes side of the operator.
import { Counter, Gauge, Registry } from "prom-client";

export class KubernetesMetrics {
  readonly relists: Counter<"resource" | "reason">;
  readonly snapshots: Counter;
  readonly objects: Gauge<"kind" | "state">;
  readonly statusPatches: Counter<"result">;
  readonly events: Counter<"result">;
  readonly leader: Gauge;
  readonly statusRetries: Counter;
  readonly watchResumes: Counter<"resource">;

  constructor(readonly registry: Registry = new Registry()) {
    const r = [registry];
    this.relists = new Counter({ name: "casgw_k8s_relists_total", help: "Full lists per resource, by reason (initial, gone = 410, error).", labelNames: ["resource", "reason"], registers: r });
    this.snapshots = new Counter({ name: "casgw_k8s_snapshots_total", help: "Snapshots produced by the Kubernetes provider.", registers: r });
    this.objects = new Gauge({ name: "casgw_k8s_objects", help: "casgateway.io objects seen, by kind and state (accepted, rejected).", labelNames: ["kind", "state"], registers: r });
    this.statusPatches = new Counter({ name: "casgw_k8s_status_patches_total", help: "Status subresource patches, by result (ok, conflict, notfound, error).", labelNames: ["result"], registers: r });
    this.events = new Counter({ name: "casgw_k8s_events_total", help: "Kubernetes Events recorded, by result.", labelNames: ["result"], registers: r });
    this.statusRetries = new Counter({ name: "casgw_k8s_status_retries_total", help: "Status writes scheduled for a retry after a transient failure (5xx, 429, timeout).", registers: r });
    this.watchResumes = new Counter({ name: "casgw_k8s_watch_resumes_total", help: "Watches re-opened from the last resourceVersion after an error other than 410 (no relist).", labelNames: ["resource"], registers: r });
    this.leader = new Gauge({ name: "casgw_k8s_leader", help: "1 while this replica holds the leader lease (writes status).", registers: r });
  }
}
