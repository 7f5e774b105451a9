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
import { KNOWN_TYPES, clip } from "./resources.js";
import type { Snapshot } from "./snapshot.js";
import { SotwStream } from "./sotw.js";
import type { AdsStream, StreamDeps, StreamStatus } from "./stream.js";
import { xdsServerCredentials, type XdsServerTls } from "../../../model/xds-tls.js";

/** What one client may cost (issue 20: an unauthenticated client could tie up the control plane). */
export interface AdsClientBounds {
  /** Largest DiscoveryRequest accepted (bytes); bigger ones end the stream (RESOURCE_EXHAUSTED). */
  readonly maxRequestBytes: number;
  /** Sustained requests per second per stream (token bucket), and the burst allowed above it. */
  readonly requestsPerSecond: number;
  readonly requestBurst: number;
}

/**
 * Envoy sends one request per type on connect and one ACK/NACK per response: a few per second at
 * most, even through a burst of configuration changes. EDS/RDS requests name resources: 10,000
 * clusters are ~0.5 MB of names.
 */
export const DEFAULT_ADS_CLIENT_BOUNDS: AdsClientBounds = { maxRequestBytes: 4 << 20, requestsPerSecond: 50, requestBurst: 200 };

export interface AdsServerOptions {
  readonly bounds?: Partial<AdsClientBounds>;
  readonly cache?: SnapshotCache;
  readonly logger?: Logger;
  readonly registry?: Registry;
  /** control_plane.identifier in responses. */
  readonly identifier?: string;
  /**
   * How long a client may stay behind its current snapshot (not ACKed) before the fleet's progress
   * stops waiting for it (default 60 s; said in the Programmed condition's message).
   */
  readonly ackTimeoutMs?: number;
  /**
   * Serve over TLS and require a client certificate signed by `clientCaFile` (the topology names
   * every server and site: it is not for any pod that can reach the port). Plaintext without it.
   */
  readonly tls?: XdsServerTls;
  /** How often the TLS files are read again (ms; default 60 000): a renewed Secret needs no restart. */
  readonly tlsRefreshMs?: number;
}

export class AdsServer {
  readonly cache: SnapshotCache;
  readonly metrics: XdsMetrics;
  readonly fleet: FleetTracker;
  private readonly log: Logger;
  private readonly streams = new Set<AdsStream>();
  private readonly grpcServer: grpc.Server;
  private readonly bounds: AdsClientBounds;
  private readonly unwatch: () => void;
  private boundPort: number | undefined;
  private readonly credentials: grpc.ServerCredentials;
  private readonly credentialsLoaded: Promise<void>;

  constructor(opts: AdsServerOptions = {}) {
    const tls = opts.tls ? xdsServerCredentials(opts.tls, opts.tlsRefreshMs) : undefined;
    this.credentials = tls?.credentials ?? grpc.ServerCredentials.createInsecure();
    this.credentialsLoaded = tls?.loaded ?? Promise.resolve();
    this.bounds = { ...DEFAULT_ADS_CLIENT_BOUNDS, ...opts.bounds };
    this.grpcServer = new grpc.Server({
      // Envoy and big snapshots: allow large responses (10,000 virtual directories make a big CDS/EDS);
      // requests are small, so their limit is the client bound.
      "grpc.max_send_message_length": 256 * 1024 * 1024,
      "grpc.max_receive_message_length": this.bounds.maxRequestBytes,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_permit_without_calls": 1,
    });
    this.cache = opts.cache ?? new SnapshotCache();
    this.log = opts.logger ?? pino({ name: "xds", level: process.env.LOG_LEVEL ?? "info" });
    this.metrics = new XdsMetrics(opts.registry);
    this.fleet = new FleetTracker(this.cache, () => this.streams, this.metrics, opts.ackTimeoutMs);
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
    // Token bucket: a client past its request rate is cut off, not queued.
    let tokens = this.bounds.requestBurst;
    let last = performance.now();
    let unknownLogged = false;
    call.on("data", (req: unknown) => {
      if (done) return;
      const now = performance.now();
      tokens = Math.min(this.bounds.requestBurst, tokens + ((now - last) / 1000) * this.bounds.requestsPerSecond);
      last = now;
      if (--tokens < 0) {
        this.metrics.refused.inc({ mode: stream.mode, reason: "rate" });
        this.log.warn({ stream: stream.id, node: stream.node?.id, peer: call.getPeer() }, `xds client over ${this.bounds.requestsPerSecond} requests/s (burst ${this.bounds.requestBurst}): stream closed`);
        end("request rate exceeded");
        // grpc-js sends an 'error' emitted on a server call as the call's status.
        call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${this.bounds.requestsPerSecond} requests per second (burst ${this.bounds.requestBurst})` });
        return;
      }
      // A type this server does not serve is ignored at once: no per-stream state, no metric label.
      const typeUrl = (req as { type_url?: unknown } | null)?.type_url;
      if (typeof typeUrl === "string" && typeUrl !== "" && !KNOWN_TYPES.has(typeUrl)) {
        this.metrics.refused.inc({ mode: stream.mode, reason: "unknown_type" });
        if (!unknownLogged) {
          unknownLogged = true; // once per stream: a client cycling through type URLs cannot flood the log
          this.log.warn({ stream: stream.id, node: stream.node?.id, typeUrl: clip(typeUrl, 200) }, "request for a type this server does not serve ignored (logged once per stream)");
        }
        return;
      }
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
      this.grpcServer.bindAsync(`${host}:${port}`, this.credentials, (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    // With TLS: resolve once the certificate files are in use, so the first client is not dropped.
    await this.credentialsLoaded;
    this.log.info({ host, port: this.boundPort, tls: this.credentials._isSecure() ? "mutual (client certificate required)" : "off" }, "ADS server listening");
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
    this.fleet.close();
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
    this.fleet.close();
    this.grpcServer.forceShutdown();
  }
}
