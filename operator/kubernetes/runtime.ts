// The Kubernetes side of the operator, assembled: provider (informers) → topology → status writer,
// with leader election deciding who writes, and FleetProgress (from the ADS server, when there is
// one) deciding Programmed. Every replica reads and hands topologies on (to serve xDS); only the
// leader writes status and events.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Provider, ProviderSnapshot } from "../provider/types.js";
import { buildTopology } from "../../model/topology/build.js";
import type { Problem, Topology } from "../../model/topology/types.js";
import type { FleetProgress } from "../xds/fleet.js";
import { indexProblems, type FleetNote, type ProgrammedState } from "../status/conditions.js";
import { FleetReports, type ReplicaProgress } from "./fleet-reports.js";
import { ProgrammedTracker } from "../status/programmed.js";
import { LeaderElector } from "./leader.js";
import { KubernetesMetrics } from "./metrics.js";
import { KubernetesProvider, type ConfigMapKeyRef, type KubernetesSnapshot } from "./provider.js";
import { StatusWriter, recordKey, type StatusDesired } from "./status-writer.js";

export interface KubernetesOperatorOptions {
  readonly kc: KubeConfig;
  readonly log: Logger;
  /** Watch one namespace, or all when undefined. */
  readonly namespace?: string;
  readonly identity: string;
  readonly lease: { readonly namespace: string; readonly name: string; readonly durationMs?: number; readonly renewDeadlineMs?: number; readonly retryPeriodMs?: number };
  readonly mailboxConfigMap?: ConfigMapKeyRef;
  readonly metrics?: KubernetesMetrics;
  /** Set when an ADS server runs in this process; without it Programmed is Unknown (NoFleetProgress). */
  readonly fleet?: FleetProgress;
  /** Every new topology (all replicas), e.g. to hand to the xDS translator. */
  readonly onTopology?: (topology: Topology, snapshot: KubernetesSnapshot) => void;
  readonly debounceMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly now?: () => Date;
  /**
   * Publish this replica's ADS progress and count the other replicas' (operator/kubernetes/
   * fleet-reports.ts); on by default when `fleet` is set. `false` counts only this replica's streams.
   */
  readonly fleetReports?: { readonly ttlMs?: number; readonly heartbeatMs?: number } | false;
  /** Status writes: request timeout and backoff after transient failures (see StatusWriterOptions). */
  readonly statusRetry?: { readonly requestTimeoutMs?: number; readonly initialMs?: number; readonly maxMs?: number };
}

export class KubernetesOperator {
  readonly provider: KubernetesProvider;
  readonly elector: LeaderElector;
  readonly writer: StatusWriter;
  readonly metrics: KubernetesMetrics;
  readonly tracker = new ProgrammedTracker();
  private snapshot: KubernetesSnapshot | undefined;
  private topology: Topology | undefined;
  private unsubscribeFleet: (() => void) | undefined;
  private synced = false;
  private readonly snapshotListeners = new Set<(s: KubernetesSnapshot) => void>();
  readonly fleetReports: FleetReports | undefined;
  private fleetNote: FleetNote | undefined;

  constructor(private readonly o: KubernetesOperatorOptions) {
    this.metrics = o.metrics ?? new KubernetesMetrics();
    this.provider = new KubernetesProvider({
      kc: o.kc,
      namespace: o.namespace,
      log: o.log.child({ component: "k8s-provider" }),
      mailboxConfigMap: o.mailboxConfigMap,
      debounceMs: o.debounceMs,
      watchTimeoutSeconds: o.watchTimeoutSeconds,
      backoffInitialMs: o.backoffInitialMs,
      backoffMaxMs: o.backoffMaxMs,
      onRelist: (resource, reason) => this.metrics.relists.inc({ resource, reason }),
      onResume: (resource) => this.metrics.watchResumes.inc({ resource }),
    });
    this.writer = new StatusWriter({
      rest: this.provider.rest,
      log: o.log.child({ component: "status-writer" }),
      identity: o.identity,
      metrics: this.metrics,
      now: o.now,
      requestTimeoutMs: o.statusRetry?.requestTimeoutMs,
      retryInitialMs: o.statusRetry?.initialMs,
      retryMaxMs: o.statusRetry?.maxMs,
    });
    if (o.fleet && o.fleetReports !== false) {
      this.fleetReports = new FleetReports({
        kc: o.kc,
        rest: this.provider.rest,
        log: o.log.child({ component: "fleet-reports" }),
        namespace: o.lease.namespace,
        leaseName: o.lease.name,
        identity: o.identity,
        ttlMs: o.fleetReports?.ttlMs,
        heartbeatMs: o.fleetReports?.heartbeatMs,
        backoffInitialMs: o.backoffInitialMs,
        backoffMaxMs: o.backoffMaxMs,
      });
    }
    this.elector = new LeaderElector({
      rest: this.provider.rest,
      namespace: o.lease.namespace,
      name: o.lease.name,
      identity: o.identity,
      leaseDurationMs: o.lease.durationMs,
      renewDeadlineMs: o.lease.renewDeadlineMs,
      retryPeriodMs: o.lease.retryPeriodMs,
      log: o.log.child({ component: "leader-election" }),
      onStartedLeading: () => {
        this.metrics.leader.set(1);
        this.writer.setLeader(true);
      },
      onStoppedLeading: () => {
        this.metrics.leader.set(0);
        this.writer.setLeader(false);
      },
    });
  }

  /** Ready once every informer has listed once. */
  get ready(): boolean {
    return this.synced;
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  current(): { snapshot: KubernetesSnapshot; topology: Topology } | undefined {
    return this.snapshot && this.topology ? { snapshot: this.snapshot, topology: this.topology } : undefined;
  }

  /**
   * The Kubernetes snapshots as a plain Provider, for the control plane (operator/controlplane.ts):
   * it gets the same validated objects this operator writes status for, without a second set of
   * watches. start() resolves once a first snapshot has been delivered.
   */
  snapshotProvider(): Provider {
    let listener: ((s: KubernetesSnapshot) => void) | undefined;
    return {
      start: async (onSnapshot: (s: ProviderSnapshot) => void) => {
        listener = (s) => onSnapshot(s);
        this.snapshotListeners.add(listener);
        if (this.snapshot) onSnapshot(this.snapshot);
      },
      stop: async () => {
        if (listener) this.snapshotListeners.delete(listener);
      },
    };
  }

  async start(): Promise<void> {
    if (this.o.fleet) {
      this.unsubscribeFleet = this.o.fleet.onAcked(() => {
        this.fleetReports?.setLocal(this.localProgress());
        this.observeFleet();
        this.pushStatuses();
      });
    }
    if (this.fleetReports) {
      this.fleetReports.setLocal(this.localProgress());
      this.fleetReports.start(() => {
        this.observeFleet();
        this.pushStatuses();
      });
    }
    this.elector.start();
    await this.provider.startK8s((s) => this.onSnapshot(s));
    this.synced = true;
  }

  /** Graceful: stop writing, release the lease, close watches. */
  async stop(): Promise<void> {
    this.unsubscribeFleet?.();
    await this.fleetReports?.stop();
    await this.elector.stop();
    this.writer.setLeader(false);
    await this.writer.idle();
    await this.provider.stop();
    this.provider.rest.close();
  }

  private onSnapshot(s: KubernetesSnapshot) {
    this.metrics.snapshots.inc();
    // Status echoes and unrelated churn leave the validated objects as they were (same references
    // from the validation cache): keep the topology instead of rebuilding it.
    const prev = this.snapshot;
    const same = prev !== undefined && this.topology !== undefined && sameObjects(prev.objects, s.objects);
    const topology = same ? this.topology! : buildTopology(s.objects);
    this.snapshot = s;
    this.topology = topology;
    const errorKeys = new Set(topology.problems.filter((p) => p.severity === "error").map((p) => recordKey(p)));
    const byKey = new Map(s.records.map((r) => [recordKey(r), r]));
    if (!same) this.tracker.observeTopology(
      topology.version,
      s.objects
        .map((o) => byKey.get(recordKey({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name })))
        .filter((r): r is NonNullable<typeof r> => r !== undefined && !errorKeys.has(recordKey(r)))
        .map((r) => ({ key: recordKey(r), revision: `${r.uid ?? ""}/${r.generation ?? r.resourceVersion ?? ""}` })),
    );
    this.observeFleet();
    for (const kind of ["ADSite", "ClientAccessServer", "VirtualDirectory", "MailboxDatabase", "OrganizationRelationship"] as const) {
      const all = s.records.filter((r) => r.kind === kind).length;
      const rejected = s.rejections.filter((r) => r.kind === kind).length;
      this.metrics.objects.set({ kind, state: "accepted" }, all - rejected);
      this.metrics.objects.set({ kind, state: "rejected" }, rejected);
    }
    try {
      // Called for every snapshot (Secrets may have changed while the topology did not).
      this.o.onTopology?.(topology, s);
      for (const l of this.snapshotListeners) l(s);
    } catch (err) {
      this.o.log.error({ err }, "snapshot consumer failed");
    }
    this.pushStatuses();
  }

  /** This replica's ADS progress (a test double without summary() counts as one client once it has ACKed). */
  private localProgress(): ReplicaProgress {
    const f = this.o.fleet!;
    const acked = f.ackedTopologyVersion();
    const sum = f.summary?.() ?? { clients: acked === undefined ? 0 : 1, lagging: 0, ackTimeoutMs: 0 };
    return { ...(acked !== undefined ? { acked } : {}), clients: sum.clients, lagging: sum.lagging, ackTimeoutMs: sum.ackTimeoutMs };
  }

  /** Combine this replica's progress with the other replicas' reports and feed the Programmed tracker. */
  private observeFleet(): void {
    if (!this.o.fleet) return;
    const all = [this.localProgress(), ...(this.fleetReports?.others().map((r) => r.progress) ?? [])];
    this.tracker.observeAck(fleetAcked(all, (v) => this.tracker.rankOf(v)));
    const counted = all.filter((r) => r.clients > 0);
    this.fleetNote = {
      clients: counted.reduce((n, r) => n + r.clients, 0),
      lagging: counted.reduce((n, r) => n + r.lagging, 0),
      replicas: counted.length,
      ackTimeoutMs: Math.max(0, ...counted.map((r) => r.ackTimeoutMs)),
    };
  }

  private pushStatuses() {
    const s = this.snapshot;
    const t = this.topology;
    if (!s || !t) return;
    const problemsFor = indexProblems([...t.problems, ...s.refProblems] satisfies Problem[]);
    const rejections = new Map(s.rejections.map((r) => [recordKey(r), r]));
    const items: StatusDesired[] = s.records.map((record) => {
      const k = recordKey(record);
      const programmed: ProgrammedState = this.o.fleet ? { ...this.tracker.stateOf(k), ...(this.fleetNote ? { fleet: this.fleetNote } : {}) } : { state: "NoFleet" };
      return { record, rejection: rejections.get(k), problems: problemsFor(record), programmed };
    });
    this.writer.update(items);
  }
}

/**
 * Where the whole fleet is: the oldest version ACKed on any replica that has clients counted (its
 * streams minus those left out for not ACKing in time). A replica whose counted clients have not
 * ACKed anything, or ACKed a version this replica never produced (cannot be ordered), holds the
 * fleet back: better Pending a moment longer than Programmed too early.
 */
export function fleetAcked(replicas: readonly ReplicaProgress[], rank: (version: string) => number | undefined): string | undefined {
  let oldest: { version: string; rank: number } | undefined;
  for (const r of replicas) {
    if (r.clients - r.lagging <= 0) continue;
    if (r.acked === undefined) return undefined;
    const k = rank(r.acked);
    if (k === undefined) return undefined;
    if (!oldest || k < oldest.rank) oldest = { version: r.acked, rank: k };
  }
  return oldest?.version;
}

function sameObjects(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
