// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: acquire the
// lease when it is free or has expired (judged by when *we* last saw it change, so clock skew between
// nodes does not matter), renew it every retry period, step down when a renewal has not succeeded
// within the renew deadline, and release it on shutdown (holderIdentity cleared) so a standby takes
// over at once. Writes use the Lease's resourceVersion: two candidates racing get one 409.
//
// It cannot overrun: a leader's last good renew is dated when that renew was *sent* (the API server
// stores it later, and others count the lease's duration from when they see it change, later still),
// every request of a round is aborted at lastRenew + renewDeadline, and a timer — not the end of a
// request — steps down at that moment, calling onStoppedLeading so work stops. renewDeadline <
// leaseDuration leaves the difference as the margin before any other replica may take the lease.
import type { Logger } from "pino";
import { z } from "zod";
import { isStatus, resourcePath, type KubeRest } from "./rest.js";

const Lease = z.looseObject({
  metadata: z.looseObject({ name: z.string(), namespace: z.string().optional(), resourceVersion: z.string().optional() }),
  spec: z
    .looseObject({
      holderIdentity: z.string().nullable().optional(),
      leaseDurationSeconds: z.number().nullable().optional(),
      acquireTime: z.string().nullable().optional(),
      renewTime: z.string().nullable().optional(),
      leaseTransitions: z.number().nullable().optional(),
    })
    .optional(),
});
type Lease = z.infer<typeof Lease>;

export interface LeaderElectorOptions {
  readonly rest: KubeRest;
  readonly namespace: string;
  readonly name: string;
  /** This candidate's identity (pod name). */
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly log: Logger;
  readonly onStartedLeading?: () => void;
  readonly onStoppedLeading?: () => void;
  readonly onNewLeader?: (identity: string | undefined) => void;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits (the API server rejects fewer). */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  private leading = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The last lease we read and when we read it (local monotonic-ish clock). */
  private observed: { holder: string | undefined; rv: string | undefined; renewTime: string | undefined; at: number } | undefined;
  private lastRenew = 0;
  /** Fires at lastRenew + renewDeadline while leading. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private currentLeader: string | undefined;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  constructor(private readonly o: LeaderElectorOptions) {
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2_000;
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs)) {
      throw new Error("leader election needs leaseDuration > renewDeadline > retryPeriod");
    }
  }

  /** Leading, and the renew deadline has not passed (even if the event loop delayed the step-down timer). */
  get isLeader(): boolean {
    return this.leading && Date.now() < this.lastRenew + this.renewDeadlineMs;
  }

  get leader(): string | undefined {
    return this.currentLeader;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Stop campaigning; if leading, release the lease so another replica takes over without waiting. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      await this.release().catch((err: unknown) => this.o.log.warn({ err: String(err) }, "could not release the lease"));
    }
  }

  /** Stop campaigning WITHOUT releasing the lease, as a crashed process would (for tests and fatal errors). */
  async abandon(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    await this.loop;
    this.setLeading(false);
  }

  private path(name?: string) {
    return resourcePath("coordination.k8s.io", "v1", "leases", this.o.namespace, name);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let ok = false;
      const roundStart = Date.now();
      // A leader's round ends at its renew deadline; a candidate's is bounded by the same length.
      const roundEnd = this.leading ? this.lastRenew + this.renewDeadlineMs : roundStart + this.renewDeadlineMs;
      const abort = new AbortController();
      const abortTimer = setTimeout(() => abort.abort("renew deadline"), Math.max(0, roundEnd - roundStart));
      try {
        ok = await this.tryAcquireOrRenew(abort.signal);
      } catch (err) {
        this.o.log.warn({ err: String(err), lease: `${this.o.namespace}/${this.o.name}` }, "lease request failed");
      } finally {
        clearTimeout(abortTimer);
      }
      const now = Date.now();
      if (ok && !abort.signal.aborted) {
        this.lastRenew = roundStart;
        if (!this.leading) this.setLeading(true);
        this.armDeadline();
      } else if (this.leading && this.observed && this.observed.holder !== this.o.identity) {
        this.o.log.warn({ lease: this.o.name, holder: this.observed.holder }, "another replica holds the lease; stepping down");
        this.setLeading(false);
      } else if (this.leading && now - this.lastRenew > this.renewDeadlineMs) {
        this.o.log.warn({ lease: this.o.name }, "could not renew the lease within the renew deadline; stepping down");
        this.setLeading(false);
      }
      if (this.stopped) break;
      await this.sleep(this.retryPeriodMs * (this.leading ? 1 : 1 + Math.random() * 0.2));
    }
  }

  /** Step down at lastRenew + renewDeadline unless a renew succeeds first. */
  private armDeadline() {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (!this.leading) return;
      this.o.log.warn({ lease: this.o.name, renewDeadlineMs: this.renewDeadlineMs }, "renew deadline passed without a successful renew; stepping down");
      this.setLeading(false);
    }, Math.max(0, this.lastRenew + this.renewDeadlineMs - Date.now()));
    this.deadlineTimer.unref?.();
  }

  private setLeading(v: boolean) {
    if (this.leading === v) return;
    if (!v) clearTimeout(this.deadlineTimer);
    this.leading = v;
    this.o.log.info({ identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}`, leading: v }, v ? "became leader" : "stopped leading");
    if (v) this.noteLeader(this.o.identity);
    try {
      (v ? this.o.onStartedLeading : this.o.onStoppedLeading)?.();
    } catch (err) {
      this.o.log.error({ err }, "leader callback failed");
    }
  }

  private noteLeader(id: string | undefined) {
    if (id === this.currentLeader) return;
    this.currentLeader = id;
    this.o.onNewLeader?.(id);
  }

  private spec(prev: Lease["spec"] | undefined, acquiring: boolean) {
    const now = microTime(new Date());
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: acquiring ? now : (prev?.acquireTime ?? now),
      renewTime: now,
      leaseTransitions: (prev?.leaseTransitions ?? 0) + (acquiring && prev?.holderIdentity !== this.o.identity ? 1 : 0),
    };
  }

  /** One round: true when we hold the lease after it. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const call = { signal };
    let lease: Lease;
    try {
      lease = Lease.parse(await this.o.rest.get(this.path(this.o.name), undefined, call));
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      try {
        const created = Lease.parse(
          await this.o.rest.post(this.path(), {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.o.name, namespace: this.o.namespace },
            spec: { ...this.spec(undefined, true), leaseTransitions: 0 },
          }, call),
        );
        this.observe(created);
        return true;
      } catch (e) {
        if (isStatus(e, 409)) return false; // someone else created it first
        throw e;
      }
    }
    this.observe(lease);
    const holder = lease.spec?.holderIdentity ?? undefined;
    const mine = holder === this.o.identity;
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
    const expired = !holder || Date.now() > this.observed!.at + durationMs;
    if (!mine && !expired) return false;
    try {
      const updated = Lease.parse(
        await this.o.rest.put(this.path(this.o.name), {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { ...lease.metadata, resourceVersion: lease.metadata.resourceVersion },
          spec: this.spec(lease.spec, !mine),
        }, call),
      );
      this.observe(updated);
      return true;
    } catch (e) {
      if (isStatus(e, 409)) return false; // lost the race; read again next round
      throw e;
    }
  }

  /** Record when the lease last changed as seen from here (holder or renewTime). */
  private observe(lease: Lease) {
    const holder = lease.spec?.holderIdentity ?? undefined;
    const renewTime = lease.spec?.renewTime ?? undefined;
    const prev = this.observed;
    if (!prev || prev.holder !== holder || prev.renewTime !== renewTime) {
      this.observed = { holder, rv: lease.metadata.resourceVersion, renewTime, at: Date.now() };
    }
    this.noteLeader(holder);
  }

  private async release(): Promise<void> {
    const lease = Lease.parse(await this.o.rest.get(this.path(this.o.name)));
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    await this.o.rest.put(this.path(this.o.name), {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: lease.metadata,
      spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
    });
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}` }, "released the lease");
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(this.timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
