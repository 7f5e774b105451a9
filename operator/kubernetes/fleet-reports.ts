// Fleet progress across operator replicas. Every replica serves ADS, and an Envoy (or sidecar) talks
// to whichever replica the Service gave it; only the leader writes status. So each replica publishes
// what its own ADS streams have ACKed in a small Lease of its own (labelled for the leader's lease,
// the progress in an annotation, renewed like a leader lease), and every replica watches those
// Leases. The leader's Programmed then counts the Envoys on every replica, not only its own. A
// replica that stops renewing (crashed, partitioned) is dropped after the report's lease duration
// (measured on this replica's clock from when a change was last seen, as client-go's elector does, so
// clock skew between nodes does not matter); its Envoys reconnect to another replica and are counted
// there.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { z } from "zod";
import { createHash } from "node:crypto";
import { Informer } from "./informer.js";
import { microTime } from "./leader.js";
import { isStatus, resourcePath, type KubeRest } from "./rest.js";

export const FLEET_REPORT_LABEL = "casgateway.io/fleet-report";
export const FLEET_PROGRESS_ANNOTATION = "casgateway.io/fleet-progress";

/** One replica's ADS progress, as published. */
export const ReplicaProgress = z.object({
  /** Newest topology version every counted client on that replica has ACKed. */
  acked: z.string().max(200).optional(),
  /** Identified clients on that replica, and those left out for not ACKing in time. */
  clients: z.number().int().nonnegative(),
  lagging: z.number().int().nonnegative(),
  ackTimeoutMs: z.number().int().nonnegative(),
});
export type ReplicaProgress = z.infer<typeof ReplicaProgress>;

const ReportLease = z.looseObject({
  metadata: z.looseObject({
    name: z.string(),
    resourceVersion: z.string().optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.looseObject({ holderIdentity: z.string().nullable().optional(), leaseDurationSeconds: z.number().optional() }).optional(),
});

export interface FleetReportsOptions {
  readonly kc: KubeConfig;
  readonly rest: KubeRest;
  readonly log: Logger;
  readonly namespace: string;
  /** The leader lease's name: reports are labelled with it, so two installations do not mix. */
  readonly leaseName: string;
  readonly identity: string;
  /** A report not renewed for this long is ignored (default 30 s). */
  readonly ttlMs?: number;
  /** Renewal period (default ttl / 3); a change is published at once. */
  readonly heartbeatMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

/** A Lease name for this replica's report: DNS-1123 subdomain, at most 253 characters. */
export function reportLeaseName(leaseName: string, identity: string): string {
  const clean = identity.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "");
  const name = `${leaseName}-fleet-${clean || "x"}`;
  if (name.length <= 253 && clean === identity) return name;
  // Another identity could clean to the same name: add a hash of the real one.
  const h = createHash("sha256").update(identity).digest("hex").slice(0, 10);
  return `${name.slice(0, 253 - 11)}-${h}`;
}

export class FleetReports {
  private readonly informer: Informer;
  private readonly name: string;
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;
  /** Report name → when its resourceVersion last changed here (local clock), and its content. */
  private readonly seen = new Map<string, { rv: string; at: number; identity: string; progress: ReplicaProgress | undefined }>();
  private local: ReplicaProgress | undefined;
  private published: { rv: string | undefined; text: string } | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private publishing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastFresh = "";
  private onChange: () => void = () => {};

  constructor(private readonly o: FleetReportsOptions) {
    this.name = reportLeaseName(o.leaseName, o.identity);
    this.ttlMs = o.ttlMs ?? 30_000;
    this.heartbeatMs = o.heartbeatMs ?? Math.max(200, Math.floor(this.ttlMs / 3));
    this.informer = new Informer({
      kc: o.kc,
      rest: o.rest,
      group: "coordination.k8s.io",
      version: "v1",
      plural: "leases",
      namespace: o.namespace,
      labelSelector: `${FLEET_REPORT_LABEL}=${o.leaseName}`,
      log: o.log,
      backoffInitialMs: o.backoffInitialMs,
      backoffMaxMs: o.backoffMaxMs,
    });
  }

  /** Start watching the reports and renewing ours; `onChange` runs when the set of fresh reports changes. */
  start(onChange: () => void): void {
    this.onChange = onChange;
    this.informer.onChange(() => this.observe());
    this.informer.start();
    this.heartbeat = setInterval(() => {
      this.publish(true);
      this.observe();
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** This replica's progress changed: publish it (at once; writes coalesce). */
  setLocal(p: ReplicaProgress): void {
    this.local = p;
    this.publish(false);
  }

  /** Fresh reports of the other replicas. */
  others(): Array<{ identity: string; progress: ReplicaProgress }> {
    const now = Date.now();
    const out: Array<{ identity: string; progress: ReplicaProgress }> = [];
    for (const [name, s] of this.seen) {
      if (name === this.name || !s.progress || now - s.at > this.ttlMs) continue;
      out.push({ identity: s.identity, progress: s.progress });
    }
    return out.sort((a, b) => a.identity.localeCompare(b.identity));
  }

  /** Stop renewing and delete our report (graceful shutdown: the leader stops counting us at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.publishing;
    await this.informer.stop();
    await this.o.rest
      .request("DELETE", resourcePath("coordination.k8s.io", "v1", "leases", this.o.namespace, this.name), undefined, undefined, undefined, { timeoutMs: 2000 })
      .catch((err: unknown) => {
        if (!isStatus(err, 404)) this.o.log.warn({ err: String(err) }, "could not delete this replica's fleet report");
      });
  }

  private observe(): void {
    const now = Date.now();
    const present = new Set<string>();
    for (const raw of this.informer.list()) {
      const p = ReportLease.safeParse(raw);
      if (!p.success) continue;
      const m = p.data.metadata;
      present.add(m.name);
      const rv = m.resourceVersion ?? "";
      const prev = this.seen.get(m.name);
      if (prev && prev.rv === rv) continue;
      let progress: ReplicaProgress | undefined;
      try {
        const parsed = ReplicaProgress.safeParse(JSON.parse(m.annotations?.[FLEET_PROGRESS_ANNOTATION] ?? "null"));
        progress = parsed.success ? parsed.data : undefined;
      } catch {
        progress = undefined;
      }
      if (!progress) this.o.log.warn({ lease: m.name }, `fleet report without a readable ${FLEET_PROGRESS_ANNOTATION} annotation ignored`);
      this.seen.set(m.name, { rv, at: now, identity: p.data.spec?.holderIdentity ?? m.name, progress });
    }
    for (const k of [...this.seen.keys()]) if (!present.has(k)) this.seen.delete(k);
    const fresh = JSON.stringify(this.others());
    if (fresh !== this.lastFresh) {
      this.lastFresh = fresh;
      this.onChange();
    }
  }

  private publish(renew: boolean): void {
    if (this.stopped || !this.local) return;
    if (this.publishing) {
      this.again = true;
      return;
    }
    const text = JSON.stringify(this.local);
    if (!renew && this.published?.text === text) return;
    this.publishing = this.write(text)
      .catch((err: unknown) => {
        this.published = undefined; // read again next time
        this.o.log.warn({ err: String(err) }, "could not publish this replica's fleet progress; retrying at the next renewal");
      })
      .finally(() => {
        this.publishing = undefined;
        if (this.again) {
          this.again = false;
          this.publish(false);
        }
      });
  }

  private async write(text: string): Promise<void> {
    const path = resourcePath("coordination.k8s.io", "v1", "leases", this.o.namespace, this.name);
    const body = (rv: string | undefined) => ({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: this.name,
        namespace: this.o.namespace,
        ...(rv ? { resourceVersion: rv } : {}),
        labels: { [FLEET_REPORT_LABEL]: this.o.leaseName, "app.kubernetes.io/managed-by": "cas-gateway-operator" },
        annotations: { [FLEET_PROGRESS_ANNOTATION]: text },
      },
      spec: { holderIdentity: this.o.identity, leaseDurationSeconds: Math.ceil(this.ttlMs / 1000), renewTime: microTime(new Date()) },
    });
    const call = { timeoutMs: Math.max(1000, this.heartbeatMs) };
    let rv = this.published?.rv;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const res = ReportLease.parse(
          rv === undefined
            ? await this.o.rest.post(resourcePath("coordination.k8s.io", "v1", "leases", this.o.namespace), body(undefined), call)
            : await this.o.rest.put(path, body(rv), call),
        );
        this.published = { rv: res.metadata.resourceVersion, text };
        return;
      } catch (err) {
        // 404: ours was deleted; 409 on create: it exists (a restart); 409 on update: stale version.
        if (isStatus(err, 404)) rv = undefined;
        else if (isStatus(err, 409)) {
          const cur = await this.o.rest.get<unknown>(path, undefined, call).catch(() => undefined);
          rv = cur ? ReportLease.safeParse(cur).data?.metadata.resourceVersion : undefined;
        } else throw err;
      }
    }
    throw new Error(`lease ${this.o.namespace}/${this.name}: kept conflicting`);
  }
}
