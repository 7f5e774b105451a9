// A StateSource fed over xDS: the sidecar subscribes (ADS, state of the world) to the control
// plane's GatewayState type, validates each update with zod, rebuilds the Topology and ACKs, or
// NACKs with the reason and keeps the state it had. Reconnects with capped exponential backoff;
// on reconnect it sends the version it has, so an unchanged control plane sends nothing again.
import * as grpc from "@grpc/grpc-js";
import { xdsChannel, type XdsClientTls } from "../model/xds-tls.js";
import { pino, type Logger } from "pino";
import { z } from "zod";
import { adsService } from "../model/ads-protos.js";
import {
  decodeGatewayState,
  GATEWAY_STATE_NAME,
  GATEWAY_STATE_TYPE_URL,
} from "../model/gateway-state.js";
import type { GatewayState, StateSource } from "../model/state.js";

export interface XdsStateSourceOptions {
  /** host:port of the ADS server. */
  readonly address: string;
  readonly node: { readonly id: string; readonly cluster: string };
  /** TLS to the ADS server (CA, and a client certificate for mutual TLS); plaintext without it. */
  readonly tls?: XdsClientTls;
  readonly logger?: Logger;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

const ResponseMsg = z
  .object({
    version_info: z.string().default(""),
    type_url: z.string().default(""),
    nonce: z.string().default(""),
    resources: z.array(z.object({ type_url: z.string(), value: z.instanceof(Uint8Array) }).loose()).default([]),
  })
  .loose();

type Duplex = grpc.ClientDuplexStream<unknown, unknown>;

export class XdsStateSource implements StateSource {
  private state: GatewayState | undefined;
  private acceptedVersion = "";
  private readonly listeners = new Set<(s: GatewayState) => void>();
  private readonly client: grpc.Client & {
    StreamAggregatedResources(opts?: grpc.CallOptions): Duplex;
  };
  private call: Duplex | undefined;
  private stopped = false;
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  /** Counts for tests and /metrics: accepted updates, rejected updates, connections made. */
  readonly stats = { accepted: 0, rejected: 0, connects: 0 };

  constructor(private readonly opts: XdsStateSourceOptions) {
    const Ctor = adsService();
    const channel = xdsChannel(opts.tls);
    this.client = new Ctor(opts.address, channel.credentials, channel.options) as unknown as typeof this.client;
    this.log = opts.logger ?? pino({ name: "state-xds-client", level: process.env.LOG_LEVEL ?? "info" });
    this.backoff = opts.initialBackoffMs ?? 250;
  }

  current(): GatewayState | undefined {
    return this.state;
  }

  subscribe(listener: (state: GatewayState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first state (or the current one). */
  ready(): Promise<GatewayState> {
    if (this.state) return Promise.resolve(this.state);
    return new Promise((resolve) => {
      const off = this.subscribe((s) => {
        off();
        resolve(s);
      });
    });
  }

  start(): this {
    this.connect();
    return this;
  }

  private connect(): void {
    if (this.stopped) return;
    this.stats.connects++;
    const call = this.client.StreamAggregatedResources();
    this.call = call;
    call.on("data", (msg: unknown) => this.onResponse(call, msg));
    const lost = (why: string) => {
      if (this.call !== call) return;
      this.call = undefined;
      if (this.stopped) return;
      const delay = Math.round(this.backoff * (0.8 + Math.random() * 0.4));
      this.log.warn({ why, retryInMs: delay }, "xds state stream lost; reconnecting");
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 10_000);
      this.timer = setTimeout(() => this.connect(), delay);
    };
    call.on("error", (err: Error) => lost(err.message));
    call.on("end", () => lost("server ended the stream"));
    call.write({
      node: { id: this.opts.node.id, cluster: this.opts.node.cluster },
      type_url: GATEWAY_STATE_TYPE_URL,
      resource_names: [],
      version_info: this.acceptedVersion,
    });
  }

  private onResponse(call: Duplex, raw: unknown): void {
    const parsed = ResponseMsg.safeParse(raw);
    if (!parsed.success || parsed.data.type_url !== GATEWAY_STATE_TYPE_URL) return;
    const res = parsed.data;
    this.backoff = this.opts.initialBackoffMs ?? 250;
    const reply = (error?: string) =>
      call.write({
        type_url: GATEWAY_STATE_TYPE_URL,
        resource_names: [],
        response_nonce: res.nonce,
        version_info: this.acceptedVersion,
        ...(error ? { error_detail: { code: grpc.status.INVALID_ARGUMENT, message: error } } : {}),
      });
    const any = res.resources[0];
    if (!any) {
      // The control plane has no state for us: keep what we have (a sidecar never goes blank).
      this.log.warn({ version: res.version_info }, "GatewayState removed by the control plane; keeping the last state");
      this.acceptedVersion = res.version_info;
      reply();
      return;
    }
    try {
      if (res.resources.length > 1) throw new Error(`expected one ${GATEWAY_STATE_NAME} resource, got ${res.resources.length}`);
      const { state, versionMismatch, message } = decodeGatewayState(any.value);
      if (versionMismatch) {
        this.log.warn({ sent: message.topologyVersion, rebuilt: state.topology.version }, "GatewayState topology version differs after rebuild (operator and sidecar builds differ?)");
      }
      this.acceptedVersion = res.version_info;
      this.state = state;
      this.stats.accepted++;
      reply();
      this.log.info({ version: state.version }, "GatewayState accepted");
      for (const l of this.listeners) l(state);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.stats.rejected++;
      this.log.error({ version: res.version_info, error: message }, "GatewayState rejected (NACK); keeping the last state");
      reply(message);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.call?.cancel();
    this.call = undefined;
    this.client.close();
  }
}
