// Incremental ADS (DeltaAggregatedResources): per-resource versions, subscribe/unsubscribe by name,
// wildcard ("*", or an empty first subscribe for LDS/CDS), removals in removed_resources, and
// initial_resource_versions on reconnect (resources the client already has at the current version
// are not resent). Like the SotW server, one unanswered response per type; a NACKed resource
// version is parked until the resource changes again.
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { DeltaDiscoveryRequest, deltaDiscoveryResponse, isNack, LazyResponse } from "./messages.js";
import { BREAK_AFTER, WILDCARD_TYPES, clip, shortType } from "./resources.js";
import type { Snapshot, SnapshotResource } from "./snapshot.js";
import { AdsStream, type StreamDeps, type StreamStatus } from "./stream.js";

interface Pending {
  nonce: string;
  systemVersion: string;
  /** Resource name → the version the client had before this response (undefined: it had none). */
  previous: Map<string, string | undefined>;
  /** Resource name → version sent (absent for removals). */
  sent: Map<string, string>;
}

interface TypeState {
  subscribed: Set<string>;
  wildcard: boolean;
  /** What the client has (optimistically including the unanswered response). */
  clientHas: Map<string, string>;
  /** Resource name → version the client rejected. */
  nacked: Map<string, string>;
  nackMessage?: string;
  open: boolean;
  pending?: Pending;
  ackedSystemVersion?: string;
  /**
   * A snapshot the client's resources (clientHas, wanted names only) are known to equal, with no
   * parked NACKs: the next diff then looks only at what changed since it (Snapshot.changesSince)
   * instead of every resource. Cleared whenever clientHas or the subscription changes otherwise.
   */
  synced?: Snapshot;
}

export class DeltaStream extends AdsStream {
  private readonly types = new Map<string, TypeState>();

  constructor(
    private readonly call: ServerDuplexStream<unknown, Buffer | LazyResponse>,
    deps: StreamDeps,
  ) {
    super("delta", deps);
  }

  onRequest(raw: unknown): void {
    const parsed = DeltaDiscoveryRequest.safeParse(raw);
    if (!parsed.success || !parsed.data.type_url) {
      this.deps.log.warn({ stream: this.id, error: parsed.success ? "type_url missing" : parsed.error.message }, "bad DeltaDiscoveryRequest ignored");
      return;
    }
    const req = parsed.data;
    this.setNode(req.node);
    const t = req.type_url;
    let st = this.types.get(t);
    const fresh = !st;
    if (!st) {
      st = { subscribed: new Set(), wildcard: false, clientHas: new Map(), nacked: new Map(), open: true };
      this.types.set(t, st);
      for (const [n, v] of Object.entries(req.initial_resource_versions)) st.clientHas.set(n, v);
      if (req.resource_names_subscribe.length === 0 && WILDCARD_TYPES.has(t)) st.wildcard = true;
    }

    if (req.response_nonce) {
      const p = st.pending;
      if (p && p.nonce === req.response_nonce) {
        st.pending = undefined;
        st.open = true;
        if (isNack(req.error_detail)) {
          st.synced = undefined;
          st.nackMessage = clip(req.error_detail?.message ?? "");
          for (const [n, v] of p.sent) st.nacked.set(n, v);
          for (const [n, prev] of p.previous) {
            if (prev === undefined) st.clientHas.delete(n);
            else st.clientHas.set(n, prev);
          }
          this.deps.metrics.nacks.inc({ mode: "delta", type: shortType(t) });
          this.deps.log.warn(
            { stream: this.id, node: this.node?.id, type: shortType(t), rejected: [...p.sent.keys()].slice(0, 20), error: st.nackMessage },
            "NACK: resources rejected; previous versions stay in force and the rejected ones are not resent",
          );
        } else {
          st.ackedSystemVersion = p.systemVersion;
          for (const [n, v] of p.sent) if (st.nacked.get(n) !== v) st.nacked.delete(n);
          this.deps.metrics.acks.inc({ mode: "delta", type: shortType(t) });
        }
      }
    } else if (!fresh || !st.pending) {
      st.open = true;
    }

    if (req.resource_names_subscribe.length || req.resource_names_unsubscribe.length) st.synced = undefined;
    for (const n of req.resource_names_subscribe) {
      if (n === "*") st.wildcard = true;
      else st.subscribed.add(n);
    }
    for (const n of req.resource_names_unsubscribe) {
      if (n === "*") st.wildcard = false;
      else {
        st.subscribed.delete(n);
        st.clientHas.delete(n);
        st.nacked.delete(n);
      }
    }
    // A subscription change is answered even while an earlier response is unanswered.
    if (req.resource_names_subscribe.length || req.resource_names_unsubscribe.length) st.open = true;
    this.deps.onProgress();
    this.pump(t);
  }

  onSnapshot(): void {
    this.pump();
  }

  private pump(requested?: string): void {
    for (const t of this.orderedTypes(this.types.keys())) this.respond(t, t === requested);
  }

  private wants(st: TypeState, name: string): boolean {
    return st.wildcard || st.subscribed.has(name);
  }

  /** Resources to send and names to remove so the client matches `snap` (parked NACKs excluded if asked). */
  private diff(t: string, st: TypeState, snap: Snapshot, skipNacked: boolean): { send: SnapshotResource[]; remove: string[] } {
    const changes = st.synced && st.nacked.size === 0 ? snap.changesSince(st.synced, t) : undefined;
    if (changes) {
      // The client has st.synced: only the names changed since then can differ (same result as below).
      const send: SnapshotResource[] = [];
      const remove: string[] = [];
      for (const [n, r] of changes) {
        if (!this.wants(st, n)) continue;
        if (r) {
          if (st.clientHas.get(n) !== r.version) send.push(r);
        } else if (st.clientHas.has(n)) remove.push(n);
      }
      send.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      remove.sort();
      return { send, remove };
    }
    const all = snap.resources(t);
    const send: SnapshotResource[] = [];
    const consider = (r: SnapshotResource) => {
      if (st.clientHas.get(r.name) === r.version) return;
      if (skipNacked && st.nacked.get(r.name) === r.version) return;
      send.push(r);
    };
    if (st.wildcard) for (const r of all.values()) consider(r);
    for (const n of [...st.subscribed].sort()) {
      const r = all.get(n);
      if (r && !st.wildcard) consider(r);
    }
    const remove: string[] = [];
    for (const n of st.clientHas.keys()) if (!all.has(n) && this.wants(st, n)) remove.push(n);
    remove.sort();
    return { send, remove };
  }

  private respond(t: string, requested: boolean): void {
    const st = this.types.get(t)!;
    const snap = this.snapshot();
    if (this.closed || !st.open || !snap) return;
    if (!requested && this.gated(t)) return;
    const d = this.diff(t, st, snap, true);
    const send = d.send;
    // Make before break: removals wait until listeners and routes have ACKed the new snapshot.
    const remove = (BREAK_AFTER[t] ?? []).some((x) => this.lagging(x, snap)) ? [] : d.remove;
    // After this response the client has all of snap's resources of the type, unless removals
    // wait or NACKed versions are parked.
    st.synced = remove.length === d.remove.length && st.nacked.size === 0 ? snap : undefined;
    if (send.length === 0 && remove.length === 0) return;
    const nonce = this.nextNonce();
    const previous = new Map<string, string | undefined>();
    const sent = new Map<string, string>();
    for (const r of send) {
      previous.set(r.name, st.clientHas.get(r.name));
      sent.set(r.name, r.version);
      st.clientHas.set(r.name, r.version);
    }
    for (const n of remove) {
      previous.set(n, st.clientHas.get(n));
      st.clientHas.delete(n);
    }
    const systemVersion = snap.version(t);
    st.pending = { nonce, systemVersion, previous, sent };
    st.open = false;
    this.deps.metrics.responses.inc({ mode: "delta", type: shortType(t) });
    this.deps.log.debug({ stream: this.id, type: shortType(t), systemVersion, sent: send.length, removed: remove.length }, "DeltaDiscoveryResponse");
    const identifier = this.deps.identifier;
    this.call.write(new LazyResponse(() => deltaDiscoveryResponse(systemVersion, t, send, remove, nonce, identifier)));
  }

  /** Whether this stream subscribes to `t` and does not yet have `snap`'s resources of it. */
  private lagging(t: string, snap: Snapshot): boolean {
    const st = this.types.get(t);
    if (!st) return false;
    if (st.pending) return true;
    const d = this.diff(t, st, snap, false);
    return d.send.length > 0 || d.remove.length > 0;
  }

  protected awaitingReply(t: string): boolean {
    return !!this.types.get(t)?.pending;
  }

  caughtUp(snapshot: Snapshot): boolean {
    for (const [t, st] of this.types) {
      if (st.pending) return false;
      const d = this.diff(t, st, snapshot, false);
      if (d.send.length || d.remove.length) return false;
    }
    return this.types.size > 0;
  }

  status(): StreamStatus {
    const snap = this.snapshot();
    return {
      id: this.id,
      mode: "delta",
      node: this.node,
      group: this.group,
      types: this.orderedTypes(this.types.keys()).map((t) => {
        const st = this.types.get(t)!;
        const parked = [...st.nacked.entries()].filter(([n, v]) => snap?.resources(t).get(n)?.version === v);
        return {
          typeUrl: t,
          subscribed: st.wildcard ? "*" : [...st.subscribed].sort(),
          ...(st.pending ? { sentVersion: st.pending.systemVersion } : {}),
          ...(st.ackedSystemVersion ? { ackedVersion: st.ackedSystemVersion } : {}),
          ...(parked.length ? { nackedVersion: parked.map(([n, v]) => `${n}@${v}`).join(","), nackMessage: st.nackMessage } : {}),
        };
      }),
    };
  }
}
