// What the SotW and Delta stream handlers share: node/group bookkeeping, the push-order gate and a
// status report (for FleetProgress and /config_dump).
import type { Logger } from "pino";
import type { NodeInfo, SnapshotCache } from "./cache.js";
import type { XdsMetrics } from "./metrics.js";
import { PUSH_AFTER, PUSH_ORDER } from "./resources.js";
import type { Snapshot } from "./snapshot.js";

export interface StreamDeps {
  readonly cache: SnapshotCache;
  readonly metrics: XdsMetrics;
  readonly log: Logger;
  /** Called when a stream's ACK state changes (FleetProgress recomputes). */
  readonly onProgress: () => void;
  readonly identifier: string;
}

export interface TypeStatus {
  readonly typeUrl: string;
  readonly subscribed: readonly string[] | "*";
  readonly sentVersion?: string;
  readonly ackedVersion?: string;
  readonly nackedVersion?: string;
  readonly nackMessage?: string;
}

export interface StreamStatus {
  readonly id: number;
  readonly mode: "sotw" | "delta";
  readonly node: NodeInfo | undefined;
  readonly group: string | undefined;
  readonly types: readonly TypeStatus[];
}

export abstract class AdsStream {
  private static nextId = 1;
  readonly id = AdsStream.nextId++;
  node: NodeInfo | undefined;
  group: string | undefined;
  /** Newest topology version this client had fully ACKed (FleetProgress). */
  ackedTopology: string | undefined;
  protected nonceCounter = 0;
  protected closed = false;

  constructor(
    readonly mode: "sotw" | "delta",
    protected readonly deps: StreamDeps,
  ) {}

  protected setNode(node: { id: string; cluster: string } | null | undefined): void {
    if (this.node || !node) return;
    this.node = { id: node.id, cluster: node.cluster };
    this.group = this.deps.cache.nodeGroup(this.node);
    this.deps.log.info({ stream: this.id, mode: this.mode, node: this.node.id, group: this.group }, "xds stream node");
  }

  protected snapshot(): Snapshot | undefined {
    return this.deps.cache.getSnapshot(this.group ?? this.deps.cache.nodeGroup({ id: "", cluster: "" }));
  }

  protected nextNonce(): string {
    return `${this.id}-${++this.nonceCounter}`;
  }

  /** Types the stream has state for, in make-before-break order (unknown types last, sorted). */
  protected orderedTypes(types: Iterable<string>): string[] {
    const all = [...types];
    const known = PUSH_ORDER.filter((t) => all.includes(t));
    return [...known, ...all.filter((t) => !PUSH_ORDER.includes(t)).sort()];
  }

  /** A server-initiated push of typeUrl waits while an earlier type in the order has a response unanswered. */
  protected gated(typeUrl: string): boolean {
    return (PUSH_AFTER[typeUrl] ?? []).some((t) => this.awaitingReply(t));
  }

  /** Called by the server when the cache has a new snapshot for this stream's group. */
  abstract onSnapshot(): void;
  /** Whether every subscribed type has ACKed what `snapshot` holds for it. */
  abstract caughtUp(snapshot: Snapshot): boolean;
  abstract status(): StreamStatus;
  protected abstract awaitingReply(typeUrl: string): boolean;

  close(): void {
    this.closed = true;
  }
}
