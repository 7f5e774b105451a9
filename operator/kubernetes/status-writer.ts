// Writes status.conditions of casgateway.io objects through the /status subresource (JSON merge
// patch; spec is never sent, so GitOps tools see no drift). Only the leader writes. A patch is sent
// only when the computed status differs from what the API server has, carries the object's
// resourceVersion (optimistic concurrency), and on 409 Conflict is recomputed from a fresh read
// (bounded retries). A transient failure (5xx, 429, timeout, connection error) is retried for that
// object alone with exponential backoff (jittered, capped), never sooner than the server's
// Retry-After, without waiting for some other change to come along. Rejections and broken references
// are also recorded as Warning Events.
import type { Logger } from "pino";
import { API_VERSION, KIND_PLURALS, Status, type Condition, type Kind } from "../../crds/index.js";
import type { Problem } from "../../model/topology/types.js";
import { computeStatus, sameStatus, statusFingerprint, type ObjectStatus, type ProgrammedState, type SubjectRejection } from "../status/conditions.js";
import type { KubernetesMetrics } from "./metrics.js";
import type { ObjectRecord } from "./provider.js";
import { KubeApiError, isStatus, isTransient, resourcePath, type KubeRest } from "./rest.js";

export interface StatusWriterOptions {
  readonly rest: KubeRest;
  readonly log: Logger;
  /** Events' reportingInstance / source.host: the pod name. */
  readonly identity: string;
  readonly component?: string;
  readonly metrics?: KubernetesMetrics;
  readonly now?: () => Date;
  readonly maxConflictRetries?: number;
  /** Patches in flight at once (default 4). */
  readonly concurrency?: number;
  /** Timeout of one status request (ms, default 10 000): a hung request counts as a transient failure. */
  readonly requestTimeoutMs?: number;
  /** Backoff after a transient failure: first pause and cap (ms, default 500 and 30 000). */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** Longest Retry-After honoured (ms, default 300 000): a larger value is clipped to this. */
  readonly retryAfterMaxMs?: number;
}

interface Desired {
  readonly record: ObjectRecord;
  readonly rejection: SubjectRejection | undefined;
  readonly problems: readonly Problem[];
  readonly programmed: ProgrammedState;
}

export const recordKey = (r: { kind: Kind; namespace?: string; name: string }) => `${r.kind}/${r.namespace ?? ""}/${r.name}`;

const parseStatus = (s: unknown): ObjectStatus | undefined => {
  const p = Status.safeParse(s);
  return p.success ? { ...(p.data.observedGeneration !== undefined ? { observedGeneration: p.data.observedGeneration } : {}), conditions: p.data.conditions ?? [] } : undefined;
};

export class StatusWriter {
  private leader = false;
  private readonly desired = new Map<string, Desired>();
  private readonly queue = new Set<string>();
  /** What we last wrote per object, and from which resourceVersion: suppresses a repeat before the watch catches up. */
  private readonly written = new Map<string, { fromRv: string | undefined; status: string }>();
  private running: Promise<void> | undefined;
  private readonly inflight = new Set<string>();
  private readonly again = new Set<string>();
  private readonly component: string;
  /** Objects waiting out a backoff after a transient failure: failures so far, and the timer that re-queues them. */
  private readonly retrying = new Map<string, { failures: number; timer: NodeJS.Timeout | undefined }>();

  constructor(private readonly o: StatusWriterOptions) {
    this.component = o.component ?? "cas-gateway-operator";
  }

  setLeader(v: boolean): void {
    this.leader = v;
    if (!v) this.cancelRetries();
    if (v) {
      // A new leader re-checks everything (the previous one may have died mid-way).
      this.written.clear();
      for (const k of this.desired.keys()) this.queue.add(k);
      this.kick();
    }
  }

  /**
   * Feed the latest view: every object record, with its rejection or topology/reference problems and
   * its Programmed state. Objects that disappeared are forgotten.
   */
  update(items: readonly Desired[]): void {
    const keys = new Set<string>();
    for (const d of items) {
      const k = recordKey(d.record);
      keys.add(k);
      this.desired.set(k, d);
      if (this.needsWrite(k, d)) this.queue.add(k);
    }
    for (const k of [...this.desired.keys()]) {
      if (!keys.has(k)) {
        this.desired.delete(k);
        this.written.delete(k);
        this.queue.delete(k);
        const r = this.retrying.get(k);
        if (r?.timer) clearTimeout(r.timer);
        this.retrying.delete(k);
      }
    }
    this.kick();
  }

  /** Objects whose last write failed transiently and that wait for their retry. */
  get pendingRetries(): number {
    return this.retrying.size;
  }

  /** Resolves when the queue is empty (for tests and graceful shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private now(): string {
    return (this.o.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  private compute(d: Desired, existing: ObjectStatus | undefined): ObjectStatus {
    return computeStatus(d.record, existing, d.rejection, d.problems, d.programmed, this.now());
  }

  private needsWrite(k: string, d: Desired): boolean {
    const existing = parseStatus(d.record.status);
    const next = this.compute(d, existing);
    if (sameStatus(existing, next)) return false;
    const w = this.written.get(k);
    // Already written from this very resourceVersion: the watch has not delivered our change yet.
    if (w && w.fromRv === d.record.resourceVersion && w.status === statusKey(next)) return false;
    return true;
  }

  private kick() {
    if (!this.leader || this.running || this.queue.size === 0) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async drain(): Promise<void> {
    // A few patches in flight at once: a large organisation settles quickly, the API server is not flooded.
    const workers = Math.max(1, this.o.concurrency ?? 4);
    await Promise.all(Array.from({ length: workers }, () => this.worker()));
  }

  private async worker(): Promise<void> {
    while (this.leader && this.queue.size > 0) {
      const k = this.queue.values().next().value as string;
      this.queue.delete(k);
      if (this.inflight.has(k)) {
        // Another worker is writing this object: look again once it is done (never two writes racing).
        this.again.add(k);
        continue;
      }
      // Waiting out a backoff (or the server's Retry-After): its timer puts it back in the queue.
      if (this.retrying.get(k)?.timer) continue;
      const d = this.desired.get(k);
      if (!d || !this.needsWrite(k, d)) {
        this.retrying.delete(k);
        continue;
      }
      this.inflight.add(k);
      try {
        await this.write(k, d);
        this.retrying.delete(k);
      } catch (err) {
        this.o.metrics?.statusPatches.inc({ result: "error" });
        if (isTransient(err)) this.scheduleRetry(k, err);
        else {
          this.retrying.delete(k);
          this.o.log.warn({ err: String(err), object: k }, "status patch refused; will try again on the next change");
        }
      } finally {
        this.inflight.delete(k);
        if (this.again.delete(k)) this.queue.add(k);
      }
    }
  }

  private scheduleRetry(k: string, err: unknown): void {
    const failures = (this.retrying.get(k)?.failures ?? 0) + 1;
    const initial = this.o.retryInitialMs ?? 500;
    const max = this.o.retryMaxMs ?? 30_000;
    const backoff = Math.min(max, initial * 2 ** Math.min(failures - 1, 20)) * (0.8 + Math.random() * 0.4);
    const ra = err instanceof KubeApiError ? err.retryAfterSeconds : undefined;
    // Retry-After is a floor: the server said when it can take the request again.
    const delay = Math.round(ra !== undefined ? Math.max(Math.min(ra * 1000, this.o.retryAfterMaxMs ?? 300_000), backoff) : backoff);
    const timer = setTimeout(() => {
      const r = this.retrying.get(k);
      if (r) r.timer = undefined;
      if (!this.leader || !this.desired.has(k)) return;
      this.queue.add(k);
      this.kick();
    }, delay);
    timer.unref();
    this.retrying.set(k, { failures, timer });
    this.o.metrics?.statusRetries.inc();
    this.o.log.warn({ err: String(err), object: k, failures, retryInMs: delay, retryAfterSeconds: ra }, "status patch failed (transient); retrying");
  }

  private cancelRetries(): void {
    for (const r of this.retrying.values()) if (r.timer) clearTimeout(r.timer);
    this.retrying.clear();
  }

  private async write(k: string, d: Desired): Promise<void> {
    const r = d.record;
    const path = resourcePath("casgateway.io", "v1alpha1", KIND_PLURALS[r.kind], r.namespace, r.name, "status");
    let existing = parseStatus(r.status);
    let rv = r.resourceVersion;
    const retries = this.o.maxConflictRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      const next = this.compute(d, existing);
      if (sameStatus(existing, next)) return;
      try {
        await this.o.rest.mergePatch(path, {
          // Optimistic concurrency: the patch applies only to the version we computed from.
          metadata: rv !== undefined ? { resourceVersion: rv } : {},
          status: { ...next, conditions: next.conditions },
        }, { timeoutMs: this.o.requestTimeoutMs ?? 10_000 });
        this.o.metrics?.statusPatches.inc({ result: "ok" });
        this.written.set(k, { fromRv: rv, status: statusKey(next) });
        this.o.log.info({ object: k, conditions: summary(next.conditions) }, "status updated");
        await this.recordEvents(r, existing, next);
        return;
      } catch (err) {
        if (isStatus(err, 404)) {
          this.o.metrics?.statusPatches.inc({ result: "notfound" });
          return; // deleted meanwhile; the watch will tell us
        }
        if (!isStatus(err, 409) || attempt >= retries) throw err;
        this.o.metrics?.statusPatches.inc({ result: "conflict" });
        // Someone changed the object: read it again and recompute against its current status.
        const fresh = await this.o.rest.get<{ metadata?: { resourceVersion?: string; generation?: number }; status?: unknown }>(
          resourcePath("casgateway.io", "v1alpha1", KIND_PLURALS[r.kind], r.namespace, r.name),
          undefined,
          { timeoutMs: this.o.requestTimeoutMs ?? 10_000 },
        );
        existing = parseStatus(fresh.status);
        rv = fresh.metadata?.resourceVersion;
        if (fresh.metadata?.generation !== undefined && fresh.metadata.generation !== r.generation) {
          return; // the spec changed: the watch will bring a new record and a new computation
        }
      }
    }
  }

  /** One Warning Event per condition that turned False (or changed reason/message while False). */
  private async recordEvents(r: ObjectRecord, before: ObjectStatus | undefined, after: ObjectStatus): Promise<void> {
    for (const c of after.conditions) {
      if (c.status !== "False" || (c.type !== "Accepted" && c.type !== "ResolvedRefs")) continue;
      const prev = before?.conditions.find((p) => p.type === c.type);
      if (prev && prev.status === c.status && prev.reason === c.reason && prev.message === c.message) continue;
      await this.postEvent(r, c).catch((err: unknown) => {
        this.o.metrics?.events.inc({ result: "error" });
        this.o.log.warn({ err: err instanceof KubeApiError ? err.message : String(err) }, "could not record event");
      });
    }
  }

  private async postEvent(r: ObjectRecord, c: Condition): Promise<void> {
    if (!r.namespace) return;
    const now = this.now();
    await this.o.rest.post(resourcePath("", "v1", "events", r.namespace), {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${r.name}.`, namespace: r.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: r.kind,
        name: r.name,
        namespace: r.namespace,
        ...(r.uid ? { uid: r.uid } : {}),
        ...(r.resourceVersion ? { resourceVersion: r.resourceVersion } : {}),
      },
      reason: c.reason,
      message: `${c.type}=False: ${c.message}`.slice(0, 1024),
      type: "Warning",
      source: { component: this.component, host: this.o.identity },
      reportingComponent: this.component,
      reportingInstance: this.o.identity,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
    this.o.metrics?.events.inc({ result: "ok" });
  }
}

/**
 * What a status says, without transition times: those come from the clock when a condition first
 * appears, so two computations from the same record a second apart differ only there, and must not
 * count as a new status (that re-sent a patch with the stale resourceVersion: a self-made 409).
 */
function statusKey(s: ObjectStatus): string {
  return statusFingerprint(s, false);
}

function summary(cs: readonly Condition[]): string {
  return cs.map((c) => `${c.type}=${c.status}(${c.reason})`).join(" ");
}

export type { Desired as StatusDesired };
