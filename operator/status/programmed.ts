// Which topology version first contained each object's current generation, and whether the Envoy
// fleet has ACKed that version (or a later one). Topology versions are content hashes, not ordered,
// so this keeps the order in which versions were produced. No I/O; the caller feeds it.
import type { ProgrammedState } from "./conditions.js";

export interface TrackedObject {
  readonly key: string;
  /** Changes whenever the object's content changes (uid + generation, or resourceVersion for kinds without generation). */
  readonly revision: string;
}

export class ProgrammedTracker {
  private seq = 0;
  /** topology version → sequence number of its latest production. */
  private readonly versionSeq = new Map<string, number>();
  private readonly seqVersion = new Map<number, string>();
  /** object key → revision and the sequence of the first topology that contained it. */
  private readonly objects = new Map<string, { revision: string; seq: number }>();
  private acked: number | undefined;
  private readonly maxVersions: number;

  constructor(opts: { maxVersions?: number } = {}) {
    this.maxVersions = opts.maxVersions ?? 1000;
  }

  /** A new topology was built (and handed to the xDS server) containing these objects. */
  observeTopology(version: string, included: readonly TrackedObject[]): void {
    const s = ++this.seq;
    const prev = this.versionSeq.get(version);
    if (prev !== undefined) this.seqVersion.delete(prev);
    this.versionSeq.set(version, s);
    this.seqVersion.set(s, version);
    const present = new Set<string>();
    for (const o of included) {
      present.add(o.key);
      const cur = this.objects.get(o.key);
      if (!cur || cur.revision !== o.revision) this.objects.set(o.key, { revision: o.revision, seq: s });
    }
    for (const k of [...this.objects.keys()]) if (!present.has(k)) this.objects.delete(k);
    // Bound memory: forget the oldest versions (an ACK for one of them no longer counts).
    while (this.versionSeq.size > this.maxVersions) {
      const oldest = Math.min(...this.seqVersion.keys());
      this.versionSeq.delete(this.seqVersion.get(oldest)!);
      this.seqVersion.delete(oldest);
    }
  }

  /** The fleet ACKed a topology version. Unknown versions (from before this process) are ignored. */
  observeAck(version: string | undefined): void {
    if (version === undefined) return;
    const s = this.versionSeq.get(version);
    if (s !== undefined && (this.acked === undefined || s > this.acked)) this.acked = s;
  }

  /** Production order of a version (higher is newer); undefined for versions this process never produced. */
  rankOf(version: string): number | undefined {
    return this.versionSeq.get(version);
  }

  stateOf(key: string): ProgrammedState {
    const o = this.objects.get(key);
    if (!o) return { state: "Pending", topologyVersion: undefined };
    const version = this.seqVersion.get(o.seq) ?? this.versionAtOrAfter(o.seq);
    if (this.acked !== undefined && this.acked >= o.seq) return { state: "Programmed", topologyVersion: version ?? "(unknown)" };
    return { state: "Pending", topologyVersion: version };
  }

  /** The version an object first appeared in may have been produced again later (same content). */
  private versionAtOrAfter(seq: number): string | undefined {
    let best: number | undefined;
    for (const s of this.seqVersion.keys()) if (s >= seq && (best === undefined || s < best)) best = s;
    return best === undefined ? undefined : this.seqVersion.get(best);
  }
}
