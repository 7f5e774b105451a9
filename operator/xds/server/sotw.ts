// State-of-the-world ADS (StreamAggregatedResources). One response per request per type, as in
// go-control-plane: a response is sent only while the client has a request open for the type, so
// at most one response per type is ever unanswered. A NACKed version is parked: it is not resent
// until the snapshot has a different version (go-control-plane resends it in a loop).
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { DiscoveryRequest, discoveryResponse, isNack, LazyResponse } from "./messages.js";
import { BREAK_AFTER, WILDCARD_TYPES, clip, shortType } from "./resources.js";
import type { Snapshot, SnapshotResource } from "./snapshot.js";
import { AdsStream, type StreamDeps, type StreamStatus } from "./stream.js";

interface TypeState {
  names: Set<string>;
  wildcard: boolean;
  /** The client has a request open (it answered our last response, or never got one). */
  open: boolean;
  sentVersion?: string;
  sentNonce?: string;
  /** Subscription (wildcard or sorted names) the last response was built for. */
  sentKey?: string;
  ackedVersion?: string;
  nackedVersion?: string;
  nackMessage?: string;
  /** Resources of the last response (kept for make-before-break removals). */
  sent?: ReadonlyMap<string, SnapshotResource>;
}

const subKey = (st: TypeState) => (st.wildcard ? "*" : [...st.names].sort().join("\n"));

export class SotwStream extends AdsStream {
  private readonly types = new Map<string, TypeState>();

  constructor(
    private readonly call: ServerDuplexStream<unknown, Buffer | LazyResponse>,
    deps: StreamDeps,
  ) {
    super("sotw", deps);
  }

  onRequest(raw: unknown): void {
    const parsed = DiscoveryRequest.safeParse(raw);
    if (!parsed.success || !parsed.data.type_url) {
      this.deps.log.warn({ stream: this.id, error: parsed.success ? "type_url missing" : parsed.error.message }, "bad DiscoveryRequest ignored");
      return;
    }
    const req = parsed.data;
    this.setNode(req.node);
    const t = req.type_url;
    let st = this.types.get(t);
    const fresh = !st;
    if (!st) this.types.set(t, (st = { names: new Set(), wildcard: false, open: false }));

    if (req.response_nonce) {
      // Only a reply to our latest response counts; older nonces are stale (xDS protocol).
      if (req.response_nonce !== st.sentNonce) {
        this.deps.log.debug({ stream: this.id, type: shortType(t), nonce: req.response_nonce }, "stale nonce ignored");
        return;
      }
      if (isNack(req.error_detail)) {
        st.nackedVersion = st.sentVersion;
        st.nackMessage = clip(req.error_detail?.message ?? "");
        this.deps.metrics.nacks.inc({ mode: "sotw", type: shortType(t) });
        this.deps.log.warn(
          { stream: this.id, node: this.node?.id, type: shortType(t), rejected: st.sentVersion, inForce: st.ackedVersion, error: st.nackMessage },
          "NACK: version rejected; last ACKed version stays in force and the rejected one is not resent",
        );
      } else {
        st.ackedVersion = req.version_info || st.sentVersion;
        if (st.nackedVersion === st.ackedVersion) st.nackedVersion = undefined;
        this.deps.metrics.acks.inc({ mode: "sotw", type: shortType(t) });
      }
    } else if (fresh && req.version_info) {
      // Reconnect: the client already has version_info; if that is still current, send nothing.
      st.ackedVersion = req.version_info;
      st.sentVersion = req.version_info;
    }

    const names = req.resource_names;
    st.wildcard = names.includes("*") || (names.length === 0 && WILDCARD_TYPES.has(t));
    st.names = new Set(names.filter((n) => n !== "*"));
    if (fresh && req.version_info) st.sentKey = subKey(st);
    st.open = true;
    this.deps.onProgress();
    this.pump(t);
  }

  onSnapshot(): void {
    this.pump();
  }

  /** Try to respond on every open type, in make-before-break order; `requested` skips the gate. */
  private pump(requested?: string): void {
    for (const t of this.orderedTypes(this.types.keys())) this.respond(t, t === requested);
  }

  private respond(t: string, requested: boolean): void {
    const st = this.types.get(t)!;
    const snap = this.snapshot();
    if (this.closed || !st.open || !snap) return;
    const all = snap.resources(t);
    let version = snap.version(t);
    // Make before break: clusters that are going away stay until listeners and routes that may
    // still use them have been replaced (ACKed); then a second CDS response drops them.
    const keep = this.lagging(BREAK_AFTER[t] ?? [], snap) ? [...(st.sent?.values() ?? [])].filter((r) => !all.has(r.name)) : [];
    if (keep.length) version = `${version}+keep-${keep.length}`;
    const key = subKey(st);
    const sameSub = st.sentKey === key;
    if (sameSub && version === st.sentVersion) return; // the client has (or is applying) it
    if (sameSub && version === st.nackedVersion) return; // parked until a new version exists
    if (!requested && sameSub && this.gated(t)) return; // make-before-break: wait for earlier types
    let chosen = st.wildcard ? [...all.values()] : [...st.names].sort().flatMap((n) => (all.has(n) ? [all.get(n)!] : []));
    if (keep.length) chosen = [...chosen, ...keep].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    // What was sent, for make-before-break: the snapshot's own index when that is all of it.
    const sent = st.wildcard && !keep.length ? all : new Map(chosen.map((r) => [r.name, r]));
    const nonce = this.nextNonce();
    st.open = false;
    st.sentVersion = version;
    st.sentNonce = nonce;
    st.sentKey = key;
    st.sent = sent;
    this.deps.metrics.responses.inc({ mode: "sotw", type: shortType(t) });
    this.deps.log.debug({ stream: this.id, type: shortType(t), version, count: chosen.length }, "DiscoveryResponse");
    const identifier = this.deps.identifier;
    this.call.write(new LazyResponse(() => discoveryResponse(version, t, chosen, nonce, identifier)));
  }

  /** Whether any of `types` (that this stream subscribes to) has not yet ACKed `snap`'s version. */
  private lagging(types: readonly string[], snap: Snapshot): boolean {
    return types.some((t) => {
      const st = this.types.get(t);
      return !!st && st.ackedVersion !== snap.version(t);
    });
  }

  protected awaitingReply(t: string): boolean {
    const st = this.types.get(t);
    return !!st && !st.open && st.sentNonce !== undefined;
  }

  caughtUp(snapshot: Snapshot): boolean {
    for (const [t, st] of this.types) {
      if (st.ackedVersion !== snapshot.version(t) || st.sentKey !== subKey(st)) return false;
    }
    return this.types.size > 0;
  }

  status(): StreamStatus {
    return {
      id: this.id,
      mode: "sotw",
      node: this.node,
      group: this.group,
      types: this.orderedTypes(this.types.keys()).map((t) => {
        const st = this.types.get(t)!;
        return {
          typeUrl: t,
          subscribed: st.wildcard ? "*" : [...st.names].sort(),
          ...(st.sentVersion ? { sentVersion: st.sentVersion } : {}),
          ...(st.ackedVersion ? { ackedVersion: st.ackedVersion } : {}),
          ...(st.nackedVersion ? { nackedVersion: st.nackedVersion, nackMessage: st.nackMessage } : {}),
        };
      }),
    };
  }
}
