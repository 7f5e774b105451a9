// The ADS gRPC server: envoy.service.discovery.v3.AggregatedDiscoveryService with both
// StreamAggregatedResources (SotW) and DeltaAggregatedResources (Delta), serving whatever the
// SnapshotCache holds. Listens on loopback by default.
import * as grpc from "@grpc/grpc-js";
import { pino, type Logger } from "pino";
import type { Registry } from "prom-client";
import { DEFAULT_GROUP, SnapshotCache } from "./cache.js";
import { DeltaStream } from "./delta.js";
import { FleetTracker } from "./fleet-tracker.js";
import { XdsMetrics } from "./metrics.js";
import { adsService } from "../../../model/ads-protos.js";
import { LazyResponse } from "./messages.js";
import type { Snapshot } from "./snapshot.js";
import { SotwStream } from "./sotw.js";
import type { AdsStream, StreamDeps, StreamStatus } from "./stream.js";

export interface AdsServerOptions {
  readonly cache?: SnapshotCache;
  readonly logger?: Logger;
  readonly registry?: Registry;
  /** control_plane.identifier in responses. */
  readonly identifier?: string;
}

export class AdsServer {
  readonly cache: SnapshotCache;
  readonly metrics: XdsMetrics;
  readonly fleet: FleetTracker;
  private readonly log: Logger;
  private readonly streams = new Set<AdsStream>();
  private readonly grpcServer = new grpc.Server({
    // Envoy and big snapshots: allow large messages (10,000 virtual directories make a big CDS/EDS).
    "grpc.max_send_message_length": 256 * 1024 * 1024,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  private readonly unwatch: () => void;
  private boundPort: number | undefined;

  constructor(opts: AdsServerOptions = {}) {
    this.cache = opts.cache ?? new SnapshotCache();
    this.log = opts.logger ?? pino({ name: "xds", level: process.env.LOG_LEVEL ?? "info" });
    this.metrics = new XdsMetrics(opts.registry);
    this.fleet = new FleetTracker(this.cache, () => this.streams, this.metrics);
    const deps: StreamDeps = {
      cache: this.cache,
      metrics: this.metrics,
      log: this.log,
      onProgress: () => this.fleet.update(),
      identifier: opts.identifier ?? "cas-gateway",
    };
    this.unwatch = this.cache.watch((group, snap) => this.onSnapshot(group, snap));
    // Responses are encoded by hand (messages.ts): bytes pass through; a LazyResponse becomes a
    // ResponseBytes, which grpc-js' serializer sizes and copies (writes) into its framed message.
    const svc = adsService().service;
    const serialize = (m: Buffer | LazyResponse) => (m instanceof LazyResponse ? (m.make() as unknown as Buffer) : m);
    const passThrough = Object.fromEntries(
      Object.entries(svc).map(([k, m]) => [k, { ...m, responseSerialize: serialize }]),
    ) as grpc.ServiceDefinition;
    this.grpcServer.addService(passThrough, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<unknown, Buffer | LazyResponse>) => this.serve(call, new SotwStream(call, deps)),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, Buffer | LazyResponse>) => this.serve(call, new DeltaStream(call, deps)),
    });
  }

  private serve(call: grpc.ServerDuplexStream<unknown, unknown>, stream: SotwStream | DeltaStream): void {
    this.streams.add(stream);
    this.metrics.streams.inc({ mode: stream.mode });
    this.log.info({ stream: stream.id, mode: stream.mode, peer: call.getPeer() }, "xds stream opened");
    let done = false;
    const end = (why: string) => {
      if (done) return;
      done = true;
      stream.close();
      this.streams.delete(stream);
      this.metrics.streams.dec({ mode: stream.mode });
      this.log.info({ stream: stream.id, mode: stream.mode, node: stream.node?.id, why }, "xds stream closed");
      this.fleet.update();
    };
    call.on("data", (req: unknown) => {
      try {
        stream.onRequest(req);
      } catch (err) {
        this.log.error({ stream: stream.id, err }, "xds request failed");
        call.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
    call.on("end", () => {
      end("client closed");
      call.end();
    });
    call.on("error", (err) => end(`error: ${err.message}`));
    call.on("cancelled", () => end("cancelled"));
    call.on("close", () => end("closed"));
  }

  private onSnapshot(group: string, snap: Snapshot): void {
    this.metrics.snapshots.inc({ group });
    this.fleet.noteSnapshot(snap.topologyVersion);
    this.log.info({ group, topologyVersion: snap.topologyVersion, resources: snap.size() }, "snapshot set");
    for (const s of this.streams) {
      if (s.node && (group === DEFAULT_GROUP ? this.cache.getSnapshot(s.group ?? "") === snap : s.group === group)) s.onSnapshot();
    }
    this.fleet.update();
  }

  /** Listen on host:port (port 0: an ephemeral port); resolves to the port. */
  async listen(port = 0, host = "127.0.0.1"): Promise<number> {
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.grpcServer.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.log.info({ host, port: this.boundPort }, "ADS server listening");
    return this.boundPort;
  }

  get port(): number | undefined {
    return this.boundPort;
  }

  /** Per-stream state: node, group, subscriptions, sent/ACKed/NACKed versions. */
  streamStatus(): StreamStatus[] {
    return [...this.streams].map((s) => s.status()).sort((a, b) => a.id - b.id);
  }

  /** Graceful: stop accepting, let streams end; force after `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    this.unwatch();
    for (const s of this.streams) s.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.grpcServer.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.grpcServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Close at once (tests). */
  forceClose(): void {
    this.unwatch();
    this.grpcServer.forceShutdown();
  }
}
